/**
 * The read deadlines on a fake clock: what ends when (a late SETTINGS or header block ends the
 * connection, a late stream or a body parked without progress is reset, and a connection left
 * with nothing else is told), one timer for them all, and none while nothing is pending.
 */
import { describe, expect, it } from "vitest";
import { type DeadlineActions, ReadDeadlines } from "../../src/h2/deadlines.ts";
import { Code } from "../../src/h2/frames.ts";
import { ParkedBodies } from "../../src/h2/parked.ts";
import { FakeClock } from "../support/fake_clock.ts";

interface Stream {
  readonly id: number;
  readBy: number;
  pending: Uint8Array | undefined;
  stalledSince: number;
}

const stream = (id: number): Stream => ({ id, readBy: 0, pending: undefined, stalledSince: 0 });

/** Deadlines of 1 000 ms on a fake clock, with what they do recorded. */
function setUp(timeoutMs = 1_000) {
  const clock = new FakeClock();
  const parked = new ParkedBodies<Stream>(1_000);
  const open = new Set<Stream>();
  const done: string[] = [];
  const actions: DeadlineActions<Stream> = {
    isOpen: (s) => open.has(s),
    fail: (code, why) => {
      done.push(`fail ${code}: ${why}`);
      deadlines.stop(); // the connection ends
    },
    expire: (s, why) => {
      open.delete(s);
      done.push(`expire ${s.id}: ${why}`);
    },
    expired: () => done.push("expired"),
  };
  const deadlines = new ReadDeadlines({ timeoutMs, peer: "client", parked, actions, clock });
  const opened = (id: number) => {
    const s = stream(id);
    open.add(s);
    return s;
  };
  return { clock, parked, deadlines, done, opened };
}

describe("ReadDeadlines", () => {
  it("ends the connection (GOAWAY NO_ERROR) when the peer's SETTINGS are late, and not once they came", () => {
    const late = setUp();
    late.deadlines.expectSettings();
    late.clock.advance(999);
    expect(late.done).toEqual([]);
    late.clock.advance(1);
    expect(late.done).toEqual([`fail ${Code.NoError}: no SETTINGS from the client in 1000 ms`]);

    const onTime = setUp();
    onTime.deadlines.expectSettings();
    onTime.clock.advance(500);
    onTime.deadlines.settingsArrived();
    onTime.clock.advance(5_000);
    expect(onTime.done).toEqual([]);
    expect(onTime.clock.pending).toBe(0);
  });

  it("ends the connection (ENHANCE_YOUR_CALM) when a header block is left unfinished", () => {
    const { clock, deadlines, done } = setUp();
    deadlines.headerBlockBegan(7);
    clock.advance(1_000);
    expect(done).toEqual([
      `fail ${Code.EnhanceYourCalm}: header block on stream 7 unfinished after 1000 ms`,
    ]);
  });

  it("lets a header block that ended be", () => {
    const { clock, deadlines, done } = setUp();
    deadlines.headerBlockBegan(7);
    deadlines.headerBlockEnded();
    clock.advance(2_000);
    expect(done).toEqual([]);
  });

  it("resets a stream whose rest is late, lets one whose rest arrived be, and says streams expired", () => {
    const { clock, deadlines, done, opened } = setUp();
    const [a, b] = [opened(1), opened(3)];
    deadlines.awaitRest(a);
    clock.advance(100);
    deadlines.awaitRest(b);
    expect(deadlines.unfinished).toBe(2);
    clock.advance(500);
    deadlines.restArrived(b);
    clock.advance(400);
    expect(done).toEqual(["expire 1: stream 1 unfinished by the client after 1000 ms", "expired"]);
    expect([a.readBy, b.readBy, deadlines.unfinished]).toEqual([0, 0, 0]);
    clock.advance(5_000);
    expect(done.length).toBe(2);
  });

  it("passes over a stream that is no longer open", () => {
    const { clock, deadlines, done } = setUp();
    deadlines.awaitRest(stream(1)); // never opened, as if forgotten since
    clock.advance(1_000);
    expect(done).toEqual([]);
  });

  it("resets a body parked without progress for the deadline, and restarts the wait on progress", () => {
    const { clock, parked, deadlines, done, opened } = setUp();
    const [a, b] = [opened(1), opened(3)];
    parked.park(a, new Uint8Array(10), clock.now());
    parked.park(b, new Uint8Array(10), clock.now());
    deadlines.arm();
    clock.advance(600);
    // b makes progress: resent in part and parked again with a new start.
    parked.resume(b);
    parked.park(b, new Uint8Array(5), clock.now());
    clock.advance(400);
    expect(done).toEqual([
      "expire 1: stream 1: no room in the client's flow-control window for 1000 ms",
      "expired",
    ]);
    expect([a.pending, parked.size, parked.bytes]).toEqual([undefined, 1, 5]);
    clock.advance(600);
    expect(done.slice(2)).toEqual([
      "expire 3: stream 3: no room in the client's flow-control window for 1000 ms",
      "expired",
    ]);
  });

  it("serves every deadline with one timer, and arms none while nothing is pending", () => {
    const { clock, deadlines, opened, parked } = setUp();
    deadlines.arm();
    expect(clock.pending).toBe(0);
    deadlines.expectSettings();
    for (let i = 0; i < 50; i++) deadlines.awaitRest(opened(2 * i + 1));
    parked.park(opened(101), new Uint8Array(1), clock.now());
    deadlines.arm();
    deadlines.headerBlockBegan(103);
    expect(clock.pending).toBe(1);
  });

  it("arms the timer for the earliest deadline, then for the next when it fires", () => {
    const { clock, deadlines, done, opened } = setUp();
    const [a, b] = [opened(1), opened(3)];
    deadlines.awaitRest(a);
    clock.advance(300);
    deadlines.awaitRest(b);
    expect(clock.delays).toEqual([700]);
    clock.advance(700);
    expect(done[0]).toMatch(/^expire 1:/);
    expect(clock.delays).toEqual([300]);
  });

  it("sets no deadline at all with a timeout of 0", () => {
    const { clock, deadlines, opened, parked } = setUp(0);
    const s = opened(1);
    deadlines.expectSettings();
    deadlines.headerBlockBegan(1);
    deadlines.awaitRest(s);
    parked.park(opened(3), new Uint8Array(1), clock.now());
    deadlines.arm();
    expect([s.readBy, clock.pending]).toEqual([0, 0]);
  });

  it("stops for good", () => {
    const { clock, deadlines, done, opened } = setUp();
    deadlines.awaitRest(opened(1));
    deadlines.stop();
    deadlines.awaitRest(opened(3));
    clock.advance(5_000);
    expect([done, clock.pending, deadlines.armed]).toEqual([[], 0, false]);
  });
});
