/**
 * The input an HTTP/1.1 connection has received but not parsed yet: the part of a request split
 * across reads, or what waits while parsing is paused. One buffer, grown by doubling (up to
 * 1 MiB a step) and compacted in place, let go once it is used up and large, so an idle
 * connection keeps no large buffer.
 *
 * @module
 */

const NONE = new Uint8Array(0);

/**
 * Bytes waiting to be parsed: `bytes[start, bytes.length)`.
 *
 * @example
 * ```ts
 * const pending = new PendingInput();
 * pending.keep(chunk);
 * const at = parse(pending.bytes, pending.start);
 * pending.consumed(at);
 * ```
 */
export class PendingInput {
  #buffer: Uint8Array | undefined = undefined;
  #start = 0;
  #end = 0;

  /** Octets waiting. */
  get size(): number {
    return this.#end - this.#start;
  }

  /** Where the waiting octets start in {@linkcode bytes}. */
  get start(): number {
    return this.#start;
  }

  /** The buffer up to the end of the waiting octets (a view; empty when none wait). */
  get bytes(): Uint8Array {
    return this.#buffer?.subarray(0, this.#end) ?? NONE;
  }

  /** Appends a copy of `data`. */
  keep(data: Uint8Array): void {
    const kept = this.#end - this.#start;
    const need = kept + data.length;
    let buffer = this.#buffer;
    if (buffer === undefined || need > buffer.length) {
      const grown = new Uint8Array(
        Math.max(need, Math.min(2 * (buffer?.length ?? 0), 1 << 20), 1024),
      );
      if (buffer) grown.set(buffer.subarray(this.#start, this.#end));
      buffer = this.#buffer = grown;
      this.#start = 0;
      this.#end = kept;
    } else if (this.#end + data.length > buffer.length) {
      buffer.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = kept;
    }
    buffer.set(data, this.#end);
    this.#end += data.length;
  }

  /**
   * Parsing used {@linkcode bytes} up to `at`. Once all is used, a buffer over 4 KiB is let go.
   * No-op once dropped (while it was being parsed).
   */
  consumed(at: number): void {
    if (this.#buffer === undefined) return;
    this.#start = at;
    if (at === this.#end) {
      this.#start = this.#end = 0;
      if (this.#buffer.length > 4096) this.#buffer = undefined;
    }
  }

  /** Drops what waits, and the buffer. */
  drop(): void {
    this.#buffer = undefined;
    this.#start = this.#end = 0;
  }
}
