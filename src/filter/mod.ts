/**
 * Blocklists and allowlists, a stage of the pipeline beside `cache/` and `records/`: the list
 * formats (`list_parser.ts`: hosts, plain names, Adblock-style, wildcards, RPZ), the set of a
 * list's names as 64-bit fingerprints (`fingerprint.ts`, `domain_set.ts`), one policy's lists and
 * its verdict on a name (`policy.ts`), the blocked answers (`blocked_answer.ts`) and the
 * middleware (`middleware.ts`). Fetching, watching and refreshing lists is the runtime's business
 * (`src/deno/filter_lists.ts`, `src/worker/filter_lists.ts`).
 *
 * @module
 */
export * from "./fingerprint.ts";
export * from "./domain_set.ts";
export * from "./list_parser.ts";
export * from "./policy.ts";
export * from "./blocked_answer.ts";
export * from "./middleware.ts";
export * from "./build_list.ts";
