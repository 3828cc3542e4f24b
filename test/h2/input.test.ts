/**
 * The reading side of a connection: the client preface checked (in pieces too), frames cut
 * across chunks, the two ways in (a read loop, a socket that pushes), reading held while the
 * outbox is full, and the ends (the peer's close, a failed read, a protocol error).
 */
import { describe, expect, it } from "vitest";
import { Code, ConnectionError, PREFACE } from "../../src/h2/frames.ts";
import { FrameInput, type InputHandler } from "../../src/h2/input.ts";
import type { H2Socket } from "../../src/h2/socket.ts";
import { encodeFrame } from "../support/byte_pipe.ts";

const PING = encodeFrame(6, 0, 0, new Uint8Array(8));
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

/** A handler that records what it is told; `throwOn` frame types throw a ConnectionError. */
function recorder(throwOn?: number) {
  const seen: string[] = [];
  const handler: InputHandler = {
    frame: (type, _flags, id) => {
      if (type === throwOn) throw new ConnectionError(Code.ProtocolError, "bad frame");
      seen.push(`frame ${type} on ${id}`);
    },
    framesRead: () => seen.push("read"),
    notPreface: () => seen.push("not a preface"),
    peerClosed: () => seen.push("closed"),
    failed: (error) => seen.push(`failed: ${(error as Error).message}`),
  };
  return { seen, handler };
}

/** A socket read from: `chunks` in turn, then the end; records the buffer size of each read. */
function pullSocket(chunks: Uint8Array[]) {
  const sizes: number[] = [];
  let gate: (() => void) | undefined;
  const read = async (buffer: Uint8Array) => {
    sizes.push(buffer.length);
    await new Promise<void>((resolve) => (gate = resolve));
    const chunk = chunks.shift();
    if (chunk === undefined) return null;
    buffer.set(chunk);
    return chunk.length;
  };
  const next = async () => {
    await tick();
    gate?.();
    await tick();
  };
  return { read, sizes, next };
}

describe("FrameInput", () => {
  it("takes the client preface in pieces, then frames cut across chunks", () => {
    const { seen, handler } = recorder();
    const bytes = new Uint8Array([...PREFACE, ...PING, ...PING]);
    const whole = new FrameInput(handler, true);
    whole.push(bytes.subarray(0, 10));
    whole.push(bytes.subarray(10, 30));
    whole.push(bytes.subarray(30, 45));
    whole.push(bytes.subarray(45));
    expect(seen).toEqual(["read", "frame 6 on 0", "read", "frame 6 on 0", "read"]);
  });

  it("says so when the bytes are not a client preface", () => {
    const { seen, handler } = recorder();
    new FrameInput(handler, true).push(new TextEncoder().encode("GET / HTTP/1.1\r\n"));
    expect(seen).toEqual(["not a preface"]);
  });

  it("expects no preface on a client", () => {
    const { seen, handler } = recorder();
    new FrameInput(handler, false).push(PING);
    expect(seen).toEqual(["frame 6 on 0", "read"]);
  });

  it("hands a frame's ConnectionError, a failed read and the peer's close to the handler", () => {
    const { seen, handler } = recorder(6);
    const input = new FrameInput(handler, false);
    input.push(PING);
    input.pushEnd(new Error("reset by peer"));
    input.pushEnd();
    expect(seen).toEqual(["failed: bad frame", "failed: reset by peer", "closed"]);
  });

  it("takes nothing once stopped", () => {
    const { seen, handler } = recorder();
    const input = new FrameInput(handler, false);
    input.stop();
    input.push(PING);
    input.pushEnd();
    expect(seen).toEqual([]);
  });

  it("reads until the end, doubling a buffer that reads fill, up to its largest size", async () => {
    const { seen, handler } = recorder();
    const ack = encodeFrame(4, 1, 0); // 9 octets
    const pair = new Uint8Array([...ack, ...ack]);
    // 8 octets fill the first buffer (doubled to 16); 16 fill the next (already the largest).
    const chunks = [PING.subarray(0, 8), PING.subarray(8), pair.subarray(0, 16), pair.subarray(16)];
    const socket = pullSocket(chunks);
    const loop = new FrameInput(handler, false).pull(socket.read, [8, 16]);
    for (let i = 0; i < 5; i++) await socket.next();
    await loop;
    expect(socket.sizes).toEqual([8, 16, 16, 16, 16]);
    expect(seen.filter((s) => s !== "read")).toEqual([
      "frame 6 on 0",
      "frame 4 on 0",
      "frame 4 on 0",
      "closed",
    ]);
  });

  it("holds the read loop while paused, and lets it go when resumed or stopped", async () => {
    const { seen, handler } = recorder();
    const input = new FrameInput(handler, false);
    const socket = pullSocket([PING, PING]);
    const loop = input.pull(socket.read, [64, 64]);
    input.pause();
    await socket.next(); // the read under way finishes...
    await socket.next();
    expect(socket.sizes.length).toBe(1); // ...and no other starts
    input.resume();
    await tick();
    expect(socket.sizes.length).toBe(2);
    input.pause();
    await socket.next();
    input.stop();
    await loop;
    expect(socket.sizes.length).toBe(2);
    expect(seen.filter((s) => s !== "read")).toEqual(["frame 6 on 0", "frame 6 on 0"]);
  });

  it("pauses and resumes a socket that pushes, once each, and resumes none once stopped", () => {
    const { handler } = recorder();
    const calls: string[] = [];
    const socket: H2Socket = {
      write: () => Promise.resolve(),
      close: () => {},
      pause: () => calls.push("pause"),
      resume: () => calls.push("resume"),
    };
    const input = new FrameInput(handler, false);
    input.attach(socket);
    input.pause();
    input.pause();
    input.resume();
    input.resume();
    input.pause();
    input.stop();
    expect(calls).toEqual(["pause", "resume", "pause"]);
  });
});
