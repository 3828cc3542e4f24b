/**
 * The answer cache: one middleware (`middleware.ts`) over pluggable stores behind a written
 * contract (`store.ts`): the in-process LRU (`memory.ts`) under a byte budget it may share with
 * other policies' (`budget.ts`), the Workers Cache API (`workers.ts`), Redis (`redis.ts`, over a
 * connection the edge supplies, its values bound to their keys and optionally signed:
 * `signer.ts`) and the two-level store that puts memory in front of Redis (`tiered.ts`). What a
 * store hands back as bytes is checked and clamped before it is served (`trust.ts`).
 *
 * @module
 */
export * from "./store.ts";
export * from "./middleware.ts";
export * from "./budget.ts";
export * from "./memory.ts";
export * from "./workers.ts";
export * from "./redis.ts";
export * from "./signer.ts";
export * from "./tiered.ts";
export * from "./trust.ts";
