/**
 * The DoH face (RFC 8484) as a hono app, the JSON API conversion, and the landing page.
 *
 * @module
 */
export * from "./app.ts";
export * from "./json.ts";
export * from "./landing.ts";
export * from "./fast_path.ts";
