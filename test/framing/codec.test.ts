import { describe, expect, it } from "vitest";
import * as fc from "fast-check";
import { encodeFrames, FrameDecoder, FrameError } from "../../src/framing/codec.ts";

function bytes(...values: number[]): Uint8Array {
  return Uint8Array.from(values);
}

function msg(length: number, fill = length & 0xff): Uint8Array {
  return new Uint8Array(length).fill(fill);
}

/** Byte equality without the matcher's per-element cost (messages here reach 64 KiB). */
function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Feeds `chunks` to a fresh decoder and returns everything decoded, as plain arrays. */
function decodeAll(chunks: Uint8Array[], max = 65535): number[][] {
  const decoder = new FrameDecoder(max);
  const out: number[][] = [];
  for (const chunk of chunks) for (const m of decoder.push(chunk)) out.push(Array.from(m));
  expect(decoder.bufferedBytes).toBe(0);
  return out;
}

describe("FrameDecoder", () => {
  const cases: { name: string; chunks: number[][]; want: number[][] }[] = [
    { name: "one frame in one chunk", chunks: [[0, 3, 1, 2, 3]], want: [[1, 2, 3]] },
    {
      name: "two frames in one chunk",
      chunks: [[0, 1, 9, 0, 2, 7, 8]],
      want: [[9], [7, 8]],
    },
    {
      name: "length bytes split 1+1",
      chunks: [[0], [2], [5, 6]],
      want: [[5, 6]],
    },
    {
      name: "a frame whose length ends one chunk and body fills the next",
      chunks: [[0, 1, 4, 0], [2], [1, 1]],
      want: [[4], [1, 1]],
    },
    { name: "an empty chunk in between", chunks: [[0], [], [1], [], [42]], want: [[42]] },
    {
      name: "a frame then half of the next",
      chunks: [[0, 1, 1, 0, 3, 1], [2, 3]],
      want: [[1], [1, 2, 3]],
    },
  ];
  for (const c of cases) {
    it(`decodes ${c.name}`, () => {
      expect(decodeAll(c.chunks.map((x) => Uint8Array.from(x)))).toEqual(c.want);
    });
  }

  it("decodes one frame split at every possible byte boundary, including inside the length", () => {
    const body = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const framed = encodeFrames([body]);
    for (let cut = 0; cut <= framed.length; cut++) {
      const decoder = new FrameDecoder();
      const first = decoder.push(framed.subarray(0, cut));
      expect(first).toEqual(cut === framed.length ? [body] : []);
      const second = decoder.push(framed.subarray(cut));
      expect([...first, ...second]).toEqual([body]);
      expect(decoder.bufferedBytes).toBe(0);
    }
  });

  it("decodes a stream fed one byte at a time", () => {
    const messages = [msg(1), msg(12), msg(255), msg(256), msg(1000)];
    const framed = encodeFrames(messages);
    const decoder = new FrameDecoder();
    const out: Uint8Array[] = [];
    for (let i = 0; i < framed.length; i++) out.push(...decoder.push(framed.subarray(i, i + 1)));
    expect(out).toEqual(messages);
  });

  it("reports the bytes held for an incomplete frame", () => {
    const decoder = new FrameDecoder();
    expect(decoder.bufferedBytes).toBe(0);
    decoder.push(bytes(0));
    expect(decoder.bufferedBytes).toBe(1);
    decoder.push(bytes(5, 1, 2));
    expect(decoder.bufferedBytes).toBe(4);
    decoder.push(bytes(3, 4, 5));
    expect(decoder.bufferedBytes).toBe(0);
  });

  it("returns whole frames as views of the chunk, not copies", () => {
    const chunk = bytes(0, 2, 7, 7);
    const [m] = new FrameDecoder().push(chunk);
    expect(m.buffer).toBe(chunk.buffer);
  });

  it("throws FrameError for a zero length", () => {
    const decoder = new FrameDecoder();
    expect(() => decoder.push(bytes(0, 0, 1))).toThrow(FrameError);
    expect(() => new FrameDecoder().push(bytes(0, 0))).toThrow(/zero-length/);
  });

  it("throws FrameError for a zero length after good frames", () => {
    expect(() => new FrameDecoder().push(bytes(0, 1, 5, 0, 0))).toThrow(FrameError);
  });

  it("throws FrameError for a zero length whose bytes arrive split", () => {
    const decoder = new FrameDecoder();
    expect(decoder.push(bytes(0))).toEqual([]);
    expect(() => decoder.push(bytes(0))).toThrow(FrameError);
  });

  it("throws FrameError for an oversize length as soon as the length is known", () => {
    const decoder = new FrameDecoder(512);
    expect(() => decoder.push(bytes(2, 1))).toThrow(FrameError);
    expect(() => new FrameDecoder(512).push(bytes(2, 1))).toThrow(/513 bytes exceeds 512/);
  });

  it("accepts a frame of exactly the maximum size", () => {
    for (const max of [12, 512, 65535]) {
      const body = msg(max, 0xab);
      expect(new FrameDecoder(max).push(encodeFrames([body]))).toEqual([body]);
    }
  });

  it("FrameError is a RangeError named FrameError", () => {
    const e = new FrameError("x");
    expect(e).toBeInstanceOf(RangeError);
    expect(e.name).toBe("FrameError");
  });

  describe("partialSince", () => {
    it("is 0 when nothing is held", () => {
      const decoder = new FrameDecoder();
      expect(decoder.partialSince).toBe(0);
      decoder.push(bytes(0, 1, 1), 100);
      expect(decoder.partialSince).toBe(0);
    });

    it("is the time of the push that started the incomplete frame", () => {
      const decoder = new FrameDecoder();
      decoder.push(bytes(0), 100);
      expect(decoder.partialSince).toBe(100);
      decoder.push(bytes(4), 200);
      expect(decoder.partialSince).toBe(100);
      decoder.push(bytes(1, 2), 300);
      expect(decoder.partialSince).toBe(100);
      decoder.push(bytes(3, 4), 400);
      expect(decoder.partialSince).toBe(0);
    });

    it("restarts when a push completes a frame and starts another", () => {
      const decoder = new FrameDecoder();
      decoder.push(bytes(0, 2, 1), 100);
      expect(decoder.partialSince).toBe(100);
      decoder.push(bytes(2, 0), 250);
      expect(decoder.partialSince).toBe(250);
      decoder.push(bytes(1), 300);
      expect(decoder.partialSince).toBe(250);
      decoder.push(bytes(9), 400);
      expect(decoder.partialSince).toBe(0);
    });

    it("starts at the push that leaves a partial frame after whole ones", () => {
      const decoder = new FrameDecoder();
      decoder.push(bytes(0, 1, 1, 0, 1), 500);
      expect(decoder.partialSince).toBe(500);
    });
  });
});

