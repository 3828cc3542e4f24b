/**
 * How a single-server upstream (DoH, DoT, DoQ) turns what went wrong with one exchange into the
 * {@linkcode UpstreamError} its callers catch, the same way in each.
 *
 * @module
 */
import type { MessageInfo } from "../dns/message.ts";
import { InvalidAnswerError, validateAnswer } from "../dns/response.ts";
import { messageOf } from "../errors/message_of.ts";
import { UpstreamError } from "./types.ts";

/**
 * Checks `wire` as the answer to `query` sent with message ID `wireId` (see `validateAnswer`)
 * and returns its parse; an answer that fails is the upstream's fault.
 *
 * @param upstream the upstream's name, for the error
 * @throws {UpstreamError} of kind `bad-answer`, the validation error as its `cause`
 *
 * @example
 * ```ts
 * const info = checkedAnswer(this.name, query.info, body, 0);
 * ```
 */
export function checkedAnswer(
  upstream: string,
  query: MessageInfo,
  wire: Uint8Array,
  wireId: number,
): MessageInfo {
  try {
    return validateAnswer(query, wire, wireId);
  } catch (error) {
    if (error instanceof InvalidAnswerError) {
      throw new UpstreamError(upstream, "bad-answer", error.message, { cause: error });
    }
    throw error;
  }
}

/**
 * What an exchange failed with, as an {@linkcode UpstreamError} of `upstream`: an
 * `UpstreamError` as it is; a `RangeError` (an answer too large or badly framed) as
 * `bad-answer`; anything else (refused, reset, TLS) as `network`; the original as `cause`.
 *
 * @example
 * ```ts
 * try {
 *   response = await this.#send(wire, signal);
 * } catch (error) {
 *   if (signal.aborted) throw signal.reason;
 *   throw upstreamFailure(this.name, error);
 * }
 * ```
 */
export function upstreamFailure(upstream: string, error: unknown): UpstreamError {
  if (error instanceof UpstreamError) return error;
  const kind = error instanceof RangeError ? "bad-answer" : "network";
  return new UpstreamError(upstream, kind, messageOf(error), { cause: error });
}
