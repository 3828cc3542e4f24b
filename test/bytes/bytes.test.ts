/** The small byte helpers every part shares. */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  concatBytes,
  getUint16,
  getUint32,
  isomorphicDecode,
  isomorphicEncode,
  readStreamCapped,
  uint32Bytes,
} from "../../src/bytes/mod.ts";

describe("concatBytes", () => {
  it("joins chunks, with or without their total given", () => {
    const chunks = [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)];
    expect([...concatBytes(chunks)]).toEqual([1, 2, 3]);
    expect([...concatBytes(chunks, 3)]).toEqual([1, 2, 3]);
    expect(concatBytes([]).length).toBe(0);
  });
});

describe("isomorphicDecode and isomorphicEncode", () => {
  it("map every octet to one char and back, at any length", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 10_000 }), (bytes) => {
        const text = isomorphicDecode(bytes);
        expect(text.length).toBe(bytes.length);
        expect([...isomorphicEncode(text)]).toEqual([...bytes]);
      }),
      { numRuns: 50 },
    );
  });

  it("keeps octets a UTF-8 decoder would replace", () => {
    expect(isomorphicDecode(Uint8Array.of(0x61, 0xff, 0x80))).toBe("a\u00ff\u0080");
  });

  it("refuses a char that is not an octet", () => {
    expect(() => isomorphicEncode("\u0100")).toThrow(RangeError);
  });
});

describe("big-endian integers", () => {
  it("reads and writes them in network order", () => {
    const bytes = Uint8Array.of(0x01, 0x02, 0xff, 0x00, 0x00, 0x01);
    expect(getUint16(bytes, 0)).toBe(0x0102);
    expect(getUint32(bytes, 2)).toBe(0xff000001);
    expect([...uint32Bytes(0xff000001)]).toEqual([0xff, 0, 0, 1]);
  });
});

describe("readStreamCapped", () => {
  const stream = (...chunks: number[][]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const c of chunks) controller.enqueue(Uint8Array.from(c));
        controller.close();
      },
    });

  it("reads up to the cap, and gives up past it", async () => {
    expect([...(await readStreamCapped(stream([1, 2], [3]), 3))!]).toEqual([1, 2, 3]);
    expect(await readStreamCapped(stream([1, 2], [3, 4]), 3)).toBeUndefined();
    expect((await readStreamCapped(null, 3))!.length).toBe(0);
  });
});
