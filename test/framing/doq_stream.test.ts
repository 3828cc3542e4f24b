/**
 * DoQ stream framing (RFC 9250 §4.2): one length-prefixed message per stream, then the FIN. A
 * whole stream checked by doqMessageOf; a live stream read by readDoqMessage, to its FIN (the
 * face) or to the message's end (the upstream).
 */
import { describe, expect, it, vi } from "vitest";
import {
  doqMessageOf,
  DoqReadTimeout,
  DoqStreamError,
  MAX_DOQ_STREAM_BYTES,
  readDoqMessage,
} from "../../src/framing/doq_stream.ts";
import { rejection } from "../support/rejection.ts";
import { TimerLane } from "../../src/async/timer_lane.ts";

const bytes = (...values: number[]) => Uint8Array.from(values);

/** A stream its test writes to: `push` a chunk, `fin` to end it; `cancelled` once cancelled. */
function liveStream() {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  const cancelled = vi.fn();
  const readable = new ReadableStream<Uint8Array>({
    start: (c) => void (controller = c),
    cancel: cancelled,
  });
  return {
    readable,
    cancelled,
    push: (...chunk: number[]) => controller.enqueue(Uint8Array.from(chunk)),
    fin: () => controller.close(),
    fail: (error: Error) => controller.error(error),
  };
}

/** A stream that delivers `chunks`, then its FIN. */
function streamOf(...chunks: number[][]): ReadableStream<Uint8Array> {
  const s = liveStream();
  for (const c of chunks) s.push(...c);
  s.fin();
  return s.readable;
}

/**
 * A byte stream, as a QUIC stream's `readable` is: it hands out `chunks` (split to fit the
 * reader's buffers), then its FIN unless `fin` is false. `views` records the size of the buffer
 * each pull was asked to fill (null: no BYOB request, the reader did not bring a buffer).
 */
function byteStreamOf(chunks: Uint8Array[], fin = true) {
  const queue = [...chunks];
  const views: (number | null)[] = [];
  const cancelled = vi.fn();
  const readable = new ReadableStream({
    type: "bytes",
    pull(c: ReadableByteStreamController) {
      const request = c.byobRequest;
      views.push(request?.view?.byteLength ?? null);
      const next = queue.shift();
      if (!next) {
        if (fin) {
          c.close();
          request?.respond(0);
        }
        return;
      }
      if (!request?.view) return c.enqueue(next);
      const view = new Uint8Array(request.view.buffer, request.view.byteOffset);
      const n = Math.min(next.byteLength, request.view.byteLength);
      view.set(next.subarray(0, n));
      if (n < next.byteLength) queue.unshift(next.subarray(n));
      request.respond(n);
    },
    cancel: cancelled,
  });
  return { readable, views, cancelled };
}

/** Whether `promise` is still pending after the tasks queued so far have run. */
async function isPending(promise: Promise<unknown>): Promise<boolean> {
  const marker = Symbol();
  const first = await Promise.race([
    promise.catch(() => null),
    new Promise((r) => setTimeout(() => r(marker), 20)),
  ]);
  return first === marker;
}

