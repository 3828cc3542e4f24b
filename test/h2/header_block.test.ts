/**
 * Header blocks out of HEADERS and CONTINUATION: padding and priority stripped, parts joined,
 * and the caps in octets and in frames.
 */
import { describe, expect, it } from "vitest";
import { Code, Flag } from "../../src/h2/frames.ts";
import { HeaderBlockReader, MAX_CONTINUATIONS } from "../../src/h2/header_block.ts";
import { codeOf } from "../support/h2_pipe.ts";

const bytes = (...values: number[]) => Uint8Array.from(values);

describe("HeaderBlockReader", () => {
  it("returns a block that ends in its HEADERS frame, without padding and priority", () => {
    const reader = new HeaderBlockReader(100);
    const flags = Flag.EndHeaders | Flag.Padded | Flag.Priority | Flag.EndStream;
    // pad length 2, 5 octets of priority, the block, 2 octets of padding
    const payload = bytes(2, 0, 0, 0, 0, 9, 0x82, 0x84, 0, 0);
    expect([...reader.headers(flags, 1, payload)!]).toEqual([0x82, 0x84]);
    expect(reader.endStream).toBe(true);
    expect(reader.continuing).toBe(false);
  });

  it("joins CONTINUATION frames, and remembers the END_STREAM of the HEADERS", () => {
    const reader = new HeaderBlockReader(100);
    expect(reader.headers(Flag.EndStream, 3, bytes(1, 2))).toBeUndefined();
    expect([reader.continuing, reader.streamId]).toEqual([true, 3]);
    expect(reader.continuation(0, 3, bytes(3))).toBeUndefined();
    expect([...reader.continuation(Flag.EndHeaders, 3, bytes(4, 5))!]).toEqual([1, 2, 3, 4, 5]);
    expect([reader.continuing, reader.endStream]).toEqual([false, true]);
    // The next block starts afresh.
    reader.headers(0, 5, bytes(7));
    expect([...reader.continuation(Flag.EndHeaders, 5, bytes(8))!]).toEqual([7, 8]);
  });

  const bad: [string, (r: HeaderBlockReader) => void, number][] = [
    ["HEADERS on stream 0", (r) => r.headers(Flag.EndHeaders, 0, bytes(1)), Code.ProtocolError],
    ["padding past the payload", (r) => r.headers(Flag.Padded, 1, bytes(5, 1)), Code.ProtocolError],
    [
      "a block over the cap in HEADERS",
      (r) => r.headers(0, 1, new Uint8Array(11)),
      Code.EnhanceYourCalm,
    ],
    [
      "a block over the cap with CONTINUATION",
      (r) => {
        r.headers(0, 1, new Uint8Array(6));
        r.continuation(0, 1, new Uint8Array(5));
      },
      Code.EnhanceYourCalm,
    ],
    ["CONTINUATION with no block begun", (r) => r.continuation(0, 1, bytes(1)), Code.ProtocolError],
    [
      "CONTINUATION on another stream",
      (r) => {
        r.headers(0, 1, bytes(1));
        r.continuation(0, 3, bytes(1));
      },
      Code.ProtocolError,
    ],
    [
      `more than ${MAX_CONTINUATIONS} CONTINUATION frames, empty ones too`,
      (r) => {
        r.headers(0, 1, bytes(1));
        for (let i = 0; i <= MAX_CONTINUATIONS; i++) r.continuation(0, 1, new Uint8Array(0));
      },
      Code.EnhanceYourCalm,
    ],
  ];
  for (const [what, run, code] of bad) {
    it(`refuses ${what}`, () => {
      expect(codeOf(() => run(new HeaderBlockReader(10)))).toBe(code);
    });
  }
});
