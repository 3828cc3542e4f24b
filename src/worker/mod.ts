/**
 * The Cloudflare Workers edge: the fetch handler, its configuration from the Worker's env, and
 * DoT upstreams over `cloudflare:sockets`. The Worker entry itself is `index.ts`.
 *
 * @module
 */
export * from "./config.ts";
export * from "./landing.ts";
export * from "./local_records.ts";
export * from "./sockets_connector.ts";
export * from "./upstreams.ts";
export * from "./worker.ts";
