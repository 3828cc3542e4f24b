/**
 * Header blocks as they arrive (RFC 9113 §4.3, §6.2, §6.10): HEADERS without its padding and
 * priority fields, and, when it does not end the block, the CONTINUATION frames that must
 * follow it at once on the same stream, joined. The compressed block is capped in octets and
 * in frames (an endless CONTINUATION stream, CVE-2024-27316, costs nothing then); the
 * connection core (`connection.ts`) decodes what comes out and gives a block left unfinished
 * the read deadline.
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";
import { Code, ConnectionError, Flag } from "./frames.ts";

/** CONTINUATION frames one header block may take, whatever their sizes (empty ones too). */
export const MAX_CONTINUATIONS = 64;

/**
 * Cuts header blocks out of HEADERS and CONTINUATION frames, for one connection.
 *
 * @example
 * ```ts
 * const blocks = new HeaderBlockReader(16 * 1024);
 * const block = blocks.headers(flags, id, payload); // undefined: CONTINUATION must follow
 * if (block) decode(block);
 * ```
 */
export class HeaderBlockReader {
  /** The stream of the block being continued (0: none is). */
  #id = 0;
  /** The parts of the block being continued, copied as they came (empty when none is). */
  readonly #parts: Uint8Array[] = [];
  #size = 0;
  #endStream = false;

  /** @param maxBytes the largest block accepted, HEADERS and CONTINUATION payloads together */
  constructor(readonly maxBytes: number) {}

  /** Whether a block waits for CONTINUATION frames (no other frame may come in between). */
  get continuing(): boolean {
    return this.#id !== 0;
  }

  /** The stream of the block waiting for CONTINUATION frames (0: none is). */
  get streamId(): number {
    return this.#id;
  }

  /** Whether the last block begun came with END_STREAM (its HEADERS frame's flag). */
  get endStream(): boolean {
    return this.#endStream;
  }

  /**
   * A HEADERS frame: returns its block (a view of `payload`) when it ends there (END_HEADERS),
   * else keeps a copy and returns `undefined` (CONTINUATION frames must follow).
   *
   * @throws {ConnectionError} PROTOCOL_ERROR for stream 0 or bad padding, ENHANCE_YOUR_CALM
   *   for a block over `maxBytes`
   */
  headers(flags: number, id: number, payload: Uint8Array): Uint8Array | undefined {
    if (id === 0) throw new ConnectionError(Code.ProtocolError, "HEADERS on stream 0");
    let start = 0;
    let end = payload.length;
    if (flags & Flag.Padded) {
      start = 1;
      end -= payload[0] ?? 0;
    }
    if (flags & Flag.Priority) start += 5;
    if (start > end) throw new ConnectionError(Code.ProtocolError, "bad HEADERS padding");
    const block = payload.subarray(start, end);
    this.#endStream = (flags & Flag.EndStream) !== 0;
    if (block.length > this.maxBytes) this.#tooLarge();
    if (flags & Flag.EndHeaders) return block;
    this.#id = id;
    this.#parts.push(block.slice());
    this.#size = block.length;
    return undefined;
  }

  /**
   * A CONTINUATION frame: returns the whole block once it ends (END_HEADERS), else
   * `undefined`.
   *
   * @throws {ConnectionError} PROTOCOL_ERROR when no block waits for it on that stream,
   *   ENHANCE_YOUR_CALM for a block over `maxBytes` or over {@linkcode MAX_CONTINUATIONS} frames
   */
  continuation(flags: number, id: number, payload: Uint8Array): Uint8Array | undefined {
    if (this.#id === 0 || this.#id !== id) {
      throw new ConnectionError(Code.ProtocolError, "unexpected CONTINUATION");
    }
    this.#size += payload.length;
    if (this.#size > this.maxBytes) this.#tooLarge();
    if (this.#parts.length > MAX_CONTINUATIONS) {
      throw new ConnectionError(Code.EnhanceYourCalm, "too many CONTINUATION frames");
    }
    this.#parts.push(payload.slice());
    if (!(flags & Flag.EndHeaders)) return undefined;
    const block = concatBytes(this.#parts, this.#size);
    this.#id = 0;
    this.#parts.length = 0;
    this.#size = 0;
    return block;
  }

  #tooLarge(): never {
    throw new ConnectionError(Code.EnhanceYourCalm, `header block over ${this.maxBytes} bytes`);
  }
}