describe("doqMessageOf", () => {
  it.each([
    ["nothing at all", [], "empty"],
    ["half a length prefix", [0], "truncated"],
    ["a zero length", [0, 0], "empty"],
    ["fewer bytes than announced", [0, 3, 1, 2], "truncated"],
    ["a byte past the message", [0, 3, 1, 2, 3, 4], "trailing-data"],
    ["a second message", [0, 1, 7, 0, 1, 8], "trailing-data"],
  ])("refuses %s as %s", (_what, stream, fault) => {
    const error = (() => {
      try {
        doqMessageOf(Uint8Array.from(stream));
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(DoqStreamError);
    expect(error).toBeInstanceOf(RangeError);
    expect((error as DoqStreamError).fault).toBe(fault);
    expect((error as Error).message).toMatch(/^DoQ stream: /);
  });

  it("refuses a length over maxMessageSize before looking for its bytes", () => {
    expect(() => doqMessageOf(bytes(0x02, 0x01, 1), 512)).toThrow(
      expect.objectContaining({ fault: "oversize" }),
    );
    const largest = new Uint8Array(2 + 512);
    largest[0] = 0x02; // 512
    expect(doqMessageOf(largest, 512).length).toBe(512);
  });

  it("returns the message as a view of the stream's bytes, without the prefix", () => {
    const stream = bytes(0, 3, 1, 2, 3);
    const message = doqMessageOf(stream);
    expect([...message]).toEqual([1, 2, 3]);
    expect(message.buffer).toBe(stream.buffer);
  });

  it("takes the largest message there is", () => {
    const stream = new Uint8Array(MAX_DOQ_STREAM_BYTES).fill(0xab);
    stream[0] = 0xff;
    stream[1] = 0xff;
    expect(doqMessageOf(stream).length).toBe(65_535);
  });
});

describe("readDoqMessage to the FIN (the face reading a query)", () => {
  it("joins a message split anywhere, the length prefix included", async () => {
    const message = await readDoqMessage(streamOf([0], [3, 1], [], [2, 3]));
    expect([...message]).toEqual([1, 2, 3]);
  });

  it("does not settle on a whole message until the FIN comes", async () => {
    const s = liveStream();
    const read = readDoqMessage(s.readable);
    s.push(0, 1, 42);
    expect(await isPending(read)).toBe(true);
    s.fin();
    expect([...await read]).toEqual([42]);
  });

  it("refuses data after the message once the FIN shows it", async () => {
    const error = await rejection(readDoqMessage(streamOf([0, 1, 42, 0])));
    expect(error).toMatchObject({ fault: "trailing-data" });
  });

  it("stops reading past MAX_DOQ_STREAM_BYTES without waiting for the FIN", async () => {
    const s = liveStream();
    const read = readDoqMessage(s.readable);
    s.push(...new Uint8Array(MAX_DOQ_STREAM_BYTES));
    expect(await isPending(read)).toBe(true);
    s.push(0);
    expect(await rejection(read)).toMatchObject({ fault: "oversize" });
    // The lock is released: the caller may cancel the stream.
    await s.readable.cancel();
    expect(s.cancelled).toHaveBeenCalled();
  });

  it("applies maxMessageSize to the announced length", async () => {
    const error = await rejection(
      readDoqMessage(streamOf([0x01, 0x00, ...new Uint8Array(256)]), { maxMessageSize: 255 }),
    );
    expect(error).toMatchObject({ fault: "oversize" });
  });

  it("rejects with the signal's reason when it aborts mid-stream, and releases the stream", async () => {
    const s = liveStream();
    const deadline = new AbortController();
    const read = readDoqMessage(s.readable, { signal: deadline.signal });
    s.push(0, 5, 1);
    const reason = new Error("stream deadline");
    deadline.abort(reason);
    expect(await rejection(read)).toBe(reason);
    expect(s.readable.locked).toBe(false);
  });

  it("passes the stream's own failure through", async () => {
    const s = liveStream();
    const read = readDoqMessage(s.readable);
    const reset = new Error("stream reset by peer");
    s.fail(reset);
    expect(await rejection(read)).toBe(reset);
  });
});

describe("readDoqMessage to the message's end (the upstream reading an answer)", () => {
  it("settles as soon as the message is whole, before any FIN", async () => {
    const s = liveStream();
    const read = readDoqMessage(s.readable, { until: "message" });
    s.push(0);
    s.push(2, 7);
    expect(await isPending(read)).toBe(true);
    s.push(8);
    expect([...await read]).toEqual([7, 8]);
    // The FIN is read in the background; then the stream is free.
    expect(s.readable.locked).toBe(true);
    s.fin();
    await vi.waitFor(() => expect(s.readable.locked).toBe(false));
    expect(s.cancelled).not.toHaveBeenCalled();
  });

  it("cancels the stream when data comes after the message instead of the FIN", async () => {
    const s = liveStream();
    const read = readDoqMessage(s.readable, { until: "message" });
    s.push(0, 1, 9);
    expect([...await read]).toEqual([9]);
    s.push(1);
    await vi.waitFor(() => expect(s.cancelled).toHaveBeenCalled());
  });

  it("refuses a byte past the message in the same chunk at once, without the FIN", async () => {
    const s = liveStream();
    const read = readDoqMessage(s.readable, { until: "message" });
    s.push(0, 1, 9, 9);
    expect(await rejection(read)).toMatchObject({ fault: "trailing-data" });
  });

  it("refuses a stream that ends inside the message", async () => {
    expect(await rejection(readDoqMessage(streamOf([0, 4, 1, 2]), { until: "message" })))
      .toMatchObject({ fault: "truncated" });
    expect(await rejection(readDoqMessage(streamOf([]), { until: "message" })))
      .toMatchObject({ fault: "empty" });
  });
});

describe("readDoqMessage on a byte stream (a QUIC stream's readable)", () => {
  it("reads with a BYOB reader into one small buffer, not a chunk per read", async () => {
    const s = byteStreamOf([bytes(0), bytes(3, 1), bytes(2, 3)]);
    expect([...await readDoqMessage(s.readable)]).toEqual([1, 2, 3]);
    // Every pull filled the reader's own buffer (the default reader of Deno's resource streams
    // allocates 64 KiB per read instead), 512 bytes less what was already in.
    expect(s.views).toEqual([512, 511, 509, 507]);
  });

  it("leaves a stream read to its FIN locked (releasing costs a stack trace), else unlocks it", async () => {
    const s = byteStreamOf([bytes(0, 1, 7)]);
    expect([...await readDoqMessage(s.readable)]).toEqual([7]);
    expect(s.readable.locked).toBe(true);
    // A read that fails (a framing fault before the FIN, an abort) lets go of the stream, so its
    // owner can cancel it.
    const bad = byteStreamOf([new Uint8Array(70_000)], false);
    expect(await rejection(readDoqMessage(bad.readable))).toMatchObject({ fault: "oversize" });
    expect(bad.readable.locked).toBe(false);
    const stop = new AbortController();
    const slow = byteStreamOf([bytes(0, 1)], false);
    const read = readDoqMessage(slow.readable, { signal: stop.signal });
    stop.abort(new Error("deadline"));
    expect(await rejection(read)).toMatchObject({ message: "deadline" });
    expect(slow.readable.locked).toBe(false);
  });

  it("grows the buffer for a message larger than it", async () => {
    const message = Uint8Array.from({ length: 1500 }, (_, i) => i & 0xff);
    const s = byteStreamOf([Uint8Array.of(1500 >> 8, 1500 & 0xff), message.slice()]);
    expect(await readDoqMessage(s.readable)).toEqual(message);
  });

  it("refuses more than the largest stream without holding it all", async () => {
    const s = byteStreamOf(Array.from({ length: 6 }, () => new Uint8Array(16_384).fill(0xff)));
    expect(await rejection(readDoqMessage(s.readable))).toMatchObject({ fault: "oversize" });
    expect(Math.max(...s.views.map(Number))).toBeLessThanOrEqual(MAX_DOQ_STREAM_BYTES + 1);
  });

  it("refuses a stream that breaks the framing", async () => {
    const read = (...chunks: number[][]) =>
      rejection(readDoqMessage(byteStreamOf(chunks.map((c) => Uint8Array.from(c))).readable));
    expect(await read()).toMatchObject({ fault: "empty" });
    expect(await read([0, 3, 1, 2])).toMatchObject({ fault: "truncated" });
    expect(await read([0, 1, 7], [0, 1, 8])).toMatchObject({ fault: "trailing-data" });
  });

  it("to the message's end: settles before the FIN, then reads the FIN in the background", async () => {
    const s = byteStreamOf([bytes(0, 2, 7, 8)], false);
    expect([...await readDoqMessage(s.readable, { until: "message" })]).toEqual([7, 8]);
    expect(s.readable.locked).toBe(true);
    expect(
      await rejection(readDoqMessage(byteStreamOf([bytes(0, 1, 9, 9)]).readable, {
        until: "message",
      })),
    ).toMatchObject({ fault: "trailing-data" });
  });
});

describe("readDoqMessage with a lane deadline (the face's stream timeout)", () => {
  it.each([["a byte stream", true], ["another stream", false]])(
    "%s: cancels the stream and rejects with DoqReadTimeout when the lane fires",
    async (_what, bytesMode) => {
      const lane = new TimerLane(30);
      const s = bytesMode ? byteStreamOf([bytes(0, 1)], false) : liveStream();
      const read = readDoqMessage(s.readable, { lane });
      expect(await isPending(read)).toBe(true);
      const error = await rejection(read);
      expect(error).toBeInstanceOf(DoqReadTimeout);
      expect(s.cancelled).toHaveBeenCalled();
      expect(s.readable.locked).toBe(false);
    },
  );

  it("a read that completes in time leaves nothing behind on the lane", async () => {
    const lane = new TimerLane(30);
    const s = byteStreamOf([bytes(0, 1, 7)]);
    expect([...await readDoqMessage(s.readable, { lane })]).toEqual([7]);
    await new Promise((r) => setTimeout(r, 60));
    expect(s.cancelled).not.toHaveBeenCalled();
  });
});
