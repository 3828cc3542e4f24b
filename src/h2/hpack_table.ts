/**
 * The HPACK tables (RFC 7541 §2.3): the static table of Appendix A, the indexes the encoders
 * (`hpack_encode.ts`) refer to, and the dynamic table the decoder (`hpack_decode.ts`) keeps in
 * step with the peer's encoder.
 *
 * Names and values are "binary" strings (one char per octet), so an entry's size in chars is its
 * size in octets, as RFC 7541 §4.1 counts it.
 *
 * @module
 */

/** RFC 7541 Appendix A, entries 1–61 (index 0 unused). */
// deno-fmt-ignore
export const STATIC_TABLE: readonly (readonly [string, string])[] = [
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
export const INDEX = {
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

/** Static-table indexes of `:status` values (RFC 7541 Appendix A). */
export const STATUS_INDEX: Readonly<Record<number, number>> = {
  200: 8,
  204: 9,
  206: 10,
  304: 11,
  400: 12,
  404: 13,
  500: 14,
};

/** Static-table name indexes for the fields a DoH answer carries (RFC 7541 Appendix A). */
export const NAME_INDEX: Readonly<Record<string, number>> = {
  "cache-control": 24,
  "content-length": 28,
  "content-type": 31,
  "date": 33,
  "etag": 34,
  "location": 46,
  "vary": 59,
};

/** RFC 7541 §4.1's size of a table entry beyond its name and value octets. */
export const ENTRY_OVERHEAD = 32;

/**
 * The dynamic table (RFC 7541 §2.3.2, §4): newest entry first, at most `limit` octets, evicting
 * the oldest to make room. Indexes continue the static table's: the newest entry is 62.
 *
 * @example
 * ```ts
 * const table = new DynamicTable(4_096);
 * table.insert("x-id", "1");
 * table.entry(62); // ["x-id", "1"]
 * ```
 */
export class DynamicTable {
  #entries: [string, string][] = [];
  #size = 0;
  #limit: number;

  /** @param limit the table's largest size in octets (what the peer's encoder may use) */
  constructor(limit: number) {
    this.#limit = limit;
  }

  /** The table's largest size in octets now. */
  get limit(): number {
    return this.#limit;
  }

  /** The table's size in octets, as RFC 7541 §4.1 counts it. */
  get size(): number {
    return this.#size;
  }

  /** Entries in the table. */
  get length(): number {
    return this.#entries.length;
  }

  /** The entry at `index` of the static or the dynamic table; `undefined` if there is none. */
  entry(index: number): readonly [string, string] | undefined {
    if (index < STATIC_TABLE.length) return index === 0 ? undefined : STATIC_TABLE[index];
    return this.#entries[index - STATIC_TABLE.length];
  }

  /** Adds an entry, evicting old ones; one larger than the limit empties the table (§4.4). */
  insert(name: string, value: string): void {
    const size = name.length + value.length + ENTRY_OVERHEAD; // one char per octet
    this.#evict(size);
    if (size <= this.#limit) {
      this.#entries.unshift([name, value]);
      this.#size += size;
    }
  }

  /** A dynamic table size update (§6.3): the new limit, evicting what no longer fits. */
  resize(limit: number): void {
    this.#limit = limit;
    this.#evict(0);
  }

  /** Evicts until `room` more octets fit under the limit (or the table is empty). */
  #evict(room: number): void {
    while (this.#entries.length > 0 && this.#size + room > this.#limit) {
      const [n, v] = this.#entries.pop()!;
      this.#size -= n.length + v.length + ENTRY_OVERHEAD;
    }
  }
}
