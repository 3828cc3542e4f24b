import { afterEach, describe, expect, it, vi } from "vitest";
import { encodeFrames, FrameDecoder } from "../../src/framing/codec.ts";
import {
  type CloseReason,
  type Framed,
  StreamSession,
  type StreamSessionOptions,
  type StreamTransport,
} from "../../src/framing/session.ts";

/** An in-memory transport that records what the session does to it. */
class FakeTransport implements StreamTransport {
  writes: Uint8Array[] = [];
  writableLength = 0;
  paused = false;
  pauses = 0;
  resumes = 0;
  ended = false;
  destroyed = false;

  write(bytes: Uint8Array): void {
    this.writes.push(bytes.slice());
  }
  pause(): void {
    this.paused = true;
    this.pauses++;
  }
  resume(): void {
    this.paused = false;
    this.resumes++;
  }
  end(): void {
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }

  /** Every answer written so far, decoded from the frames, as the first byte of each (its tag). */
  answers(): number[] {
    const decoder = new FrameDecoder();
    const out: number[] = [];
    for (const w of this.writes) for (const m of decoder.push(w)) out.push(tagOf(m));
    expect(decoder.bufferedBytes).toBe(0);
    return out;
  }

  /** The answers of each write, to check batching. */
  batches(): number[][] {
    return this.writes.map((w) => new FrameDecoder().push(w).map(tagOf));
  }
}

/** Queries and answers are tagged by a 16-bit number in their first two bytes. */
function tagged(tag: number, length = 12): Uint8Array {
  const m = new Uint8Array(length);
  m[0] = tag >> 8;
  m[1] = tag & 0xff;
  return m;
}

function tagOf(m: Uint8Array): number {
  return (m[0] << 8) | m[1];
}

function frames(...tags: number[]): Uint8Array {
  return encodeFrames(tags.map((t) => tagged(t)));
}

interface Call {
  tag: number;
  answer(tag?: number): void;
  drop(): void;
  fail(error: unknown): void;
}

/** A process function whose answers the test releases one by one. */
function controlled(): { process: StreamSessionOptions["process"]; calls: Call[] } {
  const calls: Call[] = [];
  const process = (message: Uint8Array) =>
    new Promise<Framed | null>((resolve, reject) => {
      const tag = tagOf(message);
      calls.push({
        tag,
        answer: (t = tag) => resolve({ wire: tagged(t, 20) }),
        drop: () => resolve(null),
        fail: reject,
      });
    });
  return { process, calls };
}

function callFor(calls: Call[], tag: number): Call {
  const call = calls.find((c) => c.tag === tag);
  if (!call) throw new Error(`no call for tag ${tag}`);
  return call;
}

/** Lets promise callbacks and the session's microtask flush run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setTimeout(r, 0));
}

const sessions: StreamSession[] = [];

/** Creates a session that is torn down after the test even if the test fails. */
function open(
  options: Partial<StreamSessionOptions> & Pick<StreamSessionOptions, "process">,
): { session: StreamSession; transport: FakeTransport; closes: [CloseReason, unknown][] } {
  const transport = new FakeTransport();
  const closes: [CloseReason, unknown][] = [];
  const session = new StreamSession(transport, {
    onClose: (reason, error) => closes.push([reason, error]),
    ...options,
  });
  sessions.push(session);
  return { session, transport, closes };
}

afterEach(() => {
  for (const s of sessions.splice(0)) s.transportClosed();
  vi.useRealTimers();
});

describe("StreamSession answering", () => {
  it("writes answers as they complete, out of order", async () => {
    const { process, calls } = controlled();
    const { session, transport } = open({ process });
    session.receive(frames(1, 2, 3));
    expect(calls.map((c) => c.tag)).toEqual([1, 2, 3]);
    expect(session.inFlight).toBe(3);

    callFor(calls, 3).answer();
    await settle();
    expect(transport.answers()).toEqual([3]);
    callFor(calls, 1).answer();
    await settle();
    expect(transport.answers()).toEqual([3, 1]);
    callFor(calls, 2).answer();
    await settle();
    expect(transport.answers()).toEqual([3, 1, 2]);
    expect(transport.writes).toHaveLength(3);
    expect(session.inFlight).toBe(0);
    expect(session.closed).toBe(false);
  });

  it("dispatches every query without waiting for earlier answers", () => {
    const { process, calls } = controlled();
    const { session } = open({ process });
    session.receive(frames(1));
    session.receive(frames(2, 3).subarray(0, 5));
    session.receive(frames(2, 3).subarray(5));
    expect(calls.map((c) => c.tag)).toEqual([1, 2, 3]);
  });

  it("sends answers that complete in the same tick in one write", async () => {
    const { process, calls } = controlled();
    const { session, transport } = open({ process });
    session.receive(frames(1, 2, 3, 4));
    callFor(calls, 2).answer();
    callFor(calls, 4).answer();
    callFor(calls, 1).answer();
    await settle();
    expect(transport.batches()).toEqual([[2, 4, 1]]);
    callFor(calls, 3).answer();
    await settle();
    expect(transport.batches()).toEqual([[2, 4, 1], [3]]);
  });

  it("writes answers from the process unchanged", async () => {
    const answer = Uint8Array.from({ length: 300 }, (_, i) => i & 0xff);
    const { session, transport } = open({ process: () => Promise.resolve({ wire: answer }) });
    session.receive(frames(1));
    await settle();
    expect(transport.writes).toHaveLength(1);
    expect(new FrameDecoder().push(transport.writes[0])).toEqual([answer]);
  });
});

