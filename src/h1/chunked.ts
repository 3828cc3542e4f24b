/**
 * The chunked transfer coding of request bodies (RFC 9112 §7.1), decoded as bytes arrive in any
 * pieces: chunk-size lines (extensions ignored), chunk data gathered into one buffer, the CRLF
 * after each chunk, and trailer fields (read and dropped). Bounded: the body at `maxBody`
 * octets, the framing (size lines, CRLFs, trailers) at `maxFraming` octets, a size line at
 * {@linkcode MAX_CHUNK_LINE}. The HTTP/1.1 server (`server.ts`) feeds it and answers what it
 * finds.
 *
 * @module
 */
import { VALUE_CHAR } from "./head.ts";

/** Longest chunk-size line (with its extensions). */
export const MAX_CHUNK_LINE = 1024;

/** What {@linkcode ChunkedDecoder.read} came to. */
export const Chunked = {
  /** The input ran out before the body ended: feed more. */
  More: 0,
  /** The body ended (the last chunk and the trailers): {@linkcode ChunkedDecoder.take} it. */
  Done: 1,
  /** The framing is malformed, or longer than `maxFraming` in its size lines. */
  Malformed: 2,
  /** The framing with the trailers is longer than `maxFraming`. */
  TrailersTooLarge: 3,
  /** The body would be longer than `maxBody`. */
  BodyTooLarge: 4,
} as const;

/** One of {@linkcode Chunked}. */
export type ChunkedOutcome = typeof Chunked[keyof typeof Chunked];

// Decoder states.
const SIZE = 0;
const DATA = 1;
const CRLF = 2;
const TRAILERS = 3;

const EMPTY = new Uint8Array(0);

/**
 * Decodes one chunked body at a time; reusable for the next with {@linkcode begin}.
 *
 * @example
 * ```ts
 * const decoder = new ChunkedDecoder(65_535, 8_192);
 * decoder.begin();
 * const bytes = new TextEncoder().encode("5\r\nhello\r\n0\r\n\r\n");
 * decoder.read(bytes, 0); // bytes.length
 * decoder.outcome === Chunked.Done; // true
 * decoder.take(); // "hello"
 * ```
 */
export class ChunkedDecoder {
  /** What the last {@linkcode read} came to. */
  outcome: ChunkedOutcome = Chunked.More;
  #state = SIZE;
  #body: Uint8Array = EMPTY;
  #bodyAt = 0;
  /** Octets of the chunk being read still to come. */
  #remaining = 0;
  /** Framing octets (size lines, CRLFs, trailers) of the body so far. */
  #framing = 0;

  /**
   * @param maxBody the longest body
   * @param maxFraming the most framing octets (size lines, CRLFs and trailers together)
   */
  constructor(readonly maxBody: number, readonly maxFraming: number) {}

  /** Starts a new body. */
  begin(): void {
    this.#body = new Uint8Array(Math.min(this.maxBody, 1024));
    this.#bodyAt = 0;
    this.#framing = 0;
    this.#state = SIZE;
    this.outcome = Chunked.More;
  }

