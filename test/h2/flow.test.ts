/**
 * HTTP/2 flow control both ways: the windows we grant (the connection's refilled at half, each
 * stream's never) and the windows the peer grants (a frame takes the smaller, SETTINGS move open
 * streams by the difference, WINDOW_UPDATE opens them within 2^31-1).
 */
import { describe, expect, it } from "vitest";
import { CONNECTION_WINDOW, type FlowStream, InFlow, OutFlow } from "../../src/h2/flow.ts";
import { Code, ConnectionError, DEFAULT_WINDOW, MAX_WINDOW } from "../../src/h2/frames.ts";

const stream = (sendWindow = 0): FlowStream => ({ sendWindow, received: 0 });

describe("InFlow", () => {
  it("opens the connection window from the default to CONNECTION_WINDOW at start", () => {
    expect(new InFlow(DEFAULT_WINDOW).opening).toBe(CONNECTION_WINDOW - DEFAULT_WINDOW);
  });

  it("asks for a WINDOW_UPDATE of what was used once half the connection window is", () => {
    const inflow = new InFlow(DEFAULT_WINDOW);
    const half = CONNECTION_WINDOW / 2;
    expect(inflow.take(half - 10)).toBe(0);
    expect(inflow.take(9)).toBe(0);
    expect(inflow.take(1)).toBe(half);
    expect(inflow.take(100)).toBe(0); // counted afresh after the refill
  });

  it("throws FLOW_CONTROL_ERROR for DATA past the connection window", () => {
    const inflow = new InFlow(DEFAULT_WINDOW);
    let caught: unknown;
    try {
      // Past half nothing is refilled within one call: the whole window, then one more octet.
      inflow.take(CONNECTION_WINDOW + 1);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConnectionError);
    expect((caught as ConnectionError).code).toBe(Code.FlowControlError);
  });

  it("holds each stream to the window we advertised, padding included, never refilled", () => {
    const inflow = new InFlow(100);
    const s = stream();
    expect(inflow.takeStream(s, 60)).toBe(true);
    expect(inflow.takeStream(s, 40)).toBe(true); // exactly the window
    expect(inflow.takeStream(s, 1)).toBe(false);
    expect(s.received).toBe(101);
  });
});

describe("OutFlow", () => {
  it("gives a new stream the peer's initial window and lets a frame take the smallest limit", () => {
    const outflow = new OutFlow();
    const s = stream();
    outflow.open(s);
    expect(s.sendWindow).toBe(DEFAULT_WINDOW);
    expect(outflow.room(s, 16_384)).toBe(16_384); // the frame size
    outflow.spend(s, 60_000);
    expect(outflow.room(s, 16_384)).toBe(DEFAULT_WINDOW - 60_000); // both windows alike
    expect(outflow.connection).toBe(DEFAULT_WINDOW - 60_000);
  });

  it("shares the connection window between streams", () => {
    const outflow = new OutFlow();
    const [a, b] = [stream(), stream()];
    outflow.open(a);
    outflow.open(b);
    outflow.spend(a, DEFAULT_WINDOW);
    expect(outflow.room(b, 16_384)).toBe(0);
    outflow.growConnection(10);
    expect(outflow.room(b, 16_384)).toBe(10);
  });

  it("moves open streams by the difference of a new initial window, below zero too", () => {
    const outflow = new OutFlow();
    const [a, b] = [stream(), stream()];
    outflow.open(a);
    outflow.open(b);
    outflow.spend(a, 1_000);
    outflow.setInitial(500, [a, b]);
    expect([a.sendWindow, b.sendWindow]).toEqual([500 - 1_000, 500]);
    expect(outflow.initial).toBe(500);
    outflow.setInitial(2_000, [a, b]);
    expect([a.sendWindow, b.sendWindow]).toEqual([2_000 - 1_000, 2_000]);
  });

  it("throws FLOW_CONTROL_ERROR when a new initial window takes a stream past 2^31-1", () => {
    const outflow = new OutFlow();
    const s = stream();
    outflow.open(s);
    expect(outflow.growStream(s, MAX_WINDOW - DEFAULT_WINDOW)).toBe(Code.NoError);
    expect(() => outflow.setInitial(DEFAULT_WINDOW + 1, [s])).toThrow(ConnectionError);
  });

  const connectionCases: [string, number, number][] = [
    ["an increment of 0", 0, Code.ProtocolError],
    ["a window past 2^31-1", MAX_WINDOW, Code.FlowControlError],
  ];
  for (const [what, increment, code] of connectionCases) {
    it(`throws for a connection WINDOW_UPDATE of ${what}`, () => {
      const outflow = new OutFlow();
      let caught: unknown;
      try {
        outflow.growConnection(increment);
      } catch (error) {
        caught = error;
      }
      expect((caught as ConnectionError).code).toBe(code);
    });
  }

  const streamCases: [string, number, number][] = [
    ["an increment of 0", 0, Code.ProtocolError],
    ["a window past 2^31-1", MAX_WINDOW, Code.FlowControlError],
    ["a window up to 2^31-1", MAX_WINDOW - DEFAULT_WINDOW, Code.NoError],
  ];
  for (const [what, increment, code] of streamCases) {
    it(`answers a stream WINDOW_UPDATE of ${what} with code ${code}`, () => {
      const outflow = new OutFlow();
      const s = stream();
      outflow.open(s);
      expect(outflow.growStream(s, increment)).toBe(code);
      expect(s.sendWindow).toBe(code === Code.NoError ? MAX_WINDOW : DEFAULT_WINDOW);
    });
  }
});
