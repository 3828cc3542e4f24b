/**
 * Answers over UDP (RFC 1035 §4.2.1, RFC 6891 §6.2.5): at most 512 bytes to a client that sent no
 * EDNS, at most its advertised UDP payload size (clamped to the server's own maximum) to one
 * that did. An answer that does not fit goes out truncated: the header with TC set, the question
 * and the OPT record, and no records at all, so the client asks again over TCP. Never a cut-off
 * message.
 *
 * @module
 */
import { Flag, HEADER_LENGTH } from "./constants.ts";
import type { Answer } from "./answer.ts";
import type { MessageInfo } from "./message.ts";

/** The size every DNS client takes over UDP (RFC 1035 §2.3.4). */
export const CLASSIC_UDP_SIZE = 512;

/**
 * The largest answer `query` may get over UDP: 512 bytes without EDNS, else the client's UDP
 * payload size between 512 and `max`.
 *
 * @example
 * ```ts
 * udpAnswerLimit(parseMessage(queryWithEdns4096), 1232); // 1232
 * udpAnswerLimit(parseMessage(plainQuery), 1232); // 512
 * ```
 */
export function udpAnswerLimit(query: MessageInfo, max: number): number {
  const asked = query.opt?.udpSize;
  if (asked === undefined || asked <= CLASSIC_UDP_SIZE) return CLASSIC_UDP_SIZE;
  return Math.max(CLASSIC_UDP_SIZE, Math.min(asked, max));
}

/**
 * `answer` truncated: its header with TC set and every section count but the question's (and
 * the OPT record's) zero, its question, its OPT record when it has one; the info computed, not
 * walked. A copy; `answer` is not changed.
 *
 * @example
 * ```ts
 * const sent = answer.wire.length > limit ? truncatedAnswer(answer) : answer;
 * ```
 */
export function truncatedAnswer(answer: Answer): Answer {
  const { wire, info } = answer;
  const qend = info.questionEnd;
  const old = info.opt;
  const optLength = old ? old.end - old.start : 0;
  const out = new Uint8Array(qend + optLength);
  out.set(wire.subarray(0, qend));
  if (old) out.set(wire.subarray(old.start, old.end), qend);
  const flags = info.flags | Flag.TC;
  const qdcount = qend > HEADER_LENGTH ? info.qdcount : 0;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = qdcount >> 8;
  out[5] = qdcount & 0xff;
  out[6] =
    out[7] =
    out[8] =
    out[9] =
      0;
  out[10] = 0;
  out[11] = old ? 1 : 0;
  let opt: MessageInfo["opt"];
  if (old) {
    const shift = qend - old.start;
    opt = {
      ...old,
      start: qend,
      end: qend + optLength,
      options: old.options.map((o) => {
        const at = o.data.byteOffset - wire.byteOffset + shift;
        return { code: o.code, data: out.subarray(at, at + o.data.length) };
      }),
    };
  }
  return {
    wire: out,
    info: {
      ...info,
      flags,
      qdcount,
      ancount: 0,
      nscount: 0,
      arcount: old ? 1 : 0,
      opt,
      minTtl: undefined,
    },
  };
}

/**
 * The answer to send over UDP: `answer` itself when it fits in `limit`, else
 * {@linkcode truncatedAnswer}.
 *
 * @example
 * ```ts
 * const sent = udpAnswer(answer, udpAnswerLimit(query.info, 1232));
 * ```
 */
export function udpAnswer(answer: Answer, limit: number): Answer {
  return answer.wire.length <= limit ? answer : truncatedAnswer(answer);
}
