/**
 * The vocabulary every stage of the resolver pipeline shares: a {@linkcode Handler} answers a
 * query, a {@linkcode Middleware} wraps a handler, {@linkcode QueryContext} carries the per-query
 * facts, and {@linkcode compose} puts the stages together. Stages (`cache/`, `records/`, ...)
 * and the builder (`resolver/`) take these from here, so no stage imports the builder.
 *
 * @module
 */
export * from "./types.ts";
