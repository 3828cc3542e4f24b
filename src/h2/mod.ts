/**
 * One HTTP/2 library (RFC 9113, RFC 7541) for both ends of the bridge: the DoH upstream's client
 * connections (and their pool) and the DoH face's server connections, on one connection core
 * with resource bounds on both sides. Runtime-free: the edge supplies the TLS sockets.
 *
 * @module
 */
export { H2ClientConnection, type H2ClientConnectionOptions, type H2Response } from "./client.ts";
export { H2Core, MAX_OFFENCES } from "./connection.ts";
export { H2Error } from "./error.ts";
export { type H2CoreOptions, H2Side, type H2Stream } from "./side.ts";
export type { H2Socket } from "./socket.ts";
export {
  encodeRequestHead,
  encodeResponseHead,
  type RequestHead,
  ResponseHeadWriter,
  withContentLength,
} from "./hpack_encode.ts";
export { HpackDecoder, HpackError } from "./hpack_decode.ts";
export { type H2Clock, SYSTEM_CLOCK } from "./clock.ts";
export { H2ClientPool, type H2Connector, type H2PoolOptions, type H2Target } from "./pool.ts";
export { H2ServerConnection, type H2ServerOptions, MAX_REQUEST_TIMEOUT_MS } from "./server.ts";
