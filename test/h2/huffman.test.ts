/**
 * The HPACK Huffman code against RFC 7541 Appendix B (codes derived from the lengths) and the
 * examples of Appendix C, both ways, and its failures on bad padding and EOS.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { huffmanCode, huffmanDecode, huffmanEncode, HuffmanError } from "../../src/h2/huffman.ts";

const text = new TextEncoder();
const hex = (s: string) => Uint8Array.fromHex(s.replace(/\s+/g, ""));

describe("Huffman code", () => {
  it("derives Appendix B's codes from the lengths (spot checks, both ends)", () => {
    expect(huffmanCode(0)).toEqual({ code: 0x1ff8, length: 13 });
    expect(huffmanCode(32)).toEqual({ code: 0x14, length: 6 }); // ' '
    expect(huffmanCode(48)).toEqual({ code: 0x0, length: 5 }); // '0'
    expect(huffmanCode(97)).toEqual({ code: 0x3, length: 5 }); // 'a'
    expect(huffmanCode(255)).toEqual({ code: 0x3ffffee, length: 26 });
    expect(huffmanCode(256)).toEqual({ code: 0x3fffffff, length: 30 }); // EOS
  });

  const vectors: [string, string][] = [ // RFC 7541 Appendix C.4 and C.6
    ["www.example.com", "f1e3 c2e5 f23a 6ba0 ab90 f4ff"],
    ["no-cache", "a8eb 1064 9cbf"],
    ["custom-key", "25a8 49e9 5ba9 7d7f"],
    ["custom-value", "25a8 49e9 5bb8 e8b4 bf"],
    ["302", "6402"],
    ["private", "aec3 771a 4b"],
    ["Mon, 21 Oct 2013 20:13:21 GMT", "d07a be94 1054 d444 a820 0595 040b 8166 e082 a62d 1bff"],
    ["https://www.example.com", "9d29 ad17 1863 c78f 0b97 c8e9 ae82 ae43 d3"],
  ];
  for (const [plain, coded] of vectors) {
    it(`encodes and decodes "${plain}" as in Appendix C`, () => {
      expect(huffmanEncode(text.encode(plain)).toHex()).toBe(coded.replace(/\s+/g, ""));
      expect(new TextDecoder().decode(huffmanDecode(hex(coded)))).toBe(plain);
    });
  }

  it("round-trips any octets", () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      expect([...huffmanDecode(huffmanEncode(bytes))]).toEqual([...bytes]);
    }));
  });

  it("rejects padding that is not ones, padding over 7 bits, and EOS in the string", () => {
    expect(() => huffmanDecode(Uint8Array.of(0x00))).toThrow(HuffmanError); // "0" + 3 zero bits
    expect(() => huffmanDecode(Uint8Array.of(0xff))).toThrow(HuffmanError); // 8 bits of padding
    expect(() => huffmanDecode(Uint8Array.of(0xff, 0xff, 0xff, 0xff))).toThrow(HuffmanError); // EOS
  });
});