describe("StreamSession backpressure", () => {
  it("pauses at maxInFlight and resumes when a slot frees", async () => {
    const { process, calls } = controlled();
    const { session, transport } = open({ process, maxInFlight: 2 });
    session.receive(frames(1, 2));
    expect(transport.paused).toBe(true);
    session.receive(frames(3));
    expect(calls).toHaveLength(2);
    expect(session.inFlight).toBe(3);

    callFor(calls, 1).answer();
    await settle();
    expect(calls.map((c) => c.tag)).toEqual([1, 2, 3]);
    expect(transport.paused).toBe(true); // 2 and 3 fill both slots again
    callFor(calls, 2).answer();
    await settle();
    expect(transport.paused).toBe(false);
    expect(transport.resumes).toBe(1);
    callFor(calls, 3).answer();
    await settle();
    expect(transport.answers()).toEqual([1, 2, 3]);
  });

  it("answers every frame of a 300-frame chunk with a cap of 128", async () => {
    const seen: number[] = [];
    let peak = 0;
    let running = 0;
    const { session, transport } = open({
      maxInFlight: 128,
      process: async (m) => {
        running++;
        peak = Math.max(peak, running);
        seen.push(tagOf(m));
        await new Promise((r) => setTimeout(r, 1));
        running--;
        return { wire: tagged(tagOf(m), 20) };
      },
    });
    const tags = Array.from({ length: 300 }, (_, i) => i + 1);
    session.receive(frames(...tags));
    expect(transport.paused).toBe(true);
    expect(seen).toHaveLength(128);
    for (let i = 0; i < 50 && transport.answers().length < 300; i++) await settle();
    expect(transport.answers().sort((a, b) => a - b)).toEqual(tags);
    expect(seen).toEqual(tags); // dispatched in arrival order
    expect(peak).toBeLessThanOrEqual(128);
    expect(transport.paused).toBe(false);
    expect(session.inFlight).toBe(0);
  });

  it("pauses while the transport's write buffer is above the high-water mark", async () => {
    const { process, calls } = controlled();
    const { session, transport } = open({ process, writeHighWaterMark: 1000 });
    transport.writableLength = 1001;
    session.receive(frames(1));
    expect(transport.paused).toBe(true);
    transport.writableLength = 1000;
    session.writable();
    expect(transport.paused).toBe(false);
    transport.writableLength = 5000;
    callFor(calls, 1).answer();
    await settle();
    expect(transport.paused).toBe(true); // checked again after each write
    transport.writableLength = 0;
    session.writable();
    expect(transport.paused).toBe(false);
  });
});

