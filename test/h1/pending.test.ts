/**
 * The input an HTTP/1.1 connection has not parsed yet: kept in order across reads, compacted
 * and grown as it comes, and let go of once used up when it is large.
 */
import { describe, expect, it } from "vitest";
import { PendingInput } from "../../src/h1/pending.ts";

const text = new TextEncoder();
const waiting = (p: PendingInput) => new TextDecoder().decode(p.bytes.subarray(p.start));

describe("PendingInput", () => {
  it("keeps what is not parsed yet, in order, across reads", () => {
    const pending = new PendingInput();
    pending.keep(text.encode("GET / HT"));
    pending.keep(text.encode("TP/1.1\r\n"));
    expect(waiting(pending)).toBe("GET / HTTP/1.1\r\n");
    pending.consumed(4);
    expect([pending.size, waiting(pending)]).toEqual([12, "/ HTTP/1.1\r\n"]);
    pending.keep(text.encode("Host: a"));
    expect(waiting(pending)).toBe("/ HTTP/1.1\r\nHost: a");
  });

  it("compacts in place and grows past its buffer without losing bytes", () => {
    const pending = new PendingInput();
    const chunk = new Uint8Array(700).fill(1);
    pending.keep(chunk);
    pending.consumed(600);
    pending.keep(new Uint8Array(700).fill(2)); // 800 waiting: fits once compacted
    expect(pending.start).toBe(0);
    pending.keep(new Uint8Array(5_000).fill(3)); // grows
    expect(pending.size).toBe(5_800);
    const bytes = pending.bytes.subarray(pending.start);
    expect([bytes[0], bytes[99], bytes[100], bytes[799], bytes[800], bytes[5_799]]).toEqual([
      1,
      1,
      2,
      2,
      3,
      3,
    ]);
  });

  it("lets go of a large buffer once all is used, and keeps a small one", () => {
    const small = new PendingInput();
    small.keep(new Uint8Array(100));
    const buffer = small.bytes.buffer;
    small.consumed(100);
    small.keep(new Uint8Array(10));
    expect(small.bytes.buffer).toBe(buffer);

    const large = new PendingInput();
    large.keep(new Uint8Array(10_000));
    large.consumed(10_000);
    expect([large.size, large.bytes.length]).toEqual([0, 0]);
  });

  it("drops everything, and ignores what parsing used after the drop", () => {
    const pending = new PendingInput();
    pending.keep(text.encode("abc"));
    pending.drop();
    pending.consumed(2);
    expect([pending.size, pending.start, pending.bytes.length]).toEqual([0, 0, 0]);
  });
});
