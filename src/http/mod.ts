/**
 * The DoH face (RFC 8484): the request path every face shares (request -> query or HTTP error,
 * answer -> reply), the hono app, the JSON API conversion, and the landing page.
 *
 * @module
 */
export { DNS_MESSAGE } from "../dns/media_type.ts";
export * from "./app.ts";
export * from "./json.ts";
export * from "./landing.ts";
export * from "./doh_request.ts";
export * from "./doh_response.ts";
