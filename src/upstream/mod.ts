/**
 * Upstreams: the contract, DNS-over-HTTPS, DNS-over-TLS, plain DNS (UDP, TCP), groups, routes by
 * name, and the builder.
 *
 * @module
 */
export * from "./types.ts";
export * from "./failure.ts";
export * from "./doh_transport.ts";
export * from "./doh.ts";
export * from "./h2_transport.ts";
export * from "./health.ts";
export * from "./group.ts";
export * from "./fastest.ts";
export * from "./race.ts";
export * from "./stream.ts";
export * from "./dot_url.ts";
export * from "./dot.ts";
export * from "./plain_url.ts";
export * from "./udp.ts";
export * from "./routes.ts";
export * from "./build.ts";
export * from "./instrumented.ts";
