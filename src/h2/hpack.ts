/**
 * HPACK (RFC 7541) for both ends of the connection core: header blocks made of static-table
 * references and literals (never indexed into the dynamic table, so the encoders keep no
 * state): a DoH request's head and a response's head, and a decoder that keeps the full dynamic
 * table.
 *
 * Peers do index into the dynamic table (h2o, behind dnsdist, indexes response headers even
 * when asked for a table of size 0; clients index request headers), so the decoder keeps the
 * table at the default 4096 octets, and fails the block (a COMPRESSION_ERROR for the connection)
 * on anything it cannot decode.
 *
 * Names and values are "binary" strings: one char per octet (WHATWG Infra's isomorphic decode,
 * what the Fetch standard's `Headers` holds). A value's length in chars is its length in octets,
 * so table entries are sized exactly as RFC 7541 §4.1 counts them, whatever the octets (a UTF-8
 * round trip would turn one invalid octet into three and let the table drift from the peer's).
 *
 * @module
 */
import { isomorphicDecode } from "../bytes/isomorphic.ts";
import { huffmanDecode } from "./huffman.ts";

/** RFC 7541 Appendix A, entries 1–61 (index 0 unused). */
// deno-fmt-ignore
const STATIC_TABLE: readonly (readonly [string, string])[] = [
  ["", ""],
  [":authority", ""], [":method", "GET"], [":method", "POST"], [":path", "/"],
  [":path", "/index.html"], [":scheme", "http"], [":scheme", "https"], [":status", "200"],
  [":status", "204"], [":status", "206"], [":status", "304"], [":status", "400"],
  [":status", "404"], [":status", "500"], ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"], ["accept-language", ""], ["accept-ranges", ""],
  ["accept", ""], ["access-control-allow-origin", ""], ["age", ""], ["allow", ""],
  ["authorization", ""], ["cache-control", ""], ["content-disposition", ""],
  ["content-encoding", ""], ["content-language", ""], ["content-length", ""],
  ["content-location", ""], ["content-range", ""], ["content-type", ""], ["cookie", ""],
  ["date", ""], ["etag", ""], ["expect", ""], ["expires", ""], ["from", ""], ["host", ""],
  ["if-match", ""], ["if-modified-since", ""], ["if-none-match", ""], ["if-range", ""],
  ["if-unmodified-since", ""], ["last-modified", ""], ["link", ""], ["location", ""],
  ["max-forwards", ""], ["proxy-authenticate", ""], ["proxy-authorization", ""], ["range", ""],
  ["referer", ""], ["refresh", ""], ["retry-after", ""], ["server", ""], ["set-cookie", ""],
  ["strict-transport-security", ""], ["transfer-encoding", ""], ["user-agent", ""], ["vary", ""],
  ["via", ""], ["www-authenticate", ""],
];

/** Static-table indexes the encoders use. */
const INDEX = {
  authority: 1,
  get: 2,
  post: 3,
  path: 4,
  https: 7,
  http: 6,
  status: 8,
  accept: 19,
  contentLength: 28,
  contentType: 31,
} as const;

/** A header block that violates RFC 7541 (or uses what this side ruled out). */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

const utf8 = new TextEncoder();

/** Appends an HPACK integer (§5.1) with an `n`-bit prefix; `flags` fills the prefix's high bits. */
export function pushInt(out: number[], value: number, n: number, flags: number): void {
  const max = (1 << n) - 1;
  if (value < max) {
    out.push(flags | value);
    return;
  }
  out.push(flags | max);
  value -= max;
  while (value >= 128) {
    out.push((value % 128) + 128);
    value = Math.floor(value / 128);
  }
  out.push(value);
}

/**
 * Appends a raw (not Huffman-coded) string literal (§5.2): one octet per char. A string with a
 * char above U+00FF is not a binary string (the Fetch `Headers` would refuse it); it is written
 * as UTF-8 rather than cut.
 */
export function pushString(out: number[], value: string): void {
  let octets = true;
  for (let i = 0; i < value.length && octets; i++) octets = value.charCodeAt(i) <= 0xff;
  if (octets) {
    pushInt(out, value.length, 7, 0x00);
    for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i));
    return;
  }
  const bytes = utf8.encode(value);
  pushInt(out, bytes.length, 7, 0x00);
  for (const b of bytes) out.push(b);
}

