/**
 * Local records answered without an upstream (split horizon for self-hosters), split as CoreDNS
 * splits `plugin/hosts`: the file formats (`hosts.ts`, `zone.ts`, and `format.ts`, which picks
 * one and turns a file's text into a table), the lookup table with its precomputed answers
 * (`table.ts`, built by `build.ts`) and the resolver middleware (`middleware.ts`). Loading and
 * watching a file is the runtime's business (`src/deno/local_records_loader.ts`).
 *
 * @module
 */
export { DEFAULT_LOCAL_TTL, type LocalRecord } from "./record.ts";
export { MAX_HOSTS_PTR_NAMES, parseHosts } from "./hosts.ts";
export { parseZone } from "./zone.ts";
export * from "./format.ts";
export { MAX_CNAME_HOPS } from "./build.ts";
export * from "./table.ts";
export * from "./middleware.ts";
