/**
 * Writes resource records in wire format with name compression (RFC 1035 §4.1.4): a name, or its
 * longest suffix, already in the message is written as a pointer to it. For building answers
 * ahead of time; the hot path edits messages by splicing (`edns.ts`) instead.
 *
 * @module
 */
import { RrClass } from "./constants.ts";
import { nameWireLength, nextLabel, pushLabel } from "./name.ts";

/** Pointers hold 14 bits: a name starting at or after this offset cannot be pointed to. */
const MAX_POINTER = 0x3fff;

/**
 * Builds a part of a message that starts `base` bytes into it (for example the answer section
 * after a question), compressing names against the names declared with {@linkcode knownName}
 * and those it wrote itself. Names are in presentation form without the final dot, compared as
 * given (canonicalise case first). Not for concurrent use; the bytes are in `out`.
 *
 * @example
 * ```ts
 * const w = new WireWriter(12 + nameWireLength("nas.lan") + 4); // after the question
 * w.knownName("nas.lan", 12);
 * w.record("nas.lan", RrType.A, 300, (w) => w.bytes([10, 0, 0, 2])); // owner: pointer to 12
 * const body = Uint8Array.from(w.out);
 * ```
 */
export class WireWriter {
  /** The bytes written so far. */
  readonly out: number[] = [];
  /** Offset in the message of the first byte written. */
  readonly base: number;
  /** Names declared or written, by suffix → offset; built on first need. */
  #known?: Map<string, number>;
  /** Declared names not yet in `#known`, as [name, offset]. */
  readonly #declared: [string, number][] = [];

  /** @param base offset in the message of the first byte this writer writes */
  constructor(base = 0) {
    this.base = base;
  }

  /** The offset in the message of the next byte. */
  get offset(): number {
    return this.base + this.out.length;
  }

  /**
   * Declares that `name` is in the message uncompressed at offset `at` (e.g. the question name at
   * offset 12), so that it and each of its suffixes can be pointed to.
   */
  knownName(name: string, at: number): void {
    if (this.#known) this.#remember(name, at);
    else this.#declared.push([name, at]);
  }

  /** Writes `name`, compressed against the names before it. @throws {RangeError} for a bad name */
  name(name: string): void {
    if (!this.#known) {
      // Fast path, and no map at all, for a name that is exactly a declared one.
      for (const [known, at] of this.#declared) {
        if (known === name) return this.u16(0xc000 | at);
      }
      this.#known = new Map();
      for (const [known, at] of this.#declared) this.#remember(known, at);
    }
    if (nameWireLength(name) > 255) throw new RangeError(`dns: name "${name}" is over 255 bytes`);
    if (name !== "") {
      for (let k = 0; k >= 0; k = nextLabel(name, k)) {
        const pointer = this.#known.get(name.slice(k));
        if (pointer !== undefined) return this.u16(0xc000 | pointer);
        const at = this.offset;
        if (at <= MAX_POINTER) this.#known.set(name.slice(k), at);
        pushLabel(this.out, name, k);
      }
    }
    this.out.push(0);
  }

  #remember(name: string, at: number): void {
    for (let k = 0; k >= 0 && at + k <= MAX_POINTER; k = nextLabel(name, k)) {
      this.#known!.set(name.slice(k), at + k);
    }
  }

  /** Writes one byte. */
  u8(v: number): void {
    this.out.push(v & 0xff);
  }

  /** Writes a 16-bit value, network order. */
  u16(v: number): void {
    this.out.push((v >> 8) & 0xff, v & 0xff);
  }

  /** Writes a 32-bit value, network order. */
  u32(v: number): void {
    this.out.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }

  /** Writes bytes as they are. */
  bytes(b: ArrayLike<number>): void {
    for (let i = 0; i < b.length; i++) this.out.push(b[i]);
  }

  /**
   * Writes a resource record: the owner (compressed), TYPE, CLASS, TTL, and the RDATA that
   * `rdata` writes, with RDLENGTH filled in after it.
   */
  record(
    owner: string,
    type: number,
    ttl: number,
    rdata: (w: WireWriter) => void,
    klass: number = RrClass.IN,
  ): void {
    this.name(owner);
    this.u16(type);
    this.u16(klass);
    this.u32(ttl);
    const at = this.out.length;
    this.u16(0);
    rdata(this);
    const length = this.out.length - at - 2;
    if (length > 0xffff) throw new RangeError(`dns: RDATA of ${length} bytes`);
    this.out[at] = length >> 8;
    this.out[at + 1] = length & 0xff;
  }
}
