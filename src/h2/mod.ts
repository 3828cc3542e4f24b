/**
 * One HTTP/2 library (RFC 9113, RFC 7541) for both ends of the bridge: the DoH upstream's client
 * connections (and their pool) and the DoH face's server connections, on one connection core
 * with resource bounds on both sides. Runtime-free: the edge supplies the TLS sockets.
 *
 * @module
 */
export { H2ClientConnection, type H2ClientConnectionOptions, type H2Response } from "./client.ts";
export { H2Core, H2Error, type H2Stream, MAX_OFFENCES } from "./connection.ts";
export type { H2Socket } from "./socket.ts";
export {
  encodeRequestHead,
  encodeResponseHead,
  type RequestHead,
  ResponseHeadWriter,
  withContentLength,
} from "./hpack_encode.ts";
export { HpackDecoder, HpackError } from "./hpack_decode.ts";
export { H2ClientPool, type H2Connector, type H2PoolOptions, type H2Target } from "./pool.ts";
export { H2ServerConnection, type H2ServerOptions, MAX_REQUEST_TIMEOUT_MS } from "./server.ts";
