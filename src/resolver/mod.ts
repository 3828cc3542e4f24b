/**
 * The resolver pipeline: handler and middleware types, the standard middlewares, and the
 * face-side processor.
 *
 * @module
 */
export * from "./types.ts";
export * from "./middleware.ts";
export * from "./processor.ts";
export * from "./acl.ts";
export * from "./ratelimit.ts";
export * from "./tenants.ts";
export * from "./build.ts";