describe("StreamSession timeouts", () => {
  it("closes an idle connection with reason idle", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { process } = controlled();
    const { session, transport, closes } = open({
      process,
      idleTimeoutMs: 50,
      now: () => Date.now(),
    });
    await vi.advanceTimersByTimeAsync(40);
    expect(session.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(20);
    expect(session.closed).toBe(true);
    expect(closes).toEqual([["idle", undefined]]);
    expect(transport.ended).toBe(true);
    expect(transport.destroyed).toBe(false);
  });

  it("counts received bytes as activity", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { session } = open({
      process: (m) => Promise.resolve({ wire: m }),
      idleTimeoutMs: 50,
      now: () => Date.now(),
    });
    for (let i = 0; i < 5; i++) {
      await vi.advanceTimersByTimeAsync(40);
      session.receive(frames(i + 1));
    }
    expect(session.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(60);
    expect(session.closed).toBe(true);
  });

  it("does not close for idleness while a query is in flight", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { process, calls } = controlled();
    const { session, transport, closes } = open({
      process,
      idleTimeoutMs: 50,
      now: () => Date.now(),
    });
    session.receive(frames(1));
    await vi.advanceTimersByTimeAsync(500);
    expect(session.closed).toBe(false);
    callFor(calls, 1).answer();
    await vi.advanceTimersByTimeAsync(1);
    expect(transport.answers()).toEqual([1]);
    expect(session.closed).toBe(false);
    await vi.advanceTimersByTimeAsync(100);
    expect(closes).toEqual([["idle", undefined]]);
  });

  it("closes a connection whose half frame stalls (frame-timeout)", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { session, transport, closes } = open({
      process: (m) => Promise.resolve({ wire: m }),
      idleTimeoutMs: 10_000,
      frameTimeoutMs: 50,
      now: () => Date.now(),
    });
    session.receive(frames(1).subarray(0, 5));
    await vi.advanceTimersByTimeAsync(60);
    expect(closes).toEqual([["frame-timeout", undefined]]);
    expect(transport.destroyed).toBe(true);
  });

  it("times out a half frame that starts long after the session began", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { session, transport, closes } = open({
      process: (m) => Promise.resolve({ wire: m }),
      idleTimeoutMs: 10_000,
      frameTimeoutMs: 50,
      now: () => Date.now(),
    });
    session.receive(frames(1));
    await vi.advanceTimersByTimeAsync(200);
    expect(transport.answers()).toEqual([1]);
    session.receive(frames(2).subarray(0, 3));
    await vi.advanceTimersByTimeAsync(100);
    expect(closes).toEqual([["frame-timeout", undefined]]);
  });

  it("does not reset the frame timer when more bytes of the same frame trickle in", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { session, closes } = open({
      process: (m) => Promise.resolve({ wire: m }),
      idleTimeoutMs: 10_000,
      frameTimeoutMs: 100,
      now: () => Date.now(),
    });
    const slow = frames(1);
    for (let i = 0; i < 6; i++) {
      session.receive(slow.subarray(i, i + 1));
      await vi.advanceTimersByTimeAsync(30);
    }
    expect(closes).toEqual([["frame-timeout", undefined]]);
  });

  it("keeps a connection whose frames each arrive within the frame timeout", async () => {
    vi.useFakeTimers({ now: 10_000 });
    const { session, transport } = open({
      process: (m) => Promise.resolve({ wire: m }),
      idleTimeoutMs: 10_000,
      frameTimeoutMs: 100,
      now: () => Date.now(),
    });
    const stream = frames(1, 2, 3, 4, 5);
    for (let i = 0; i < stream.length; i += 7) {
      session.receive(stream.subarray(i, i + 7));
      await vi.advanceTimersByTimeAsync(30);
    }
    expect(session.closed).toBe(false);
    expect(transport.answers()).toEqual([1, 2, 3, 4, 5]);
  });

  it("times out a half frame even when the clock started at zero", async () => {
    vi.useFakeTimers({ now: 0 });
    const { session, closes } = open({
      process: (m) => Promise.resolve({ wire: m }),
      idleTimeoutMs: 10_000,
      frameTimeoutMs: 50,
      now: () => Date.now(),
    });
    session.receive(frames(1).subarray(0, 1));
    await vi.advanceTimersByTimeAsync(100);
    expect(closes).toEqual([["frame-timeout", undefined]]);
  });
});