  /**
   * Reads the body from `bytes[at..]` (only read during the call): returns where it stopped,
   * with {@linkcode outcome} saying why (the end of the input, of the body, or an error).
   */
  read(bytes: Uint8Array, at: number): number {
    const end = bytes.length;
    while (at < end) {
      switch (this.#state) {
        case SIZE: {
          const lf = lineEnd(bytes, at, MAX_CHUNK_LINE);
          if (lf === -1) return this.#stop(Chunked.More, at);
          if (lf < 0) return this.#stop(Chunked.Malformed, at);
          this.#framing += lf + 1 - at;
          const size = chunkSize(bytes, at, lf - 1);
          if (size < 0 || this.#framing > this.maxFraming) return this.#stop(Chunked.Malformed, at);
          at = lf + 1;
          if (size === 0) {
            this.#state = TRAILERS;
          } else if (this.#bodyAt + size > this.maxBody) {
            return this.#stop(Chunked.BodyTooLarge, at);
          } else {
            if (this.#bodyAt + size > this.#body.length) {
              const grown = new Uint8Array(
                Math.min(this.maxBody, Math.max(this.#bodyAt + size, 2 * this.#body.length)),
              );
              grown.set(this.#body.subarray(0, this.#bodyAt));
              this.#body = grown;
            }
            this.#remaining = size;
            this.#state = DATA;
          }
          break;
        }
        case DATA: {
          const n = Math.min(this.#remaining, end - at);
          this.#body.set(bytes.subarray(at, at + n), this.#bodyAt);
          this.#bodyAt += n;
          this.#remaining -= n;
          at += n;
          if (this.#remaining === 0) this.#state = CRLF;
          break;
        }
        case CRLF: {
          if (end - at < 2) return this.#stop(Chunked.More, at);
          if (bytes[at] !== 0x0d || bytes[at + 1] !== 0x0a) {
            return this.#stop(Chunked.Malformed, at);
          }
          this.#framing += 2;
          at += 2;
          this.#state = SIZE;
          break;
        }
        default: { // TRAILERS: read and dropped
          const lf = lineEnd(bytes, at, this.maxFraming);
          if (lf === -1) return this.#stop(Chunked.More, at);
          if (lf < 0) return this.#stop(Chunked.Malformed, at);
          this.#framing += lf + 1 - at;
          if (this.#framing > this.maxFraming) return this.#stop(Chunked.TrailersTooLarge, at);
          for (let i = at; i < lf - 1; i++) {
            if (VALUE_CHAR[bytes[i]] !== 1) return this.#stop(Chunked.Malformed, at);
          }
          const last = lf === at + 1;
          at = lf + 1;
          if (last) return this.#stop(Chunked.Done, at);
        }
      }
    }
    return this.#stop(Chunked.More, at);
  }

  /** The body that ended (a view of the buffer when it is full, else a copy); lets go of it. */
  take(): Uint8Array {
    const body = this.#body.length === this.#bodyAt
      ? this.#body
      : this.#body.slice(0, this.#bodyAt);
    this.clear();
    return body;
  }

  /** Lets go of the body being read (the request was refused or the connection closed). */
  clear(): void {
    this.#body = EMPTY;
    this.#bodyAt = 0;
  }

  #stop(outcome: ChunkedOutcome, at: number): number {
    this.outcome = outcome;
    return at;
  }
}

/**
 * The LF ending the CRLF-terminated line at `at`: -1 if not here yet (and the line is within
 * `max`), -2 if the line is too long or ends in a bare LF.
 */
function lineEnd(bytes: Uint8Array, at: number, max: number): number {
  const lf = bytes.indexOf(0x0a, at);
  if (lf < 0) return bytes.length - at > max ? -2 : -1;
  if (lf - at > max || lf === at || bytes[lf - 1] !== 0x0d) return -2;
  return lf;
}

/**
 * The size in a chunk-size line `bytes[at, end)` (RFC 9112 §7.1: hex digits, then optional
 * extensions, which are ignored); -1 if malformed or over 2^28.
 */
function chunkSize(bytes: Uint8Array, at: number, end: number): number {
  let size = 0;
  let i = at;
  for (; i < end; i++) {
    const c = bytes[i];
    const digit = c >= 0x30 && c <= 0x39
      ? c - 0x30
      : c >= 0x61 && c <= 0x66
      ? c - 0x57
      : c >= 0x41 && c <= 0x46
      ? c - 0x37
      : -1;
    if (digit < 0) break;
    size = size * 16 + digit;
    if (size > 0x10000000) return -1;
  }
  if (i === at) return -1;
  while (i < end && (bytes[i] === 0x20 || bytes[i] === 0x09)) i++;
  if (i < end && bytes[i] !== 0x3b /* ; */) return -1;
  for (; i < end; i++) if (VALUE_CHAR[bytes[i]] !== 1) return -1;
  return size;
}
