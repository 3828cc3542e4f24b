/**
 * What the bridge's own HTTP servers (`h2/`, `h1/`) and the handlers they serve (`http/`) speak:
 * one request, one reply, one handler type, below both servers and the DoH path.
 *
 * @module
 */
export * from "./exchange.ts";