/** Appends a literal header field without indexing (§6.2.2), its name from the static table. */
function pushLiteral(out: number[], nameIndex: number, value: string): void {
  pushInt(out, nameIndex, 4, 0x00);
  pushString(out, value);
}

/** The parts of a DoH request's header block. */
export interface RequestHead {
  readonly method: "GET" | "POST";
  readonly scheme: "https" | "http";
  readonly authority: string;
  /** Path and query. */
  readonly path: string;
  readonly accept: string;
  /** POST only. */
  readonly contentType?: string;
}

/**
 * Encodes a request's header block without the `content-length` field; {@linkcode withContentLength}
 * adds it per request, so a POST's block can be built once per upstream URL.
 *
 * @example
 * ```ts
 * const head = encodeRequestHead({
 *   method: "POST", scheme: "https", authority: "dns.example", path: "/dns-query",
 *   accept: "application/dns-message", contentType: "application/dns-message",
 * });
 * ```
 */
export function encodeRequestHead(head: RequestHead): Uint8Array {
  const out: number[] = [];
  pushInt(out, head.method === "GET" ? INDEX.get : INDEX.post, 7, 0x80);
  pushInt(out, head.scheme === "https" ? INDEX.https : INDEX.http, 7, 0x80);
  pushLiteral(out, INDEX.authority, head.authority);
  pushLiteral(out, INDEX.path, head.path);
  pushLiteral(out, INDEX.accept, head.accept);
  if (head.contentType !== undefined) pushLiteral(out, INDEX.contentType, head.contentType);
  return Uint8Array.from(out);
}

/** `head` followed by a `content-length: length` literal (per request, so kept cheap). */
export function withContentLength(head: Uint8Array, length: number): Uint8Array {
  const digits = String(length);
  const out = new Uint8Array(head.length + 3 + digits.length);
  out.set(head);
  let at = head.length;
  out[at++] = 0x0f; // literal without indexing, name index 28 = 15 + 13
  out[at++] = INDEX.contentLength - 15;
  out[at++] = digits.length; // raw string, length < 127
  for (let i = 0; i < digits.length; i++) out[at++] = digits.charCodeAt(i);
  return out;
}

/** Static-table indexes of `:status` values (RFC 7541 Appendix A). */
const STATUS_INDEX: Record<number, number> = {
  200: 8,
  204: 9,
  206: 10,
  304: 11,
  400: 12,
  404: 13,
  500: 14,
};

/** Static-table name indexes for the fields a DoH answer carries (RFC 7541 Appendix A). */
const NAME_INDEX: Record<string, number> = {
  "cache-control": 24,
  "content-length": 28,
  "content-type": 31,
  "date": 33,
  "etag": 34,
  "location": 46,
  "vary": 59,
};

/** Encoded fields by name, then value: DoH answers repeat a handful of them. */
const FIELD_CACHE = new Map<string, Map<string, Uint8Array>>();
let cachedFields = 0;

/** `name: value` as a literal without indexing (name from the static table when it is there). */
function encodeField(name: string, value: string): Uint8Array {
  let byValue = FIELD_CACHE.get(name);
  let bytes = byValue?.get(value);
  if (bytes) return bytes;
  const out: number[] = [];
  const index = NAME_INDEX[name];
  if (index !== undefined) pushInt(out, index, 4, 0); // literal without indexing, known name
  else {
    out.push(0x00); // literal without indexing, new name
    pushString(out, name);
  }
  pushString(out, value);
  bytes = Uint8Array.from(out);
  if (cachedFields >= 512) {
    FIELD_CACHE.clear();
    cachedFields = 0;
    byValue = undefined;
  }
  if (!byValue) FIELD_CACHE.set(name, byValue = new Map());
  byValue.set(value, bytes);
  cachedFields++;
  return bytes;
}

/**
 * Builds response header blocks in one reused buffer: `:status`, then fields as literals without
 * indexing (so the peer's decoder needs no table state from us), then `content-length`. Encoded
 * fields are cached; a block is a view of the buffer, valid until the next {@linkcode begin}.
 *
 * @example
 * ```ts
 * const head = new ResponseHeadWriter();
 * head.begin(200);
 * head.field("content-type", "application/dns-message");
 * head.contentLength(33);
 * const block = head.finish();
 * ```
 */
