/**
 * The HPACK (RFC 7541) a DoH client needs: request header blocks made of static-table
 * references and literals (never indexed into the dynamic table, so the encoder keeps no
 * state), and a decoder for response header blocks.
 *
 * Servers do index response headers into the dynamic table (h2o, behind dnsdist, does so even
 * when asked for a table of size 0), so the decoder keeps the full table at the default 4096
 * octets, and fails the block (a COMPRESSION_ERROR for the connection) on anything it cannot
 * decode.
 *
 * @module
 */
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

/** Static-table indexes the request encoder uses. */
const INDEX = {
  authority: 1,
  get: 2,
  post: 3,
  path: 4,
  https: 7,
  http: 6,
  accept: 19,
  contentLength: 28,
  contentType: 31,
} as const;

/** A header block that violates RFC 7541 (or uses what the client ruled out). */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

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

/** Appends a literal header field without indexing (§6.2.2), its name from the static table. */
function pushLiteral(out: number[], nameIndex: number, value: string): void {
  pushInt(out, nameIndex, 4, 0x00);
  const bytes = encoder.encode(value);
  pushInt(out, bytes.length, 7, 0x00); // H = 0: raw octets
  for (const b of bytes) out.push(b);
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

/** An entry's size (RFC 7541 §4.1): its name's and value's octets plus 32. */
function entrySize(name: string, value: string): number {
  return encoder.encode(name).length + encoder.encode(value).length + 32;
}

/** What a DoH client reads from a response header block. */
export interface ResponseHead {
  /** `:status`, or 0 if absent. */
  status: number;
  /** `content-type`, or "" if absent. */
  contentType: string;
}

/**
 * Decodes response header blocks on one connection. Keeps the dynamic table the RFC requires,
 * at most `maxTableSize` octets (what the client advertised); reads `:status` and
 * `content-type` and skips the rest.
 */
export class HpackDecoder {
  readonly #max: number;
  #limit: number;
  #table: [string, string][] = [];
  #size = 0;

  constructor(maxTableSize = 4_096) {
    this.#max = maxTableSize;
    this.#limit = maxTableSize;
  }

  /**
   * Decodes one complete header block (HEADERS plus any CONTINUATION payloads, joined).
   * `onField`, if given, sees every field in order (tests, diagnostics).
   */
  decode(block: Uint8Array, onField?: (name: string, value: string) => void): ResponseHead {
    const head: ResponseHead = { status: 0, contentType: "" };
    let pos = 0;
    const readInt = (n: number): number => {
      if (pos >= block.length) throw new HpackError("truncated integer");
      const max = (1 << n) - 1;
      let value = block[pos++] & max;
      if (value < max) return value;
      let shift = 1;
      for (;;) {
        if (pos >= block.length) throw new HpackError("truncated integer");
        const b = block[pos++];
        value += (b & 0x7f) * shift;
        if ((b & 0x80) === 0) break;
        shift *= 128;
        if (shift > 2 ** 28) throw new HpackError("integer too large");
      }
      return value;
    };
    const readString = (): string => {
      if (pos >= block.length) throw new HpackError("truncated string");
      const huffman = (block[pos] & 0x80) !== 0;
      const length = readInt(7);
      if (pos + length > block.length) throw new HpackError("truncated string");
      const raw = block.subarray(pos, pos + length);
      pos += length;
      try {
        return decoder.decode(huffman ? huffmanDecode(raw) : raw);
      } catch (error) {
        throw new HpackError((error as Error).message);
      }
    };
    const entry = (index: number): readonly [string, string] => {
      if (index === 0) throw new HpackError("index 0");
      if (index < STATIC_TABLE.length) return STATIC_TABLE[index];
      const dynamic = this.#table[index - STATIC_TABLE.length];
      if (!dynamic) throw new HpackError(`index ${index} is not in the table`);
      return dynamic;
    };
    const field = (name: string, value: string) => {
      onField?.(name, value);
      if (name === ":status") head.status = /^\d{3}$/.test(value) ? Number(value) : -1;
      else if (name === "content-type") head.contentType = value;
    };
    let fieldsSeen = false;
    while (pos < block.length) {
      const b = block[pos];
      if (b & 0x80) { // indexed field
        const [name, value] = entry(readInt(7));
        field(name, value);
        fieldsSeen = true;
      } else if ((b & 0xe0) === 0x20) { // dynamic table size update
        if (fieldsSeen) throw new HpackError("table size update after a field");
        const size = readInt(5);
        if (size > this.#max) throw new HpackError(`table size ${size} above ${this.#max}`);
        this.#limit = size;
        this.#evict(0);
      } else { // literal: with incremental indexing (01), without (0000) or never indexed (0001)
        const indexing = (b & 0xc0) === 0x40;
        const nameIndex = readInt(indexing ? 6 : 4);
        const name = nameIndex === 0 ? readString() : entry(nameIndex)[0];
        const value = readString();
        field(name, value);
        fieldsSeen = true;
        if (indexing) this.#insert(name, value);
      }
    }
    return head;
  }

  #insert(name: string, value: string): void {
    const size = entrySize(name, value);
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
      this.#size -= entrySize(n, v);
    }
  }
}
