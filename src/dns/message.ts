/**
 * A bounds-checked walk over a DNS message in wire format. It reads the header, the first
 * question and the OPT record, and checks that every record in every section is well formed,
 * without building objects for the records themselves. This is the hot path's parser: editing
 * an ID, an EDNS option or padding never needs a full decode and re-encode.
 *
 * @module
 */
import { getUint16 as u16, getUint32 as u32 } from "../bytes/uint.ts";
import { HEADER_LENGTH, RrType } from "./constants.ts";
import { type MessageHeader, readHeader, skipName } from "./wire.ts";
import { cacheTtl, soaNegativeTtl, ttlAt } from "./ttl.ts";

export {
  getFlags,
  getId,
  headerOpcode,
  headerRcode,
  type MessageHeader,
  readHeader,
  setId,
  skipName,
  withId,
} from "./wire.ts";

/** One question (RFC 1035 §4.1.2). `name` is in presentation form without the final dot. */
export interface Question {
  /** Presentation form, e.g. `example.com` (root is `""`), bytes outside `[!-~]` as `\DDD`. */
  readonly name: string;
  readonly type: number;
  readonly class: number;
}

/** One EDNS(0) option (RFC 6891 §6.1.2). */
export interface EdnsOption {
  readonly code: number;
  readonly data: Uint8Array;
}

/** The OPT pseudo-record, with where it sits in the message. */
export interface OptRecord {
  /** Offset of the record's first byte (its owner name). */
  readonly start: number;
  /** Offset just past the record. */
  readonly end: number;
  /** Requestor's UDP payload size (the CLASS field). */
  readonly udpSize: number;
  /** The TTL field: extended rcode (8 bits), version (8 bits), flags incl. DO (16 bits). */
  readonly ttl: number;
  readonly options: readonly EdnsOption[];
}

/** What {@linkcode parseMessage} learns about a message: its header, and more. */
export interface MessageInfo extends MessageHeader {
  /** The first question, if there is one. */
  readonly question?: Question;
  /** Offset just past the question section. */
  readonly questionEnd: number;
  /** The OPT record, if the additional section has one. */
  readonly opt?: OptRecord;
  /**
   * How long the message may be cached, in seconds, by the rule of `minAnswerTtl` (`ttl.ts`):
   * the smallest answer TTL, or the negative-caching TTL of a negative answer; `undefined` when
   * it gives none (a query, SERVFAIL, NXDOMAIN without an SOA, ...). Learnt during the walk, so
   * the cache and the DoH face's `Cache-Control` need no walk of their own; whoever changes a
   * message's TTLs (the cache's ageing) sets it anew.
   */
  readonly minTtl: number | undefined;
}

const MAX_POINTER_HOPS = 64;

/**
 * Reads a possibly compressed domain name at `offset`.
 *
 * @returns the name in presentation form and the offset just past it in the message
 * @throws {RangeError} if the name runs past the message, loops, or uses a reserved label type
 */
export function readName(wire: Uint8Array, offset: number): { name: string; end: number } {
  const name = nameAt(wire, offset);
  return { name, end: nameEnd };
}

/** Where the name {@linkcode nameAt} read last ends. */
let nameEnd = 0;

/**
 * {@linkcode readName} without the result object (the walk's question needs only the text): the
 * name at `offset`; its end is left in `nameEnd`.
 */
function nameAt(wire: Uint8Array, offset: number): string {
  let pos = offset;
  let end = -1;
  let hops = 0;
  let length = 1;
  // The name's text goes into NAME_TEXT while every byte is printable and needs no escape (the
  // usual case), and becomes one string at the end; a name that needs escapes is read again
  // label by label.
  let plain = true;
  let n = 0;
  for (;;) {
    if (pos >= wire.length) throw new RangeError(`dns: name at offset ${offset} runs past the end`);
    const len = wire[pos];
    if (len === 0) {
      if (end < 0) end = pos + 1;
      break;
    }
    const kind = len & 0xc0;
    if (kind === 0xc0) {
      if (pos + 1 >= wire.length) {
        throw new RangeError(`dns: name pointer at offset ${pos} runs past the end`);
      }
      const target = ((len & 0x3f) << 8) | wire[pos + 1];
      if (end < 0) end = pos + 2;
      if (++hops > MAX_POINTER_HOPS || target >= pos) {
        throw new RangeError(`dns: compression loop in name at offset ${offset}`);
      }
      pos = target;
      continue;
    }
    if (kind !== 0) throw new RangeError(`dns: reserved label type at offset ${pos}`);
    if (pos + 1 + len > wire.length) {
      throw new RangeError(`dns: label at offset ${pos} runs past the end`);
    }
    length += len + 1;
    if (length > 255) throw new RangeError(`dns: name at offset ${offset} is over 255 bytes`);
    if (plain) {
      if (n > 0) NAME_TEXT[n++] = 0x2e;
      for (let i = pos + 1; i <= pos + len; i++) {
        const c = wire[i];
        if (c <= 0x20 || c >= 0x7f || c === 0x2e || c === 0x5c) {
          plain = false;
          break;
        }
        NAME_TEXT[n++] = c;
      }
    }
    pos += 1 + len;
  }
  nameEnd = end;
  if (plain) {
    // fromCharCode takes the typed array as its argument list: one string, no per-label ones.
    const text = NAME_VIEWS[n] ??= NAME_TEXT.subarray(0, n);
    return String.fromCharCode.apply(null, text as never);
  }
  return escapedName(wire, offset);
}