describe("StreamSession closing", () => {
  it("destroys the connection on a zero-length frame", () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process });
    session.receive(Uint8Array.from([0, 0]));
    expect(session.closed).toBe(true);
    expect(transport.destroyed).toBe(true);
    expect(closes[0][0]).toBe("frame-error");
    expect((closes[0][1] as Error).name).toBe("FrameError");
    session.receive(frames(1));
    expect(calls).toHaveLength(0);
  });

  it("destroys the connection on a frame over maxFrameSize, answering nothing after it", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process, maxFrameSize: 100 });
    session.receive(concat(frames(1), Uint8Array.from([0, 101])));
    expect(closes.map((c) => c[0])).toEqual(["frame-error"]);
    expect(transport.destroyed).toBe(true);
    calls.forEach((c) => c.answer());
    await settle();
    expect(transport.writes).toHaveLength(0);
  });

  it("ends the connection when the process returns null", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process });
    session.receive(frames(1, 2));
    callFor(calls, 1).drop();
    await settle();
    expect(closes).toEqual([["dropped", undefined]]);
    expect(transport.ended).toBe(true);
    expect(transport.destroyed).toBe(false);
    callFor(calls, 2).answer();
    await settle();
    expect(transport.writes).toHaveLength(0);
  });

  it("destroys the connection when the process rejects", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process });
    session.receive(frames(1));
    const boom = new Error("boom");
    callFor(calls, 1).fail(boom);
    await settle();
    expect(closes).toEqual([["dropped", boom]]);
    expect(transport.destroyed).toBe(true);
  });

  it("destroys the connection when the process throws synchronously", async () => {
    const boom = new Error("sync boom");
    const { session, closes } = open({
      process: () => {
        throw boom;
      },
    });
    session.receive(frames(1));
    await settle();
    expect(closes).toEqual([["dropped", boom]]);
  });

  it("closes with write-error when an answer cannot be framed", async () => {
    const { session, transport, closes } = open({
      process: () => Promise.resolve({ wire: new Uint8Array(0) }),
    });
    session.receive(frames(1));
    await settle();
    expect(closes[0][0]).toBe("write-error");
    expect(transport.destroyed).toBe(true);
  });

  it("answers what is in flight after the peer ends, then ends", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process });
    session.receive(frames(1, 2));
    session.peerEnded();
    session.receive(frames(3)); // nothing is read after the peer's end
    expect(calls).toHaveLength(2);
    callFor(calls, 2).answer();
    await settle();
    expect(session.closed).toBe(false);
    callFor(calls, 1).answer();
    await settle();
    expect(transport.answers()).toEqual([2, 1]);
    expect(closes).toEqual([["peer-closed", undefined]]);
    expect(transport.ended).toBe(true);
    expect(transport.destroyed).toBe(false);
  });

  it("answers backlogged queries after the peer ends", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process, maxInFlight: 1 });
    session.receive(frames(1, 2, 3));
    session.peerEnded();
    for (const tag of [1, 2, 3]) {
      callFor(calls, tag).answer();
      await settle();
    }
    expect(transport.answers()).toEqual([1, 2, 3]);
    expect(closes.map((c) => c[0])).toEqual(["peer-closed"]);
  });

  it("ends at once when the peer ends with nothing in flight", () => {
    const { session, transport, closes } = open({ process: controlled().process });
    session.peerEnded();
    expect(closes).toEqual([["peer-closed", undefined]]);
    expect(transport.ended).toBe(true);
  });

  it("shutdown(grace) stops reading, answers what is in flight, then ends", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process });
    session.receive(frames(1, 2));
    const done = session.shutdown(5_000);
    expect(transport.paused).toBe(true);
    session.receive(frames(3));
    expect(calls).toHaveLength(2);
    callFor(calls, 1).answer();
    callFor(calls, 2).answer();
    await done;
    expect(transport.answers()).toEqual([1, 2]);
    expect(closes).toEqual([["shutdown", undefined]]);
    expect(transport.ended).toBe(true);
    expect(transport.destroyed).toBe(false);
  });

  it("shutdown force-closes after the grace period", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process });
    session.receive(frames(1));
    const started = performance.now();
    await session.shutdown(50);
    expect(performance.now() - started).toBeLessThan(5_000); // resolved, not hung
    expect(closes).toEqual([["shutdown", undefined]]);
    expect(transport.destroyed).toBe(true);
    callFor(calls, 1).answer();
    await settle();
    expect(transport.writes).toHaveLength(0);
  });

  it("shutdown of an idle or closed session resolves at once", async () => {
    const { session, closes } = open({ process: controlled().process });
    await session.shutdown(10_000);
    expect(closes).toEqual([["shutdown", undefined]]);
    await session.shutdown(10_000);
    expect(closes).toHaveLength(1);
  });

  it("forgets everything when the transport closes under it", async () => {
    const { process, calls } = controlled();
    const { session, transport, closes } = open({ process });
    session.receive(frames(1));
    session.transportClosed();
    expect(closes).toEqual([["peer-closed", undefined]]);
    expect(session.closed).toBe(true);
    callFor(calls, 1).answer();
    await settle();
    expect(transport.writes).toHaveLength(0);
  });

  it("calls onClose exactly once", async () => {
    const { process, calls } = controlled();
    const { session, closes } = open({ process });
    session.receive(frames(1));
    session.receive(Uint8Array.from([0, 0]));
    session.peerEnded();
    session.transportClosed();
    await session.shutdown(10);
    callFor(calls, 1).answer();
    await settle();
    expect(closes.map((c) => c[0])).toEqual(["frame-error"]);
  });
});

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
