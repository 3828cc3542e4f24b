/**
 * What a blocked query gets (`--block-response`): NXDOMAIN, NODATA, the null address (`0.0.0.0`
 * for A, `::` for AAAA, NODATA for other types) or REFUSED, with an Extended DNS Error 15
 * (Blocked, RFC 8914) when the query had EDNS, and `--block-ttl` on the records and on the
 * synthetic SOA of negative answers (RFC 2308: the SOA's TTL and MINIMUM bound negative
 * caching). Every body is written once, its names pointing at the question, so a blocked answer
 * is a header, the client's question, a ready body and an OPT record.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import {
  DEFAULT_EDNS_UDP_SIZE,
  EdeCode,
  EDNS_DO,
  Flag,
  HEADER_LENGTH,
  Rcode,
  RrType,
} from "../dns/constants.ts";
import { optRecordSize, writeOpt } from "../dns/edns.ts";
import type { EdnsOption, MessageInfo } from "../dns/message.ts";
import { encodeName } from "../dns/name.ts";
import type { Query } from "../dns/query.ts";
import { extendedErrorOption } from "../dns/response.ts";
import { Action, type ActionCode } from "./domain_set.ts";

/** The answers `--block-response` chooses among. */
export type BlockResponse = "nxdomain" | "nodata" | "null" | "refused";

/** Every {@linkcode BlockResponse}, for option tables and checks. */
export const BLOCK_RESPONSES: readonly BlockResponse[] = ["nxdomain", "nodata", "null", "refused"];

/** Longest `--block-ttl`, in seconds (RFC 2181: TTLs fit in 31 bits; a day is plenty). */
export const MAX_BLOCK_TTL = 86_400;

/** A precomputed body: the sections after the question. */
interface Body {
  readonly rcode: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly bytes: Uint8Array;
  readonly minTtl: number | undefined;
}

/** The EDE every blocked answer carries. */
const BLOCKED_OPTION: EdnsOption = extendedErrorOption({ code: EdeCode.BLOCKED });
const OPT_SIZE = optRecordSize([BLOCKED_OPTION]);

function u32(out: number[], v: number): void {
  out.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
}

/** A record owned by the question's name (a pointer to offset 12). */
function record(type: number, ttl: number, rdata: ArrayLike<number>): number[] {
  const out = [0xc0, HEADER_LENGTH, type >> 8, type & 0xff, 0, 1];
  u32(out, ttl);
  out.push(rdata.length >> 8, rdata.length & 0xff, ...Array.from(rdata));
  return out;
}

/** The synthetic SOA of negative answers: TTL and MINIMUM both `ttl`. */
function soa(ttl: number): number[] {
  const rdata: number[] = [...encodeName("localhost"), ...encodeName("nobody.invalid")];
  for (const v of [1, 3600, 600, 86400, ttl]) u32(rdata, v);
  return record(RrType.SOA, ttl, rdata);
}

function body(
  rcode: number,
  ancount: number,
  nscount: number,
  bytes: number[],
  minTtl?: number,
): Body {
  return { rcode, ancount, nscount, bytes: Uint8Array.from(bytes), minTtl };
}

/**
 * The answers of one `--block-response` and `--block-ttl`, built once. Safe to share.
 *
 * @example
 * ```ts
 * const answers = new BlockedAnswers("null", 60);
 * answers.answer(query, Action.BLOCK); // A 0.0.0.0 for an A query, with EDE 15
 * ```
 */
export class BlockedAnswers {
  readonly response: BlockResponse;
  readonly ttl: number;
  readonly #nxdomain: Body;
  readonly #nodata: Body;
  readonly #a: Body;
  readonly #aaaa: Body;
  readonly #refused: Body;

  /**
   * @param ttl seconds, 0 to {@linkcode MAX_BLOCK_TTL}
   * @throws {RangeError} for a TTL out of range
   */
  constructor(response: BlockResponse, ttl: number) {
    if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_BLOCK_TTL) {
      throw new RangeError(`block TTL ${ttl} is not 0 to ${MAX_BLOCK_TTL} seconds`);
    }
    this.response = response;
    this.ttl = ttl;
    this.#nxdomain = body(Rcode.NXDOMAIN, 0, 1, soa(ttl), ttl);
    this.#nodata = body(Rcode.NOERROR, 0, 1, soa(ttl), ttl);
    this.#a = body(Rcode.NOERROR, 1, 0, record(RrType.A, ttl, [0, 0, 0, 0]), ttl);
    this.#aaaa = body(Rcode.NOERROR, 1, 0, record(RrType.AAAA, ttl, new Uint8Array(16)), ttl);
    this.#refused = body(Rcode.REFUSED, 0, 0, []);
  }

  /** The body for `query` under `action` (an RPZ action overrides the response). */
  #bodyFor(query: Query, action: ActionCode): Body {
    if (action === Action.NXDOMAIN) return this.#nxdomain;
    if (action === Action.NODATA) return this.#nodata;
    switch (this.response) {
      case "nxdomain":
        return this.#nxdomain;
      case "nodata":
        return this.#nodata;
      case "refused":
        return this.#refused;
      case "null": {
        const type = query.question.type;
        return type === RrType.A ? this.#a : type === RrType.AAAA ? this.#aaaa : this.#nodata;
      }
    }
  }

  /**
   * The blocked answer to `query`: its ID and question, RD and CD copied, RA set, and an OPT
   * record carrying EDE 15 when the query had EDNS (its DO bit copied). The info is built from
   * the precomputed counts, not by walking the bytes.
   */
  answer(query: Query, action: ActionCode): Answer {
    const b = this.#bodyFor(query, action);
    const { info: q, wire } = query;
    const qend = q.questionEnd;
    const optAt = qend + b.bytes.length;
    const out = new Uint8Array(optAt + (q.opt ? OPT_SIZE : 0));
    out.set(wire.subarray(0, qend));
    const flags = Flag.QR | Flag.RA | (q.flags & (Flag.RD | Flag.CD)) | b.rcode;
    const arcount = q.opt ? 1 : 0;
    out[2] = flags >> 8;
    out[3] = flags & 0xff;
    out[4] = 0;
    out[5] = 1;
    out[6] = 0;
    out[7] = b.ancount;
    out[8] = 0;
    out[9] = b.nscount;
    out[10] = 0;
    out[11] = arcount;
    out.set(b.bytes, qend);
    let opt: MessageInfo["opt"];
    if (q.opt) {
      const ttl = q.opt.ttl & EDNS_DO;
      writeOpt(out, optAt, { udpSize: DEFAULT_EDNS_UDP_SIZE, ttl }, [BLOCKED_OPTION]);
      opt = {
        start: optAt,
        end: optAt + OPT_SIZE,
        udpSize: DEFAULT_EDNS_UDP_SIZE,
        ttl,
        options: [{
          code: BLOCKED_OPTION.code,
          data: out.subarray(optAt + 15, optAt + 15 + BLOCKED_OPTION.data.length),
        }],
      };
    }
    return {
      wire: out,
      info: {
        id: q.id,
        flags,
        qdcount: 1,
        ancount: b.ancount,
        nscount: b.nscount,
        arcount,
        question: query.question,
        questionEnd: qend,
        opt,
        minTtl: b.minTtl,
      },
    };
  }
}
