/**
 * The HPACK decoder against the RFC's response examples (C.5 raw, C.6 Huffman, both with a
 * 256-octet table that evicts), against a peer that indexes octets that are not UTF-8, against
 * the "HPACK bomb" under a decoded-list cap, and on blocks it must refuse.
 */
import { describe, expect, it } from "vitest";
import { FIELD_OVERHEAD, HpackDecoder, HpackError } from "../../src/h2/hpack_decode.ts";
import { pushInt, pushString } from "../../src/h2/hpack_encode.ts";
import { huffmanEncode } from "../../src/h2/huffman.ts";

const text = new TextEncoder();
const hex = (s: string) => Uint8Array.fromHex(s.replace(/\s+/g, ""));

/** Every field of one block, in order. */
function fieldsOf(decoder: HpackDecoder, block: Uint8Array): [string, string][] {
  const fields: [string, string][] = [];
  decoder.decode(block, (n, v) => fields.push([n, v]));
  return fields;
}

describe("HpackDecoder", () => {
  /** RFC 7541 C.5 (raw) and C.6 (Huffman): three responses, table size 256. */
  const responses = {
    raw: [
      "4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70 6c65 2e63 6f6d",
      "4803 3330 37c1 c0bf",
      "88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d 54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049 5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e 3d31",
    ],
    huffman: [
      "4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6 2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3",
      "4883 640e ffc1 c0bf",
      "88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab 77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f 9587 3160 65c0 03ed 4ee5 b106 3d50 07",
    ],
  };
  const expected = [
    [":status", "302", "Mon, 21 Oct 2013 20:13:21 GMT"],
    [":status", "307", "Mon, 21 Oct 2013 20:13:21 GMT"],
    [":status", "200", "Mon, 21 Oct 2013 20:13:22 GMT"],
  ];
  for (const [kind, blocks] of Object.entries(responses)) {
    it(`decodes RFC 7541's ${kind} response examples through the evicting table`, () => {
      const decoder = new HpackDecoder(256);
      for (const [i, block] of blocks.entries()) {
        const fields = fieldsOf(decoder, hex(block));
        expect(fields[0]).toEqual([":status", expected[i][1]]);
        expect(fields).toContainEqual(["cache-control", "private"]);
        expect(fields).toContainEqual(["date", expected[i][2]]);
        expect(fields).toContainEqual(["location", "https://www.example.com"]);
      }
    });
  }

  it("reads :status and content-type, with a dynamic-table reference on the next block", () => {
    const decoder = new HpackDecoder();
    // :status 200 (indexed 8); content-type literal with incremental indexing (name index 31).
    const first = Uint8Array.of(0x88, 0x40 | 31, 23, ...text.encode("application/dns-message"));
    const fields: [string, string][] = [
      [":status", "200"],
      ["content-type", "application/dns-message"],
    ];
    expect(fieldsOf(decoder, first)).toEqual(fields);
    // The same two fields as references: 8 (static) and 62 (the entry just added).
    expect(fieldsOf(decoder, Uint8Array.of(0x88, 0x80 | 62))).toEqual(fields);
  });

  it("sizes entries in octets, so a table holding non-UTF-8 values stays in step with the peer's", () => {
    /** The peer's encoder: literals with incremental indexing, its table sized per RFC 7541 §4.1. */
    class IndexingEncoder {
      table: Uint8Array[][] = [];
      size = 0;
      constructor(readonly limit: number) {}
      /** A literal with a new name, added to the table, Huffman-coded when `huffman`. */
      literal(name: string, value: Uint8Array, huffman = false): number[] {
        const entry = [text.encode(name), value];
        const entrySize = entry[0].length + value.length + 32;
        while (this.table.length > 0 && this.size + entrySize > this.limit) {
          const [n, v] = this.table.pop()!;
          this.size -= n.length + v.length + 32;
        }
        if (entrySize <= this.limit) {
          this.table.unshift(entry);
          this.size += entrySize;
        }
        const coded = huffman ? huffmanEncode(value) : value;
        return [
          0x40,
          entry[0].length,
          ...entry[0],
          (huffman ? 0x80 : 0) | coded.length,
          ...coded,
        ];
      }
      /** An indexed reference to the entry holding `value`. */
      ref(value: Uint8Array): number[] {
        const i = this.table.findIndex(([, v]) => v.toHex() === value.toHex());
        expect(i).toBeGreaterThanOrEqual(0);
        return [0x80 | (62 + i)];
      }
    }
    // Octets that are not UTF-8: a UTF-8 round trip turns each into U+FFFD, three octets.
    const odd = Uint8Array.of(0xff, 0xfe, 0x80, 0xc0, 0x41);
    const plain = text.encode("a-plain-value-19oct"); // "x-plain" entry: 7 + 19 + 32 = 58
    const peer = new IndexingEncoder(100);
    const decoder = new HpackDecoder(100);
    // A size update to 100 octets, then the odd entry: 5 + 5 + 32 = 42 octets (a UTF-8 round
    // trip would count 5 + 13 + 32 = 50).
    const first = [0x20 | 31, 100 - 31, ...peer.literal("x-odd", odd)];
    const fields1 = fieldsOf(decoder, Uint8Array.from(first));
    expect(fields1).toEqual([["x-odd", "\u00ff\u00fe\u0080\u00c0A"]]);
    expect(decoder.tableSize).toBe(peer.size);
    // 42 + 58 = 100 octets: both entries fit, and the reference to the odd one resolves (counted
    // as 50 + 58, the odd entry would be evicted and index 63 would not exist).
    const second = [...peer.literal("x-plain", plain, true), ...peer.ref(odd)];
    expect(fieldsOf(decoder, Uint8Array.from(second))).toEqual([
      ["x-plain", "a-plain-value-19oct"],
      ["x-odd", "\u00ff\u00fe\u0080\u00c0A"],
    ]);
    expect([decoder.tableSize, decoder.tableLength]).toEqual([100, 2]);
    expect(peer.size).toBe(100);
    // A third entry evicts exactly the oldest one on both sides.
    const third = [...peer.literal("x-more", Uint8Array.of(0xfa)), ...peer.ref(plain)];
    expect(peer.table.length).toBe(2);
    expect(fieldsOf(decoder, Uint8Array.from(third))).toEqual([
      ["x-more", "\u00fa"],
      ["x-plain", "a-plain-value-19oct"],
    ]);
    expect([decoder.tableSize, decoder.tableLength]).toEqual([peer.size, peer.table.length]);
    // The evicted entry is gone on both sides: index 64 is out of the table.
    expect(() => fieldsOf(decoder, Uint8Array.of(0x80 | 64))).toThrow(HpackError);
  });

  describe("under a decoded header-list cap", () => {
    const CAP = 16 * 1024;
    const BIG = "a".repeat(4_000);
    /** One 4 KB literal added to the table (index 62), then `refs` one-octet references to it. */
    function bomb(refs: number): Uint8Array {
      const out: number[] = [0x82, 0x40]; // :method GET; literal with indexing, new name
      pushString(out, "x-bomb");
      pushString(out, BIG);
      for (let i = 0; i < refs; i++) out.push(0x80 | 62);
      return Uint8Array.from(out);
    }
    const entrySize = "x-bomb".length + BIG.length + FIELD_OVERHEAD;

    it("hands over fields only up to the cap for a block that decodes to ~48 MB (the HPACK bomb)", () => {
      const decoder = new HpackDecoder();
      const block = bomb(12_000);
      expect(block.length).toBeLessThan(16_384); // one HEADERS frame
      let fields = 0;
      let size = 0;
      const complete = decoder.decode(block, (name, value) => {
        fields++;
        size += name.length + value.length + FIELD_OVERHEAD;
      }, CAP);
      expect(complete).toBe(false);
      // :method, then as many 4 KB fields as fit: 12 001 of them were in the block.
      expect(fields).toBe(1 + Math.floor((CAP - (7 + 3 + 32)) / entrySize));
      expect(size).toBeLessThanOrEqual(CAP);
      expect(12_001 * entrySize).toBeGreaterThan(48_000_000);
    });

    it("keeps decoding past the cap, so the table stays in step with the peer's", () => {
      const decoder = new HpackDecoder();
      // Over the cap: the bomb, then a raw and a Huffman literal without indexing (skipped),
      // then a literal with indexing that must still enter the table.
      const out = [...bomb(10)];
      out.push(0x00);
      pushString(out, "x-skipped");
      pushString(out, "raw");
      out.push(0x00, 0x82, ...huffmanEncode(text.encode("no")), 0x83);
      out.push(...huffmanEncode(text.encode("yes")));
      out.push(0x40);
      pushString(out, "x-late");
      pushString(out, "after the cap");
      const seen: string[] = [];
      expect(decoder.decode(Uint8Array.from(out), (n) => seen.push(n), CAP)).toBe(false);
      expect(seen).not.toContain("x-skipped");
      expect(seen).not.toContain("x-late");
      expect(decoder.tableLength).toBe(2);
      // The next block refers to both entries: 62 is x-late, 63 the bomb's.
      expect(fieldsOf(decoder, Uint8Array.of(0x80 | 62, 0x80 | 63))).toEqual([
        ["x-late", "after the cap"],
        ["x-bomb", BIG],
      ]);
    });

    it("hands over every field of a block within the cap and says so", () => {
      const decoder = new HpackDecoder();
      const out: number[] = [];
      pushInt(out, 4, 4, 0); // :path (5 octets) literal without indexing
      pushString(out, "/dns-query");
      let fields = 0;
      expect(
        decoder.decode(Uint8Array.from([0x82, ...out]), () => fields++, 5 + 10 + 32 + 7 + 3 + 32),
      )
        .toBe(true);
      expect(fields).toBe(2);
      expect(decoder.decode(Uint8Array.from([0x82, ...out]), () => {}, 5 + 10 + 32 + 7 + 3 + 31))
        .toBe(false);
    });
  });

  it("fails blocks that reference missing entries, are truncated or resize too late", () => {
    const d = () => ({ decode: (b: Uint8Array) => fieldsOf(new HpackDecoder(), b) });
    expect(() => d().decode(Uint8Array.of(0x80 | 62))).toThrow(HpackError);
    expect(() => d().decode(Uint8Array.of(0x80))).toThrow(HpackError); // index 0
    expect(() => d().decode(Uint8Array.of(0x0f))).toThrow(HpackError); // truncated integer
    expect(() => d().decode(Uint8Array.of(0x04, 0x05, 0x61))).toThrow(HpackError); // short string
    expect(() => d().decode(Uint8Array.of(0x88, 0x20))).toThrow(HpackError); // size update late
    expect(() => d().decode(Uint8Array.of(0x3f, 0xe2, 0x1f))).toThrow(HpackError); // 4096+1
  });
});
