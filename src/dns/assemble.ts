/**
 * An answer made here rather than fetched: the client's header and question, then sections
 * prepared ahead of time, then an OPT record if the query had one. Local records, DDR, the plain
 * DNS face's ANY answer and blocked answers are all made this way, without a walk.
 *
 * @module
 */
import type { Answer } from "./answer.ts";
import { DEFAULT_EDNS_UDP_SIZE, EDNS_DO, Flag } from "./constants.ts";
import { optRecordSize, writeOpt, writtenOptions } from "./edns.ts";
import type { EdnsOption, MessageInfo } from "./message.ts";
import type { Query } from "./query.ts";

/** Sections after the question, ready to follow any query's question, and what they hold. */
export interface Prepared {
  readonly rcode: number;
  readonly ancount: number;
  readonly nscount: number;
  /** The sections after the question; names in them may point into the question. */
  readonly body: Uint8Array;
  /** The answer's `MessageInfo.minTtl` (how long it may be cached), the same for every query. */
  readonly minTtl: number | undefined;
}

/** How {@linkcode assembleAnswer} marks the answer. */
export interface AssembleOptions {
  /** Set AA (local records, DDR). Default true. */
  readonly authoritative?: boolean;
  /** EDNS options for the OPT record (when the query had EDNS), e.g. an EDE. Default none. */
  readonly ednsOptions?: readonly EdnsOption[];
}

const NO_OPTIONS: readonly EdnsOption[] = [];

/**
 * The answer to `query` with `p`'s sections: its ID and question, RA set, RD and CD copied, AA
 * unless told otherwise, and an OPT record (UDP size 1232, DO copied, `ednsOptions`) when the
 * query had one. The info is built from the prepared counts, not by walking the bytes.
 *
 * @example
 * ```ts
 * const answer = assembleAnswer(query, prepared, { authoritative: false, ednsOptions: [ede] });
 * ```
 */
export function assembleAnswer(query: Query, p: Prepared, options: AssembleOptions = {}): Answer {
  const { info: qinfo, wire: qwire } = query;
  const ednsOptions = options.ednsOptions ?? NO_OPTIONS;
  const qend = qinfo.questionEnd;
  const optAt = qend + p.body.length;
  const optSize = qinfo.opt ? optRecordSize(ednsOptions) : 0;
  const out = new Uint8Array(optAt + optSize);
  out.set(qwire.subarray(0, qend));
  const aa = options.authoritative ?? true ? Flag.AA : 0;
  const flags = Flag.QR | aa | Flag.RA | (qinfo.flags & (Flag.RD | Flag.CD)) | p.rcode;
  const arcount = qinfo.opt ? 1 : 0;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = 1;
  out[6] = p.ancount >> 8;
  out[7] = p.ancount & 0xff;
  out[8] = p.nscount >> 8;
  out[9] = p.nscount & 0xff;
  out[10] = 0;
  out[11] = arcount;
  out.set(p.body, qend);
  let opt: MessageInfo["opt"];
  if (qinfo.opt) {
    // ext-rcode 0, version 0, DO copied from the query.
    const ttl = qinfo.opt.ttl & EDNS_DO;
    writeOpt(out, optAt, { udpSize: DEFAULT_EDNS_UDP_SIZE, ttl }, ednsOptions);
    const written = writtenOptions(out, optAt, ednsOptions);
    opt = {
      start: optAt,
      end: optAt + optSize,
      udpSize: DEFAULT_EDNS_UDP_SIZE,
      ttl,
      options: written,
    };
  }
  const info: MessageInfo = {
    id: qinfo.id,
    flags,
    qdcount: 1,
    ancount: p.ancount,
    nscount: p.nscount,
    arcount,
    question: query.question,
    questionEnd: qend,
    opt,
    minTtl: p.minTtl,
  };
  return { wire: out, info };
}
