/**
 * Reading a message's wire without walking it: the header's fields (ID, flags, counts) and names
 * skipped over. The lowest piece of `src/dns/`: `message.ts` (the one walk) and `ttl.ts` (TTL
 * reads and ageing) both build on it.
 *
 * @module
 */
import { getUint16 as u16 } from "../bytes/uint.ts";
import { HEADER_LENGTH } from "./constants.ts";

/** The fixed 12-byte header of a message (RFC 1035 §4.1.1), as {@linkcode readHeader} reads it. */
export interface MessageHeader {
  readonly id: number;
  /** The 16-bit flags word: QR, opcode, AA, TC, RD, RA, Z, AD, CD, rcode. */
  readonly flags: number;
  readonly qdcount: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly arcount: number;
}

/**
 * Skips the (possibly compressed) name at `offset` without building it: the checks of
 * `readName` (`message.ts`) for the inline part, none for where a pointer leads.
 *
 * @returns the offset just past the name
 * @throws {RangeError} if the name runs past the message or uses a reserved label type
 */
export function skipName(wire: Uint8Array, offset: number): number {
  let pos = offset;
  for (;;) {
    if (pos >= wire.length) throw new RangeError(`dns: name at offset ${offset} runs past the end`);
    const len = wire[pos];
    if (len === 0) return pos + 1;
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= wire.length) {
        throw new RangeError(`dns: name pointer at offset ${pos} runs past the end`);
      }
      return pos + 2;
    }
    if (kind !== 0) throw new RangeError(`dns: reserved label type at offset ${pos}`);
    pos += 1 + len;
  }
}

/**
 * Reads the header of a message: the only place its bytes are read by position.
 *
 * @throws {RangeError} if `wire` is shorter than a header
 *
 * @example
 * ```ts
 * const { flags, ancount } = readHeader(answer);
 * if (headerRcode(flags) === Rcode.NOERROR && ancount === 0) console.log("NODATA");
 * ```
 */
export function readHeader(wire: Uint8Array): MessageHeader {
  if (wire.length < HEADER_LENGTH) {
    throw new RangeError(`dns: message of ${wire.length} bytes is shorter than a header`);
  }
  return {
    id: u16(wire, 0),
    flags: u16(wire, 2),
    qdcount: u16(wire, 4),
    ancount: u16(wire, 6),
    nscount: u16(wire, 8),
    arcount: u16(wire, 10),
  };
}

/** Reads the message ID. The caller guarantees at least two bytes. */
export function getId(wire: Uint8Array): number {
  return u16(wire, 0);
}

/** Reads the header's flags word (see {@linkcode headerRcode}). The caller guarantees four bytes. */
export function getFlags(wire: Uint8Array): number {
  return u16(wire, 2);
}

/**
 * Returns a copy of `wire` with the message ID set to `id`.
 *
 * @example
 * ```ts
 * const upstreamQuery = withId(query, 0); // RFC 8484 §4.1: ID 0 for cache friendliness
 * ```
 */
export function withId(wire: Uint8Array, id: number): Uint8Array<ArrayBuffer> {
  const copy = new Uint8Array(wire); // a copy even for a Node Buffer, whose slice() is a view
  copy[0] = id >> 8;
  copy[1] = id & 0xff;
  return copy;
}

/** Sets the message ID of `wire` in place and returns it. Only for a buffer the caller owns. */
export function setId<T extends Uint8Array>(wire: T, id: number): T {
  wire[0] = id >> 8;
  wire[1] = id & 0xff;
  return wire;
}

/** The rcode in a message's header (low 4 bits; the OPT record may extend it). */
export function headerRcode(flags: number): number {
  return flags & 0x0f;
}

/** The opcode in a message's header flags. */
export function headerOpcode(flags: number): number {
  return (flags >> 11) & 0x0f;
}
