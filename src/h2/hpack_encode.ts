/**
 * HPACK encoding (RFC 7541) for both ends of the connection core: header blocks made of
 * static-table references and literals, never indexed into the dynamic table, so the encoders
 * keep no state and the peer's decoder needs none from us: a DoH request's head
 * ({@linkcode encodeRequestHead}) and a response's head ({@linkcode ResponseHeadWriter}).
 *
 * Strings are written raw (not Huffman-coded), one octet per char of a "binary" string.
 *
 * @module
 */
import { INDEX, NAME_INDEX, STATUS_INDEX } from "./hpack_table.ts";

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

/** Octets of a `content-length: DIGITS` literal ({@linkcode writeContentLength}). */
function contentLengthSize(digits: string): number {
  return 3 + digits.length;
}

/** Writes a `content-length: DIGITS` literal at `at` in `out`; returns where it ends. */
function writeContentLength(out: Uint8Array, at: number, digits: string): number {
  out[at++] = 0x0f; // literal without indexing, name index 28 = 15 + 13
  out[at++] = INDEX.contentLength - 15;
  out[at++] = digits.length; // raw string, length < 127
  for (let i = 0; i < digits.length; i++) out[at++] = digits.charCodeAt(i);
  return at;
}

/** `head` followed by a `content-length: length` literal (per request, so kept cheap). */
export function withContentLength(head: Uint8Array, length: number): Uint8Array {
  const digits = String(length);
  const out = new Uint8Array(head.length + contentLengthSize(digits));
  out.set(head);
  writeContentLength(out, head.length, digits);
  return out;
}

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
    writeContentLength(this.#buffer, this.#room(contentLengthSize(digits)), digits);
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