export class ResponseHeadWriter {
  #buffer = new Uint8Array(512);
  #length = 0;

  /** Starts a block with `:status` (indexed when the static table has it). */
  begin(status: number): void {
    this.#length = 0;
    const index = STATUS_INDEX[status];
    if (index !== undefined) {
      this.#buffer[this.#room(1)] = 0x80 | index;
      return;
    }
    const out: number[] = [];
    pushInt(out, INDEX.status, 4, 0); // literal without indexing, name :status
    pushString(out, String(status));
    this.#buffer.set(out, this.#room(out.length));
  }

  /** Adds a field; `name` must be lower case. */
  field(name: string, value: string): void {
    const bytes = encodeField(name, value);
    const at = this.#room(bytes.length);
    this.#buffer.set(bytes, at);
  }

  /** Adds `content-length: n`. */
  contentLength(n: number): void {
    const digits = String(n);
    let at = this.#room(3 + digits.length);
    const out = this.#buffer;
    out[at++] = 0x0f; // literal without indexing, name index 28 = 15 + 13
    out[at++] = INDEX.contentLength - 15;
    out[at++] = digits.length; // raw string, length < 127
    for (let i = 0; i < digits.length; i++) out[at++] = digits.charCodeAt(i);
  }

  /** The block built since {@linkcode begin}. */
  finish(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  /** Makes room for `n` more octets; returns where they go. */
  #room(n: number): number {
    const at = this.#length;
    if (at + n > this.#buffer.length) {
      const grown = new Uint8Array(Math.max(this.#buffer.length * 2, at + n));
      grown.set(this.#buffer.subarray(0, at));
      this.#buffer = grown;
    }
    this.#length = at + n;
    return at;
  }
}

/**
 * A response header block: `:status`, then `headers` (names lower-cased) as literals without
 * indexing, so the peer's decoder needs no table state from us. Encoded fields are cached.
 *
 * @example
 * ```ts
 * encodeResponseHead(200, [["content-type", "application/dns-message"]]);
 * ```
 */
export function encodeResponseHead(
  status: number,
  headers: readonly (readonly [string, string])[],
): Uint8Array {
  const writer = new ResponseHeadWriter();
  writer.begin(status);
  for (const [name, value] of headers) writer.field(name.toLowerCase(), value);
  return writer.finish().slice();
}

/** Sees one decoded field (binary strings: one char per octet). */
export type FieldHandler = (name: string, value: string) => void;

/** RFC 9113 §6.5.2's size of a header list entry beyond its name and value octets. */
export const FIELD_OVERHEAD = 32;

const NO_BLOCK = new Uint8Array(0);

/**
 * Decodes the header blocks one peer sends on one connection. Keeps the dynamic table the RFC
 * requires, at most `maxTableSize` octets (what this side advertised), sized in octets
 * (RFC 7541 §4.1: name octets + value octets + 32).
 *
 * @example
 * ```ts
 * const decoder = new HpackDecoder();
 * decoder.decode(Uint8Array.of(0x88), (name, value) => console.log(name, value)); // :status 200
 * ```
 */
export class HpackDecoder {
  readonly #max: number;
  #limit: number;
  #table: [string, string][] = [];
  #size = 0;
  /** The block being decoded and the read position in it (instance state: no closures per call). */
  #block: Uint8Array = NO_BLOCK;
  #pos = 0;

  constructor(maxTableSize = 4_096) {
    this.#max = maxTableSize;
    this.#limit = maxTableSize;
  }

  /** The dynamic table's size in octets, as RFC 7541 §4.1 counts it. */
  get tableSize(): number {
    return this.#size;
  }

  /** Entries in the dynamic table. */
  get tableLength(): number {
    return this.#table.length;
  }

  /**
   * Decodes one complete header block (HEADERS plus any CONTINUATION payloads, joined), handing
   * every field to `onField` in order, while the decoded header list stays within
   * `maxListSize` octets (RFC 9113 §6.5.2: name octets + value octets + 32 per field).
   *
   * Past the cap no field reaches `onField` and no string is built for one, but the block is
   * decoded to its end, so the dynamic table stays in step with the peer's: a reference to a
   * table entry costs the same whatever the entry's size (the "HPACK bomb": one large literal
   * indexed, then thousands of one-octet references to it).
   *
   * @returns true when every field was handed over; false when the list went over the cap
   *   (the fields handed over before it are an incomplete list: drop them)
   * @throws {HpackError} for a block it cannot decode (the connection cannot go on)
   */
  decode(block: Uint8Array, onField: FieldHandler, maxListSize = Infinity): boolean {
    this.#block = block;
    this.#pos = 0;
    let listSize = 0;
    let over = false;
    let fieldsSeen = false;
    while (this.#pos < block.length) {
      const b = block[this.#pos];
      if (b & 0x80) { // indexed field
        const [name, value] = this.#entry(this.#readInt(7));
        fieldsSeen = true;
        if (over) continue;
        listSize += name.length + value.length + FIELD_OVERHEAD;
        if (listSize > maxListSize) over = true;
        else onField(name, value);
      } else if ((b & 0xe0) === 0x20) { // dynamic table size update
        if (fieldsSeen) throw new HpackError("table size update after a field");
        const size = this.#readInt(5);
        if (size > this.#max) throw new HpackError(`table size ${size} above ${this.#max}`);
        this.#limit = size;
        this.#evict(0);
      } else { // literal: with incremental indexing (01), without (0000) or never indexed (0001)
        const indexing = (b & 0xc0) === 0x40;
        const nameIndex = this.#readInt(indexing ? 6 : 4);
        fieldsSeen = true;
        if (over && !indexing) { // nobody will see it and the table does not change
          if (nameIndex === 0) this.#skipString();
          else this.#entry(nameIndex);
          this.#skipString();
          continue;
        }
        const name = nameIndex === 0 ? this.#readString() : this.#entry(nameIndex)[0];
        const value = this.#readString();
        if (indexing) this.#insert(name, value);
        if (over) continue;
        listSize += name.length + value.length + FIELD_OVERHEAD;
        if (listSize > maxListSize) over = true;
        else onField(name, value);
      }
    }
    this.#block = NO_BLOCK;
    return !over;
  }

  #readInt(n: number): number {
    const block = this.#block;
    if (this.#pos >= block.length) throw new HpackError("truncated integer");
    const max = (1 << n) - 1;
    let value = block[this.#pos++] & max;
    if (value < max) return value;
    let shift = 1;
    for (;;) {
      if (this.#pos >= block.length) throw new HpackError("truncated integer");
      const b = block[this.#pos++];
      value += (b & 0x7f) * shift;
      if ((b & 0x80) === 0) break;
      shift *= 128;
      if (shift > 2 ** 28) throw new HpackError("integer too large");
    }
    return value;
  }

  /** The octets of the string literal (§5.2) at the read position, stepping past it. */
  #stringOctets(): Uint8Array {
    const block = this.#block;
    if (this.#pos >= block.length) throw new HpackError("truncated string");
    const length = this.#readInt(7);
    if (this.#pos + length > block.length) throw new HpackError("truncated string");
    const raw = block.subarray(this.#pos, this.#pos + length);
    this.#pos += length;
    return raw;
  }

  #readString(): string {
    const huffman = (this.#block[this.#pos] & 0x80) !== 0; // undefined & 0x80: the read throws
    const raw = this.#stringOctets();
    if (!huffman) return isomorphicDecode(raw);
    try {
      return isomorphicDecode(huffmanDecode(raw, true)); // the string copies the octets
    } catch (error) {
      throw new HpackError((error as Error).message);
    }
  }

  /** Steps over a string literal nobody will see (its Huffman code is not checked). */
  #skipString(): void {
    this.#stringOctets();
  }

  #entry(index: number): readonly [string, string] {
    if (index === 0) throw new HpackError("index 0");
    if (index < STATIC_TABLE.length) return STATIC_TABLE[index];
    const dynamic = this.#table[index - STATIC_TABLE.length];
    if (!dynamic) throw new HpackError(`index ${index} is not in the table`);
    return dynamic;
  }

  #insert(name: string, value: string): void {
    const size = name.length + value.length + 32; // one char per octet
    this.#evict(size);
    if (size <= this.#limit) {
      this.#table.unshift([name, value]);
      this.#size += size;
    }
  }

  /** Evicts until `room` more octets fit under the limit (or the table is empty). */
  #evict(room: number): void {
    while (this.#table.length > 0 && this.#size + room > this.#limit) {
      const [n, v] = this.#table.pop()!;
      this.#size -= n.length + v.length + 32;
    }
  }
}
