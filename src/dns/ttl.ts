/**
 * TTL math over a response in wire format: how long an answer may be cached, for the DoH face's
 * `Cache-Control: max-age` (RFC 8484 §5.1) and for caches. A byte-level walk, no decoding.
 *
 * @module
 */
import { getUint16 as u16, getUint32 } from "../bytes/uint.ts";
import { HEADER_LENGTH, Rcode, RrType } from "./constants.ts";
import { headerRcode, readHeader, skipName } from "./message.ts";

/** RFC 2181 §8: a TTL with the most significant bit set is treated as zero. */
const MAX_TTL = 0x7fffffff;

/** A TTL field: RFC 2181 §8 reads one with the top bit set as 0. */
function u32(wire: Uint8Array, at: number): number {
  const v = getUint32(wire, at);
  return v > MAX_TTL ? 0 : v;
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
 * TTLs with the top bit set count as 0 (RFC 2181 §8).
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
    let answers = 0;
    let negative: number | undefined;
    for (let i = 0; i < ancount + nscount; i++) {
      const rdata = skipName(wire, pos) + 10;
      if (rdata > wire.length) return undefined;
      const type = u16(wire, rdata - 10);
      const ttl = u32(wire, rdata - 6);
      const end = rdata + u16(wire, rdata - 2);
      if (end > wire.length) return undefined;
      if (i < ancount) {
        if (type !== RrType.OPT) {
          answers++;
          min = min === undefined ? ttl : Math.min(min, ttl);
        }
      } else if (type === RrType.SOA && negative === undefined) {
        // RDATA: MNAME, RNAME, SERIAL, REFRESH, RETRY, EXPIRE, MINIMUM (the last 4 bytes).
        const fixed = skipName(wire, skipName(wire, rdata));
        if (fixed + 20 !== end) return undefined;
        negative = Math.min(ttl, u32(wire, end - 4));
      }
      pos = end;
    }
    if (rcode === Rcode.NXDOMAIN || answers === 0) {
      if (negative === undefined) return undefined;
      return min === undefined ? negative : Math.min(min, negative);
    }
    return min;
  } catch {
    return undefined;
  }
}

/**
 * Lowers every record's TTL (answer, authority and additional sections; not OPT) by `seconds`,
 * not below `floor` and not above `ceiling`, in place. For answers served from a cache: a client
 * must see the time left, not the time the upstream gave (nor more than the cache keeps it).
 *
 * @throws {RangeError} if the message does not hold the records its header promises
 *
 * @example
 * ```ts
 * const copy = new Uint8Array(cached);
 * ageTtls(copy, Math.floor((now - storedAt) / 1000));
 * ```
 */
export function ageTtls(wire: Uint8Array, seconds: number, floor = 0, ceiling = MAX_TTL): void {
  if (seconds <= 0 && floor <= 0 && ceiling >= MAX_TTL) return;
  const { qdcount, ancount, nscount, arcount } = readHeader(wire);
  const records = ancount + nscount + arcount;
  let pos = HEADER_LENGTH;
  for (let i = 0; i < qdcount; i++) pos = skipName(wire, pos) + 4;
  for (let i = 0; i < records; i++) {
    const rdata = skipName(wire, pos) + 10;
    if (rdata > wire.length) throw new RangeError("dns: record header runs past the end");
    const end = rdata + u16(wire, rdata - 2);
    if (end > wire.length) throw new RangeError("dns: record data runs past the end");
    if (u16(wire, rdata - 10) !== RrType.OPT) {
      const at = rdata - 6;
      const ttl = Math.min(ceiling, Math.max(floor, u32(wire, at) - seconds));
      wire[at] = ttl >>> 24;
      wire[at + 1] = (ttl >>> 16) & 0xff;
      wire[at + 2] = (ttl >>> 8) & 0xff;
      wire[at + 3] = ttl & 0xff;
    }
    pos = end;
  }
}
