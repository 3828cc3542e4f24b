/**
 * The HTTP/2 outbox's bounds on a socket whose writes can be held: the high-water mark (bytes
 * queued or in flight), the write deadline, and the final flush on close, which must not lose
 * a GOAWAY queued while a write is in flight.
 */
import { describe, expect, it } from "vitest";
import { FrameOutbox } from "../../src/h2/outbox.ts";
import { FrameTap, TestSocket } from "../support/h2_pipe.ts";

const PING = 6, GOAWAY = 7;
const tick = () => new Promise((r) => setTimeout(r, 0));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function setUp(options: { highWaterMark?: number; writeTimeoutMs?: number } = {}) {
  const pipe = new TestSocket();
  const events: string[] = [];
  const errors: Error[] = [];
  const outbox = new FrameOutbox({
    onError: (e) => errors.push(e),
    onDrained: () => events.push("drained"),
    onFull: () => events.push("full"),
    ...options,
  });
  outbox.attach(pipe.socket());
  return { pipe, outbox, events, errors, tap: new FrameTap(pipe.outgoing) };
}

const ping = (outbox: FrameOutbox, n: number) =>
  outbox.emit(PING, 0, 0, Uint8Array.of(n, 0, 0, 0, 0, 0, 0, 0));

describe("FrameOutbox", () => {
  it("says it is full once bytes queued or in flight pass the high-water mark, and drained once written", async () => {
    const { pipe, outbox, events } = setUp({ highWaterMark: 40 });
    pipe.hold();
    ping(outbox, 1); // 17 bytes
    await tick(); // now in flight
    expect([outbox.queued, pipe.heldWrites]).toEqual([17, 1]);
    ping(outbox, 2);
    expect(events).toEqual([]);
    ping(outbox, 3); // 51 bytes: over
    ping(outbox, 4);
    expect(events).toEqual(["full"]);
    expect(outbox.queued).toBe(68);
    pipe.release();
    await tick();
    await tick();
    expect(events).toEqual(["full", "drained"]);
    expect([outbox.queued, outbox.busy]).toEqual([0, false]);
    // Full again only after the next rise.
    pipe.hold();
    for (let i = 0; i < 3; i++) ping(outbox, i);
    expect(events).toEqual(["full", "drained", "full"]);
    pipe.release();
  });

  it("fails the connection when a write does not finish within the write deadline", async () => {
    const { pipe, outbox, errors } = setUp({ writeTimeoutMs: 40 });
    pipe.hold();
    ping(outbox, 1);
    await sleep(20);
    expect(errors).toEqual([]);
    await sleep(60);
    expect(errors.map((e) => e.message)).toEqual(["write not finished after 40 ms"]);
  });

  it("lets writes that each finish in time run past the deadline's length", async () => {
    const { pipe, outbox, errors, tap } = setUp({ writeTimeoutMs: 40 });
    for (let i = 0; i < 8; i++) {
      pipe.hold();
      ping(outbox, i);
      await sleep(15);
      pipe.release();
    }
    await sleep(50);
    expect(errors).toEqual([]);
    for (let i = 0; i < 8; i++) {
      expect((await tap.expect((f) => f.type === PING, `PING ${i}`)).payload[0]).toBe(i);
    }
  });

  it("writes a GOAWAY queued while a write is in flight before closing (no lost GOAWAY)", async () => {
    const { pipe, outbox, tap } = setUp();
    pipe.hold();
    ping(outbox, 1);
    await tick(); // the PING is in flight
    expect(pipe.heldWrites).toBe(1);
    outbox.emit(GOAWAY, 0, 0, new Uint8Array(8));
    let closed = false;
    outbox.close(true, () => {
      closed = true;
      pipe.socket().close();
    });
    await tick();
    expect(closed).toBe(false); // waits for the write in flight
    pipe.release();
    expect((await tap.expect((f) => f.type === PING, "the PING")).payload[0]).toBe(1);
    await tap.expect((f) => f.type === GOAWAY, "the GOAWAY after it");
    expect(await tap.ended()).toBe(true);
    expect(closed).toBe(true);
  });

  it("gives up the final flush after the write deadline when the peer never reads", async () => {
    const { pipe, outbox, errors } = setUp({ writeTimeoutMs: 40 });
    pipe.hold();
    ping(outbox, 1);
    await tick();
    outbox.emit(GOAWAY, 0, 0, new Uint8Array(8));
    let closed = false;
    outbox.close(true, () => (closed = true));
    await sleep(20);
    expect(closed).toBe(false);
    await sleep(60);
    expect(closed).toBe(true);
    expect(errors).toEqual([]); // closing: not reported as a failure
  });

  it("closes at once without a flush, or after a failed write, and writes nothing more", async () => {
    const a = setUp();
    a.pipe.hold();
    ping(a.outbox, 1);
    await tick();
    ping(a.outbox, 2);
    let done = 0;
    a.outbox.close(false, () => done++);
    expect(done).toBe(1);
    a.pipe.release();
    await tick();
    expect(a.pipe.bytesWritten).toBe(17); // the second PING was dropped

    const b = setUp();
    b.pipe.socket().close(); // writes now fail
    ping(b.outbox, 1);
    await tick();
    expect(b.errors.map((e) => e.message)).toEqual(["closed"]);
    b.outbox.emit(GOAWAY, 0, 0, new Uint8Array(8));
    b.outbox.close(true, () => done++);
    expect(done).toBe(2);
  });
});
