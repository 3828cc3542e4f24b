/**
 * TTL math over a response in wire format: how long an answer may be cached, for the DoH face's
 * `Cache-Control: max-age` (RFC 8484 §5.1) and for caches. A byte-level walk, no decoding.
 *
 * One rule ({@linkcode minAnswerTtl}), reckoned by three walks: `parseMessage` learns it as it
 * checks a message (`MessageInfo.minTtl`), {@linkcode ageTtls} as it lowers the TTLs, and
 * {@linkcode minAnswerTtl} for bytes nothing has walked. They share the pieces below.
 *
 * @module
 */
import { getUint16 as u16, getUint32 } from "../bytes/uint.ts";
import { HEADER_LENGTH, Rcode, RrType } from "./constants.ts";
import { headerRcode, readHeader, skipName } from "./wire.ts";

/** RFC 2181 §8: a TTL with the most significant bit set is treated as zero. */
const MAX_TTL = 0x7fffffff;

/** What {@linkcode soaNegativeTtl} gives for an SOA whose RDATA is not two names and 20 bytes. */
export const MALFORMED_SOA = -1;

/**
 * The TTL field at `at`, as RFC 2181 §8 reads it: one with the top bit set is 0.
 *
 * @example
 * ```ts
 * const ttl = ttlAt(wire, rdata - 6); // a record's TTL, its RDATA at `rdata`
 * ```
 */
export function ttlAt(wire: Uint8Array, at: number): number {
  const v = getUint32(wire, at);
  return v > MAX_TTL ? 0 : v;
}

/**
 * The negative-caching TTL an SOA record gives (RFC 2308 §5): the lesser of its TTL `ttl` and
 * the MINIMUM field of its RDATA (`rdata` to `end`), or {@linkcode MALFORMED_SOA} when the RDATA
 * is not two names and 20 bytes.
 */
export function soaNegativeTtl(wire: Uint8Array, rdata: number, end: number, ttl: number): number {
  // RDATA: MNAME, RNAME, SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM (the last 4 bytes).
  let fixed: number;
  try {
    fixed = skipName(wire, skipName(wire, rdata));
  } catch {
    return MALFORMED_SOA;
  }
  if (fixed + 20 !== end) return MALFORMED_SOA;
  return Math.min(ttl, ttlAt(wire, end - 4));
}

/**
 * The rule of {@linkcode minAnswerTtl}, given what a walk found: the header's `flags`, the
 * smallest answer-section TTL (`undefined`: no answer records) and the first authority-section
 * SOA's {@linkcode soaNegativeTtl} (`undefined`: no SOA).
 */
export function cacheTtl(
  flags: number,
  answerMin: number | undefined,
  negative: number | undefined,
): number | undefined {
  const rcode = flags & 0x0f;
  if (rcode !== Rcode.NOERROR && rcode !== Rcode.NXDOMAIN) return undefined;
  if (negative === MALFORMED_SOA) return undefined;
  if (rcode === Rcode.NXDOMAIN || answerMin === undefined) {
    if (negative === undefined) return undefined;
    return answerMin === undefined ? negative : Math.min(answerMin, negative);
  }
  return answerMin;
}

/**
 * How long a response may be cached, in seconds, or `undefined` when it gives no TTL to go by.
 *
 * - The smallest TTL among the answer-section records (OPT excluded).
 * - For a negative answer — NXDOMAIN, or NOERROR with no answer records (NODATA) — also the
 *   negative-caching TTL of the authority section's SOA: the lesser of its TTL and its MINIMUM
 *   field (RFC 2308 §5). An NXDOMAIN reached through a CNAME takes the smaller of both.
 * - `undefined` for other rcodes (SERVFAIL, REFUSED, ...), for a negative answer without an SOA,
 *   and for bytes that do not hold the records their header promises.
 *
 * TTLs with the top bit set count as 0 (RFC 2181 §8). A message that was parsed already has this
 * in its info (`MessageInfo.minTtl`): this walk is for bytes nothing has walked.
 *
 * @example
 * ```ts
 * const ttl = minAnswerTtl(answer);
 * headers.set("cache-control", `max-age=${ttl ?? 0}`);
 * ```
 */
