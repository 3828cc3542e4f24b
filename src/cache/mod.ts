/**
 * The answer cache: one middleware (`middleware.ts`) over pluggable stores behind a written
 * contract (`store.ts`): the in-process LRU (`memory.ts`) and the Workers Cache API
 * (`workers.ts`).
 *
 * @module
 */
export * from "./store.ts";
export * from "./middleware.ts";
export * from "./memory.ts";
export * from "./workers.ts";
