/**
 * The answer cache: one middleware (`middleware.ts`) over pluggable stores behind a written
 * contract (`store.ts`): the in-process LRU (`memory.ts`), the Workers Cache API
 * (`workers.ts`), Redis (`redis.ts`, over a connection the edge supplies) and the two-level store
 * that puts memory in front of Redis (`tiered.ts`).
 *
 * @module
 */
export * from "./store.ts";
export * from "./middleware.ts";
export * from "./memory.ts";
export * from "./workers.ts";
export * from "./redis.ts";
export * from "./tiered.ts";
