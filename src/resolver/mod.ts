/**
 * The resolver: the standard middlewares, the face-side processor and the one builder every
 * edge calls. The pipeline's types are in `src/pipeline/`.
 *
 * @module
 */
export * from "./middleware.ts";
export * from "./processor.ts";
export * from "./acl.ts";
export * from "./ratelimit.ts";
export * from "./tenants.ts";
export * from "./plain_dns.ts";
export * from "./build.ts";
