/**
 * The DoH request path, second half: an answer (or an error) becomes the status, headers and
 * body every DoH face sends, as a {@linkcode ServerReply} (`src/serve/`): the bridge's own
 * servers take it as it is, the hono app turns it into a `Response` ({@linkcode toResponse}).
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import { DNS_MESSAGE } from "../dns/media_type.ts";
import type { Logger } from "../log/mod.ts";
import type { ServerReply } from "../serve/exchange.ts";
import type { Processor } from "../resolver/processor.ts";
import type { QueryContext } from "../pipeline/types.ts";
import type { DohError, DohQuery } from "./doh_request.ts";
import { errorText } from "./redact.ts";

/** The content type of every error body: one line of text that says why. */
export const TEXT_PLAIN = "text/plain; charset=UTF-8";

const encoder = new TextEncoder();

/**
 * RFC 8484 §5.1: `max-age` is the smallest TTL in the answer (0 when there is none), as its parse
 * learnt it (`MessageInfo.minTtl`): no walk.
 *
 * @example
 * ```ts
 * cacheControl(answer); // "max-age=300"
 * ```
 */
export function cacheControl(answer: Answer): string {
  return `max-age=${answer.info.minTtl ?? 0}`;
}

/**
 * An HTTP error with a one-line text body; 405 also says `Allow: GET, POST`.
 *
 * @example
 * ```ts
 * errorReply(400, "missing dns parameter"); // { status: 400, headers: [...], body: ... }
 * ```
 */
export function errorReply(status: number, message: string): ServerReply {
  const body = encoder.encode(message);
  const headers: [string, string][] = [
    ["content-type", TEXT_PLAIN],
    ["content-length", String(body.length)],
  ];
  if (status === 405) headers.push(["allow", "GET, POST"]);
  return { status, headers, body };
}

/** The reply for an error found in the request by `parseDohRequest`. */
export function requestErrorReply(error: DohError): ServerReply {
  return errorReply(error.status, error.message);
}

/** 500, for a processor that threw: the body does not repeat the error. */
export const INTERNAL_ERROR: ServerReply = errorReply(500, "internal error");

/**
 * The reply for the processor's outcome: 200 `application/dns-message` with `Cache-Control:
 * max-age=<smallest TTL>` (DNS errors such as SERVFAIL are answers too, RFC 8484 §4.2.1), or 400
 * `not a DNS message` when the processor found no DNS message in the query (`null`).
 */
export function answerReply(answer: Answer | null): ServerReply {
  if (answer === null) return errorReply(400, "not a DNS message");
  return {
    status: 200,
    // No content-length: every server sets it from the body (HTTP/1.1) or needs none (HTTP/2).
    headers: [["content-type", DNS_MESSAGE], ["cache-control", cacheControl(answer)]],
    body: answer.wire,
  };
}

/**
 * Resolves a parsed query and builds its reply; a processor that throws gets
 * {@linkcode INTERNAL_ERROR}, and is logged as an error unless the client went away first
 * (its signal aborted: a reset stream or a closed connection is the client's choice, not a
 * fault, and is logged at debug).
 */
export function answerDohQuery(
  process: Processor,
  query: DohQuery,
  ctx: QueryContext,
  logger?: Logger,
): Promise<ServerReply> {
  const failed = (e: unknown): ServerReply => {
    if (ctx.signal.aborted) logger?.debug("doh: client went away", { error: errorText(e) });
    else logger?.error("doh: processing failed", { error: errorText(e) });
    return INTERNAL_ERROR;
  };
  // Not an async function: its frame and await were paid by every DoH query.
  let answered: Promise<Answer | null>;
  try {
    answered = process(query.wire, ctx);
  } catch (e) {
    return Promise.resolve(failed(e));
  }
  return answered.then(answerReply, failed);
}

/** `reply` as a `Response`; for a HEAD request, the same headers and no body. */
export function toResponse(reply: ServerReply, head = false): Response {
  const body = head
    ? null
    : reply.body.buffer instanceof ArrayBuffer
    ? reply.body as Uint8Array<ArrayBuffer>
    : new Uint8Array(reply.body);
  return new Response(body, { status: reply.status, headers: reply.headers as [string, string][] });
}
