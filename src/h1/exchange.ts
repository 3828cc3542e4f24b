/**
 * One request on an HTTP/1.1 connection (`server.ts`), from its head to its reply being written:
 * the {@linkcode ServerRequest} the handler receives, with what the connection keeps of it.
 *
 * @module
 */
import type { ServerReply, ServerRequest } from "../serve/exchange.ts";

/** One request, from its head to its reply being written. It is what the handler receives. */
export class Exchange implements ServerRequest {
  body: Uint8Array | undefined = undefined;
  /** Set when the handler settles (or at once, for a refusal). */
  reply: ServerReply | undefined = undefined;
  /** An interim 100 Continue is owed before the body is read. */
  sendContinue = false;
  constructor(
    readonly method: string,
    readonly path: string,
    readonly authority: string,
    readonly headers: readonly (readonly [string, string])[],
    readonly signal: AbortSignal,
    /** Close the connection after this reply. */
    public close: boolean,
    /** Say `connection: keep-alive` (HTTP/1.0). */
    readonly keepAlive: boolean,
  ) {}
}
