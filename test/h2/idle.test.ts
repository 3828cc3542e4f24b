/**
 * The idle timer on a fake clock: the connection drains once it has stayed idle for the
 * timeout, a stream that comes and goes costs no timer, and a busy connection is let be.
 */
import { describe, expect, it } from "vitest";
import { IdleTimer } from "../../src/h2/idle.ts";
import { FakeClock } from "../support/fake_clock.ts";

function setUp() {
  const clock = new FakeClock();
  const state = { idle: true, drained: 0 };
  const timer = new IdleTimer(1_000, () => state.idle, () => state.drained++, clock);
  return { clock, state, timer };
}

describe("IdleTimer", () => {
  it("calls back once the connection has stayed idle for the timeout, not before", () => {
    const { clock, state, timer } = setUp();
    timer.start();
    clock.advance(999);
    expect(state.drained).toBe(0);
    clock.advance(1);
    expect(state.drained).toBe(1);
    expect(clock.pending).toBe(0);
  });

  it("counts from when it last went idle, on the one timer armed first", () => {
    const { clock, state, timer } = setUp();
    timer.start();
    clock.advance(600);
    timer.busy(); // a stream opened...
    timer.start(); // ...and ended
    expect(clock.pending).toBe(1);
    clock.advance(400); // the timer fires, finds 400 ms of idleness, waits the rest
    expect(state.drained).toBe(0);
    expect(clock.delays).toEqual([600]);
    clock.advance(600);
    expect(state.drained).toBe(1);
  });

  it("lets a busy connection be, and arms nothing more until it goes idle", () => {
    const { clock, state, timer } = setUp();
    timer.start();
    timer.busy();
    state.idle = false;
    clock.advance(5_000);
    expect(state.drained).toBe(0);
    expect(clock.pending).toBe(0);
    state.idle = true;
    timer.start();
    clock.advance(1_000);
    expect(state.drained).toBe(1);
  });

  it("stops for good", () => {
    const { clock, state, timer } = setUp();
    timer.start();
    timer.stop();
    timer.start();
    clock.advance(5_000);
    expect([state.drained, clock.pending, timer.armed]).toEqual([0, 0, false]);
  });
});