/** A name's text while it is being read: at most 254 characters, so 255 bytes are enough. */
const NAME_TEXT = new Uint8Array(255);
/** Views of its first n bytes, made once each. */
const NAME_VIEWS: (Uint8Array | undefined)[] = [];

/** The name at `offset` (already checked by {@linkcode readName}) with escapes, label by label. */
function escapedName(wire: Uint8Array, offset: number): string {
  const labels: string[] = [];
  let pos = offset;
  for (;;) {
    const len = wire[pos];
    if (len === 0) break;
    if ((len & 0xc0) === 0xc0) {
      pos = ((len & 0x3f) << 8) | wire[pos + 1];
      continue;
    }
    labels.push(labelText(wire, pos + 1, len));
    pos += 1 + len;
  }
  return labels.join(".");
}

function labelText(wire: Uint8Array, start: number, len: number): string {
  let s = "";
  for (let i = start; i < start + len; i++) {
    const c = wire[i];
    if (c === 0x2e || c === 0x5c) s += "\\" + String.fromCharCode(c);
    else if (c > 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += "\\" + c.toString().padStart(3, "0");
  }
  return s;
}

/**
 * Walks a whole DNS message and reports its header, first question and OPT record.
 *
 * @throws {RangeError} if the message is shorter than a header, a count promises more records
 *   than the message holds, a name or record runs past the end, there are trailing bytes, or
 *   there is more than one OPT record
 *
 * @example
 * ```ts
 * const info = parseMessage(wire);
 * console.log(info.question?.name, info.opt?.udpSize);
 * ```
 */
export function parseMessage(wire: Uint8Array): MessageInfo {
  // The header's fields read in place: readHeader's object, made twice per bridged query, was
  // measurable in the allocation profile.
  if (wire.length < HEADER_LENGTH) readHeader(wire); // throws its RangeError
  const id = u16(wire, 0);
  const flags = u16(wire, 2);
  const qdcount = u16(wire, 4);
  const ancount = u16(wire, 6);
  const nscount = u16(wire, 8);
  const arcount = u16(wire, 10);

  let pos = HEADER_LENGTH;
  let question: Question | undefined;
  for (let i = 0; i < qdcount; i++) {
    const start = pos;
    pos = skipName(wire, pos);
    if (pos + 4 > wire.length) throw new RangeError("dns: question runs past the end");
    if (i === 0) {
      question = {
        name: nameAt(wire, start),
        type: u16(wire, pos),
        class: u16(wire, pos + 2),
      };
    }
    pos += 4;
  }
  const questionEnd = pos;

  let opt: OptRecord | undefined;
  let answerMin: number | undefined;
  let negative: number | undefined;
  const records = ancount + nscount + arcount;
  for (let i = 0; i < records; i++) {
    const start = pos;
    pos = skipName(wire, pos);
    if (pos + 10 > wire.length) throw new RangeError("dns: record header runs past the end");
    const type = u16(wire, pos);
    const rdlength = u16(wire, pos + 8);
    const rdata = pos + 10;
    const end = rdata + rdlength;
    if (end > wire.length) throw new RangeError("dns: record data runs past the end");
    if (type === RrType.OPT) {
      if (i < ancount + nscount) {
        throw new RangeError("dns: OPT record outside the additional section");
      }
      if (opt) throw new RangeError("dns: more than one OPT record");
      if (wire[start] !== 0) throw new RangeError("dns: OPT record owner is not the root");
      opt = {
        start,
        end,
        udpSize: u16(wire, pos + 2),
        ttl: u32(wire, pos + 4),
        options: readOptions(wire, rdata, end),
      };
    } else if (i < ancount) {
      const ttl = ttlAt(wire, pos + 4);
      answerMin = answerMin === undefined ? ttl : Math.min(answerMin, ttl);
    } else if (type === RrType.SOA && negative === undefined && i < ancount + nscount) {
      negative = soaNegativeTtl(wire, rdata, end, ttlAt(wire, pos + 4));
    }
    pos = end;
  }
  if (pos !== wire.length) {
    throw new RangeError(`dns: ${wire.length - pos} trailing bytes after the last record`);
  }
  const minTtl = cacheTtl(flags, answerMin, negative);
  return { id, flags, qdcount, ancount, nscount, arcount, question, questionEnd, opt, minTtl };
}

function readOptions(wire: Uint8Array, start: number, end: number): EdnsOption[] {
  const options: EdnsOption[] = [];
  let pos = start;
  while (pos < end) {
    if (pos + 4 > end) throw new RangeError("dns: EDNS option header runs past the OPT record");
    const code = u16(wire, pos);
    const len = u16(wire, pos + 2);
    if (pos + 4 + len > end) throw new RangeError("dns: EDNS option runs past the OPT record");
    options.push({ code, data: wire.subarray(pos + 4, pos + 4 + len) });
    pos += 4 + len;
  }
  return options;
}

/** True if two questions ask the same thing (names compared ASCII case-insensitively). */
export function sameQuestion(a: Question, b: Question): boolean {
  return a.type === b.type && a.class === b.class && a.name.toLowerCase() === b.name.toLowerCase();
}
