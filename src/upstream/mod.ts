/**
 * Upstreams: the contract, DNS-over-HTTPS, and groups.
 *
 * @module
 */
export * from "./types.ts";
export * from "./deadline.ts";
export * from "./doh_transport.ts";
export * from "./doh.ts";
export * from "./group.ts";