describe("encodeFrames", () => {
  it("writes each message behind its big-endian length", () => {
    expect(Array.from(encodeFrames([bytes(1, 2), msg(258, 0)]))).toEqual([
      0,
      2,
      1,
      2,
      1,
      2,
      ...new Array(258).fill(0),
    ]);
  });

  it("encodes an empty list to no bytes", () => {
    expect(encodeFrames([]).length).toBe(0);
  });

  it("accepts 1 and 65535 bytes", () => {
    expect(encodeFrames([msg(1)]).length).toBe(3);
    const big = encodeFrames([msg(65535)]);
    expect([big[0], big[1], big.length]).toEqual([0xff, 0xff, 65537]);
  });

  for (const size of [0, 65536, 70000]) {
    it(`rejects a message of ${size} bytes with a RangeError`, () => {
      expect(() => encodeFrames([msg(1), msg(size)])).toThrow(RangeError);
      expect(() => encodeFrames([msg(size)])).toThrow(`${size} bytes`);
    });
  }
});

describe("codec round trip (property)", () => {
  const sizeArb = fc.oneof(
    { weight: 8, arbitrary: fc.integer({ min: 1, max: 600 }) },
    { weight: 1, arbitrary: fc.integer({ min: 601, max: 65535 }) },
  );
  const messageArb = fc.tuple(sizeArb, fc.nat(255)).map(([n, seed]) =>
    Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 0xff)
  );

  it("decodes any re-chunked stream to the same messages in order", () => {
    fc.assert(
      fc.property(
        fc.array(messageArb, { minLength: 1, maxLength: 20 }),
        fc.array(fc.nat(), { maxLength: 40 }),
        (messages, cutSeeds) => {
          const framed = encodeFrames(messages);
          const cuts = [...new Set(cutSeeds.map((s) => s % (framed.length + 1)))].sort((a, b) =>
            a - b
          );
          const chunks: Uint8Array[] = [];
          let prev = 0;
          for (const c of [...cuts, framed.length]) {
            chunks.push(framed.subarray(prev, c));
            prev = c;
          }
          const decoder = new FrameDecoder();
          const out: Uint8Array[] = [];
          for (const chunk of chunks) out.push(...decoder.push(chunk));
          expect(out.length).toBe(messages.length);
          for (let i = 0; i < messages.length; i++) {
            expect(sameBytes(out[i], messages[i]), `message ${i}`).toBe(true);
          }
          expect(decoder.bufferedBytes).toBe(0);
          expect(decoder.partialSince).toBe(0);
        },
      ),
      { numRuns: 200 },
    );
  });
});
