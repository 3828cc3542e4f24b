/**
 * A DNS response together with what was learnt about it when it was walked, so nothing downstream
 * parses it again.
 *
 * @module
 */
import { type EdnsOption, type MessageInfo, parseMessage, withId } from "./message.ts";
import {
  infoWithOpt,
  NEW_OPT_FIELDS,
  type OptFields,
  rewrittenOptions,
  setOpt,
  writtenOptions,
} from "./edns.ts";
import { type ExtendedError, makeErrorResponse } from "./response.ts";

/** A response in wire format and its parse. `info` always describes `wire` exactly. */
export interface Answer {
  readonly wire: Uint8Array;
  readonly info: MessageInfo;
}

/** Walks `wire` once and pairs it with what the walk found. @throws {RangeError} if malformed */
export function answerOf(wire: Uint8Array): Answer {
  return { wire, info: parseMessage(wire) };
}

/**
 * The same answer with message ID `id`: a copy of the bytes, the info carried over (no walk).
 *
 * @example
 * ```ts
 * const forClient = answerWithId(fromUpstream, query.info.id);
 * ```
 */
export function answerWithId(answer: Answer, id: number): Answer {
  return { wire: withId(answer.wire, id), info: { ...answer.info, id } };
}

/**
 * The answer whose OPT record carries exactly `options` (`null` removes the record), as
 * `setOpt` in `edns.ts` writes it; the new info is computed from the old one, not by a walk.
 *
 * @example
 * ```ts
 * const bare = answerWithOpt(answer, null); // for a client that sent no EDNS
 * ```
 */
export function answerWithOpt(
  answer: Answer,
  options: readonly EdnsOption[] | null,
  create?: OptFields,
): Answer {
  const { info } = answer;
  const wire = setOpt(answer.wire, info, options, create);
  const old = info.opt;
  if (!options) {
    if (!old) return { wire, info };
    return { wire, info: { ...info, arcount: info.arcount - 1, opt: undefined } };
  }
  const start = old ? old.start : answer.wire.length;
  // setOpt wrote the old record's fields, else `create`'s, else its default.
  const fields = old ?? create ?? NEW_OPT_FIELDS;
  return {
    wire,
    info: infoWithOpt(info, start, options, fields, writtenOptions(wire, start, options)),
  };
}

/**
 * The answer with its EDNS options rewritten, as `rewriteOptions` in `edns.ts` does it: keeps
 * the options `keep` accepts, adds `extra`, then pads to a multiple of `padBlock` if given.
 * Creates an OPT record if there is none. The info is computed, not walked.
 */
export function rewriteAnswerOptions(
  answer: Answer,
  keep: (option: EdnsOption) => boolean,
  extra: readonly EdnsOption[] = [],
  padBlock?: number,
): Answer {
  const options = rewrittenOptions(answer.wire, answer.info, keep, extra, padBlock);
  return answerWithOpt(answer, options);
}

/**
 * The bridge's own answer with `rcode` for `query` (see `makeErrorResponse` in `response.ts`),
 * with its info. For REFUSED, SERVFAIL and the like: off the hot path, so it is walked once.
 *
 * @example
 * ```ts
 * return errorAnswer(query.wire, query.info, Rcode.REFUSED, { code: EdeCode.PROHIBITED });
 * ```
 */
export function errorAnswer(
  query: Uint8Array,
  info: MessageInfo | undefined,
  rcode: number,
  ede?: ExtendedError,
): Answer {
  return answerOf(makeErrorResponse(query, info, rcode, ede));
}
