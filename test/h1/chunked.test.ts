/**
 * The chunked transfer coding decoder on its own: bodies cut at every point, extensions and
 * trailers, where it stops (pipelined bytes after the body are left), the malformed framings it
 * refuses, and its three bounds (body, framing, size line).
 */
import { describe, expect, it } from "vitest";
import { Chunked, ChunkedDecoder, MAX_CHUNK_LINE } from "../../src/h1/chunked.ts";

const text = new TextEncoder();
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/** Feeds `input` in the pieces cut at `cuts`; returns the outcome, the body if done, and where it stopped in the last piece. */
function run(input: string, cuts: number[] = [], maxBody = 1_000, maxFraming = 200) {
  const decoder = new ChunkedDecoder(maxBody, maxFraming);
  decoder.begin();
  const bytes = text.encode(input);
  const bounds = [0, ...cuts, bytes.length];
  let kept = new Uint8Array(0); // what the decoder left unread, joined to the next piece
  let stopped = 0;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const piece = new Uint8Array([...kept, ...bytes.subarray(bounds[i], bounds[i + 1])]);
    stopped = decoder.read(piece, 0);
    if (decoder.outcome !== Chunked.More) {
      return { outcome: decoder.outcome, stopped, piece, decoder };
    }
    kept = piece.subarray(stopped);
  }
  return { outcome: decoder.outcome, stopped, piece: kept, decoder };
}

describe("ChunkedDecoder", () => {
  const BODY = "5;name=value\r\nhello\r\n1\r\n!\r\n0\r\nTrailer: yes\r\n\r\n";

  it("decodes a body with extensions and trailers cut at any one point", () => {
    for (let cut = 0; cut <= BODY.length; cut++) {
      const { outcome, decoder } = run(BODY, [cut]);
      expect(outcome, `cut at ${cut}`).toBe(Chunked.Done);
      expect(decode(decoder.take())).toBe("hello!");
    }
  });

  it("decodes a body fed one byte at a time", () => {
    const cuts = Array.from({ length: BODY.length - 1 }, (_, i) => i + 1);
    const { outcome, decoder } = run(BODY, cuts);
    expect(outcome).toBe(Chunked.Done);
    expect(decode(decoder.take())).toBe("hello!");
  });

  it("stops right after the body, leaving a pipelined request's bytes", () => {
    const next = "GET / HTTP/1.1\r\n";
    const { outcome, stopped, piece } = run("3\r\nabc\r\n0\r\n\r\n" + next);
    expect(outcome).toBe(Chunked.Done);
    expect(decode(piece.subarray(stopped))).toBe(next);
  });

  it("takes upper- and lower-case hex, and whitespace before extensions", () => {
    const { outcome, decoder } = run("A \t;x\r\n0123456789\r\na\r\nabcdefghij\r\n0\r\n\r\n");
    expect(outcome).toBe(Chunked.Done);
    expect(decoder.take().length).toBe(20);
  });

  it("grows its buffer past 1 KiB, hands a full buffer over without a copy, and starts afresh", () => {
    const decoder = new ChunkedDecoder(5_000, 200);
    decoder.begin();
    const big = "x".repeat(3_000);
    decoder.read(text.encode(`bb8\r\n${big}\r\n0\r\n\r\n`), 0);
    expect(decoder.outcome).toBe(Chunked.Done);
    expect(decode(decoder.take())).toBe(big);
    decoder.begin();
    decoder.read(text.encode("2\r\nok\r\n0\r\n\r\n"), 0);
    expect(decode(decoder.take())).toBe("ok");
  });

  it("takes a body of exactly maxBody, and refuses one octet more", () => {
    expect(run("2\r\nab\r\n2\r\ncd\r\n0\r\n\r\n", [], 4).outcome).toBe(Chunked.Done);
    expect(run("2\r\nab\r\n3\r\ncde\r\n0\r\n\r\n", [], 4).outcome).toBe(Chunked.BodyTooLarge);
  });

  const malformed: [string, string][] = [
    ["a size that is not hex", "zz\r\n"],
    ["a negative size", "-1\r\n"],
    ["an empty size", "\r\n"],
    ["a size over 2^28", "fffffffffff\r\n"],
    ["a bad character in an extension", "1;\x01\r\na\r\n"],
    ["chunk data without its CRLF", "1\r\nabc"],
    ["a size line with a bare LF", "1\n"],
    ["a control character in a trailer", "0\r\nX: \x01\r\n\r\n"],
    ["a trailer line with a bare LF", "0\r\nX: 1\n"],
    ["a size line over MAX_CHUNK_LINE", `1;${"e".repeat(MAX_CHUNK_LINE)}\r\n`],
    ["size lines and CRLFs over maxFraming together (5 octets a chunk)", "1\r\na\r\n".repeat(41)],
    ["a trailer line longer than maxFraming", `0\r\nX: ${"v".repeat(250)}\r\n\r\n`],
  ];
  for (const [what, input] of malformed) {
    it(`refuses ${what}`, () => {
      expect(run(input).outcome).toBe(Chunked.Malformed);
    });
  }

  it("refuses trailers that take the framing over maxFraming, and takes them within it", () => {
    const input = `0\r\n${`X-Long: ${"v".repeat(80)}\r\n`.repeat(3)}\r\n`;
    expect(run(input, [], 1_000, 200).outcome).toBe(Chunked.TrailersTooLarge);
    expect(run(input, [], 1_000, 400).outcome).toBe(Chunked.Done);
  });

  it("takes exactly maxFraming octets of framing", () => {
    expect(run("1\r\na\r\n".repeat(39) + "0\r\n\r\n").outcome).toBe(Chunked.Done); // 195 + 5
  });

  it("asks for more while a size line or CRLF is incomplete", () => {
    for (const input of ["", "5", "5\r", "5\r\nhel", "5\r\nhello", "5\r\nhello\r", "0\r\nT: 1"]) {
      expect(run(input).outcome, JSON.stringify(input)).toBe(Chunked.More);
    }
  });
});
