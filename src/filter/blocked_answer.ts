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
import { EdeCode, HEADER_LENGTH, Rcode, RrType } from "../dns/constants.ts";
import { assembleAnswer, type AssembleOptions, type Prepared } from "../dns/assemble.ts";
import type { EdnsOption } from "../dns/message.ts";
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
type Body = Prepared;

/** The EDE every blocked answer carries. */
const BLOCKED_OPTION: EdnsOption = extendedErrorOption({ code: EdeCode.BLOCKED });
/** Blocked answers are not authoritative, and carry the EDE. */
const BLOCKED: AssembleOptions = { authoritative: false, ednsOptions: [BLOCKED_OPTION] };

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
  return { rcode, ancount, nscount, body: Uint8Array.from(bytes), minTtl };
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
    return assembleAnswer(query, this.#bodyFor(query, action), BLOCKED);
  }
}