export function minAnswerTtl(wire: Uint8Array): number | undefined {
  if (wire.length < HEADER_LENGTH) return undefined;
  const { flags, qdcount, ancount, nscount } = readHeader(wire);
  const rcode = headerRcode(flags);
  if (rcode !== Rcode.NOERROR && rcode !== Rcode.NXDOMAIN) return undefined;
  try {
    let pos = HEADER_LENGTH;
    for (let i = 0; i < qdcount; i++) pos = skipName(wire, pos) + 4;
    let min: number | undefined;
    let negative: number | undefined;
    for (let i = 0; i < ancount + nscount; i++) {
      const rdata = skipName(wire, pos) + 10;
      if (rdata > wire.length) return undefined;
      const type = u16(wire, rdata - 10);
      const ttl = ttlAt(wire, rdata - 6);
      const end = rdata + u16(wire, rdata - 2);
      if (end > wire.length) return undefined;
      if (i < ancount) {
        if (type !== RrType.OPT) min = min === undefined ? ttl : Math.min(min, ttl);
      } else if (type === RrType.SOA && negative === undefined) {
        negative = soaNegativeTtl(wire, rdata, end, ttl);
        if (negative === MALFORMED_SOA) return undefined;
      }
      pos = end;
    }
    return cacheTtl(flags, min, negative);
  } catch {
    return undefined;
  }
}

/**
 * Lowers every record's TTL (answer, authority and additional sections; not OPT) by `seconds`,
 * not below `floor` and not above `ceiling`, in place. For answers served from a cache: a client
 * must see the time left, not the time the upstream gave (nor more than the cache keeps it).
 * Always walks: a caller with nothing to age (`seconds` and `floor` 0, no `ceiling`) skips it.
 *
 * @returns the aged message's {@linkcode minAnswerTtl}, learnt on the way
 * @throws {RangeError} if the message does not hold the records its header promises
 *
 * @example
 * ```ts
 * const copy = new Uint8Array(cached);
 * const ttl = ageTtls(copy, Math.floor((now - storedAt) / 1000));
 * ```
 */
export function ageTtls(
  wire: Uint8Array,
  seconds: number,
  floor = 0,
  ceiling = MAX_TTL,
): number | undefined {
  const { flags, qdcount, ancount, nscount, arcount } = readHeader(wire);
  const records = ancount + nscount + arcount;
  let pos = HEADER_LENGTH;
  for (let i = 0; i < qdcount; i++) pos = skipName(wire, pos) + 4;
  let min: number | undefined;
  let negative: number | undefined;
  for (let i = 0; i < records; i++) {
    const rdata = skipName(wire, pos) + 10;
    if (rdata > wire.length) throw new RangeError("dns: record header runs past the end");
    const end = rdata + u16(wire, rdata - 2);
    if (end > wire.length) throw new RangeError("dns: record data runs past the end");
    const type = u16(wire, rdata - 10);
    if (type !== RrType.OPT) {
      const at = rdata - 6;
      const ttl = Math.min(ceiling, Math.max(floor, ttlAt(wire, at) - seconds));
      wire[at] = ttl >>> 24;
      wire[at + 1] = (ttl >>> 16) & 0xff;
      wire[at + 2] = (ttl >>> 8) & 0xff;
      wire[at + 3] = ttl & 0xff;
      if (i < ancount) {
        const read = ttlAt(wire, at);
        min = min === undefined ? read : Math.min(min, read);
      } else if (i < ancount + nscount && type === RrType.SOA && negative === undefined) {
        negative = soaNegativeTtl(wire, rdata, end, ttlAt(wire, at));
      }
    }
    pos = end;
  }
  return cacheTtl(flags, min, negative);
}
