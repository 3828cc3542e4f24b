/**
 * The bridge's own HTTP/1.1 server connection, beside the HTTP/2 one (`src/h2/`): both parse into
 * the shared {@linkcode ServerRequest} and write a {@linkcode ServerReply}.
 *
 * @module
 */
export { H1ServerConnection, type H1ServerOptions } from "./server.ts";
export type { H1Socket } from "./socket.ts";
export { CHUNKED, type HeadError, parseHead, type RequestHead } from "./head.ts";
export type { ServerReply, ServerRequest } from "../serve/exchange.ts";
