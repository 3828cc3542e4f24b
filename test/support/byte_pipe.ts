/**
 * An in-memory byte pipe for protocol tests that script one side of a connection.
 *
 * @module
 */

/** A byte queue one side writes and the other reads. */
export class Channel {
  #chunks: Uint8Array[] = [];
  #waiters: (() => void)[] = [];
  closed = false;
  push(bytes: Uint8Array) {
    this.#chunks.push(bytes.slice());
    for (const w of this.#waiters.splice(0)) w();
  }
  close() {
    this.closed = true;
    for (const w of this.#waiters.splice(0)) w();
  }
  async read(buffer: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.closed) return null;
      await new Promise<void>((r) => this.#waiters.push(r));
    }
    const chunk = this.#chunks[0];
    const n = Math.min(chunk.length, buffer.length);
    buffer.set(chunk.subarray(0, n));
    if (n === chunk.length) this.#chunks.shift();
    else this.#chunks[0] = chunk.subarray(n);
    return n;
  }
}
