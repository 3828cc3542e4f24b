/**
 * HPACK decoding (RFC 7541) for the connection core: one decoder per connection, keeping the
 * dynamic table in step with the peer's encoder (`hpack_table.ts`), failing the block (a
 * COMPRESSION_ERROR for the connection) on anything it cannot decode.
 *
 * Peers do index into the dynamic table (h2o, behind dnsdist, indexes response headers even
 * when asked for a table of size 0; clients index request headers), so the table is kept at the
 * default 4096 octets.
 *
 * Names and values are "binary" strings: one char per octet (WHATWG Infra's isomorphic decode,
 * what the Fetch standard's `Headers` holds). A value's length in chars is its length in octets,
 * so table entries are sized exactly as RFC 7541 §4.1 counts them, whatever the octets (a UTF-8
 * round trip would turn one invalid octet into three and let the table drift from the peer's).
 *
 * @module
 */
import { isomorphicDecode } from "../bytes/isomorphic.ts";
import { DynamicTable } from "./hpack_table.ts";
import { huffmanDecode } from "./huffman.ts";

/** A header block that violates RFC 7541 (or uses what this side ruled out). */
export class HpackError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HpackError";
  }
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
  readonly #table: DynamicTable;
  /** The block being decoded and the read position in it (instance state: no closures per call). */
  #block: Uint8Array = NO_BLOCK;
  #pos = 0;

  constructor(maxTableSize = 4_096) {
    this.#max = maxTableSize;
    this.#table = new DynamicTable(maxTableSize);
  }

  /** The dynamic table's size in octets, as RFC 7541 §4.1 counts it. */
  get tableSize(): number {
    return this.#table.size;
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
        this.#table.resize(size);
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
        if (indexing) this.#table.insert(name, value);
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
    const entry = this.#table.entry(index);
    if (!entry) throw new HpackError(`index ${index} is not in the table`);
    return entry;
  }
}
