/**
 * Answers the bridge makes itself (SERVFAIL, FORMERR, REFUSED, NOTIMP) and the checks every
 * upstream answer must pass before a client sees it.
 *
 * @module
 */
import {
  DEFAULT_EDNS_UDP_SIZE,
  EDNS_DO,
  EdnsOptionCode,
  Flag,
  HEADER_LENGTH,
} from "./constants.ts";
import type { EdnsOption, MessageInfo } from "./message.ts";
import { getFlags, headerRcode, parseMessage, sameQuestion } from "./message.ts";
import { optRecordSize, setOpt } from "./edns.ts";
import { messageOf } from "../errors/message_of.ts";

/** An RFC 8914 Extended DNS Error to attach to a response. */
export interface ExtendedError {
  code: number;
  /** Optional UTF-8 text for humans. Never put query names or client data here. */
  text?: string;
}

/** Encodes an Extended DNS Error option (RFC 8914 §2). */
export function extendedErrorOption(ede: ExtendedError): EdnsOption {
  const text = new TextEncoder().encode(ede.text ?? "");
  const data = new Uint8Array(2 + text.length);
  data[0] = ede.code >> 8;
  data[1] = ede.code & 0xff;
  data.set(text, 2);
  return { code: EdnsOptionCode.EXTENDED_ERROR, data };
}

/**
 * Builds a response with `rcode` for `query`: same ID and opcode, RD and CD copied, the
 * question echoed when it parsed, and an OPT record (with the EDE, if given) when the query had
 * EDNS. For a query whose body did not parse, pass only the raw bytes: the answer then carries
 * the header ID and no question.
 *
 * @example
 * ```ts
 * const servfail = makeErrorResponse(query, info, Rcode.SERVFAIL, { code: EdeCode.NETWORK_ERROR });
 * ```
 */
export function makeErrorResponse(
  query: Uint8Array,
  info: MessageInfo | undefined,
  rcode: number,
  ede?: ExtendedError,
): Uint8Array {
  const flags = query.length >= 4 ? getFlags(query) : 0;
  const keep = flags & (0x7800 | Flag.RD | Flag.CD); // opcode, RD, CD
  const newFlags = Flag.QR | keep | Flag.RA | (rcode & 0x0f);
  const questionBytes = info?.question
    ? query.subarray(HEADER_LENGTH, info.questionEnd)
    : undefined;
  const qdcount = questionBytes && info ? info.qdcount : 0;
  const options = ede ? [extendedErrorOption(ede)] : [];
  const withOpt = info?.opt !== undefined;
  const size = HEADER_LENGTH + (questionBytes?.length ?? 0) +
    (withOpt ? optRecordSize(options) : 0);
  const out = new Uint8Array(HEADER_LENGTH + (questionBytes?.length ?? 0));
  out[0] = query.length > 0 ? query[0] : 0;
  out[1] = query.length > 1 ? query[1] : 0;
  out[2] = newFlags >> 8;
  out[3] = newFlags & 0xff;
  out[4] = qdcount >> 8;
  out[5] = qdcount & 0xff;
  if (questionBytes) out.set(questionBytes, HEADER_LENGTH);
  if (!withOpt) return out;
  const bare = parseMessage(out);
  const doBit = (info.opt?.ttl ?? 0) & EDNS_DO;
  const ttl = ((rcode >> 4) << 24) | doBit;
  const result = setOpt(out, bare, options, { udpSize: DEFAULT_EDNS_UDP_SIZE, ttl });
  if (result.length !== size) throw new Error("dns: error response size mismatch");
  return result;
}

/** Why an upstream answer was rejected. */
export class InvalidAnswerError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "InvalidAnswerError";
  }
}

/**
 * Checks that `answer` is a well-formed response to the query described by `query`, with the
 * expected message ID, and returns its parsed form.
 *
 * @throws {InvalidAnswerError} if it does not parse, is not a response, has another ID, or asks
 *   another question. A response without a question is accepted only with a non-zero rcode
 *   (some servers omit it in FORMERR/NOTIMP/REFUSED).
 */
export function validateAnswer(
  query: MessageInfo,
  answer: Uint8Array,
  expectedId: number,
): MessageInfo {
  let info: MessageInfo;
  try {
    info = parseMessage(answer);
  } catch (cause) {
    throw new InvalidAnswerError(`malformed answer: ${messageOf(cause)}`, { cause });
  }
  if ((info.flags & Flag.QR) === 0) throw new InvalidAnswerError("answer is not a response");
  if (info.id !== expectedId) {
    throw new InvalidAnswerError(`answer has ID ${info.id}, expected ${expectedId}`);
  }
  if (info.question && query.question) {
    if (!sameQuestion(info.question, query.question)) {
      throw new InvalidAnswerError("answer is for another question");
    }
  } else if (query.question && headerRcode(info.flags) === 0) {
    throw new InvalidAnswerError("answer has no question section");
  }
  return info;
}
