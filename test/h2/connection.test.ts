/**
 * The HTTP/2 connection core through a minimal side, on an in-memory socket and a fake clock:
 * bodies that wait for the peer's window (sent as window updates and SETTINGS open it, capped
 * in bytes, reset after the read deadline without progress), the other read deadlines (the
 * peer's SETTINGS, a header block, a stream's rest), the idle timer, the timers it keeps, and
 * none for a stream that opens and ends at once.
 */
import { describe, expect, it } from "vitest";
import { uint32Bytes } from "../../src/bytes/uint.ts";
import { H2Core } from "../../src/h2/connection.ts";
import type { H2Error } from "../../src/h2/error.ts";
import { Code, Flag, FrameType, Setting } from "../../src/h2/frames.ts";
import { encodeSettings } from "../../src/h2/settings.ts";
import type { H2CoreOptions, H2Stream } from "../../src/h2/side.ts";
import { FakeClock } from "../support/fake_clock.ts";
import { encodeFrame, type Frame, FrameTap, TestSocket } from "../support/h2_pipe.ts";

const settle = () => new Promise((resolve) => setTimeout(resolve, 5));
const codeOf = (f: Frame) =>
  new DataView(f.payload.buffer).getUint32(f.type === FrameType.Goaway ? 4 : 0);

/** A side that opens streams and sends bodies when told, and records what the core tells it. */
class TestSide extends H2Core<H2Stream> {
  readonly events: string[] = [];

  constructor(readonly pipe: TestSocket, options: Partial<H2CoreOptions>) {
    super({
      side: "client",
      settings: [],
      maxHeaderBytes: 16_384,
      maxHeaderListSize: 16_384,
      idleTimeoutMs: 30_000,
      readTimeoutMs: 1_000,
      maxParkedBytes: 100,
      maxBufferedBytes: 1_000_000,
      maxDataFrames: 1_000,
      resetBudget: [100, 10],
      writeTimeoutMs: 0,
      writeHighWaterMark: 1 << 20,
      readBuffer: [1_024, 1_024],
      ...options,
    });
    this.start(pipe.socket("push"));
  }

  /** Opens stream `id`. */
  stream(id: number): H2Stream {
    const stream: H2Stream = {
      id,
      sendWindow: 0,
      pending: undefined,
      received: 0,
      readBy: 0,
      stalledSince: 0,
      dataFrames: 0,
      buffer: undefined,
      buffered: 0,
    };
    this.open(stream);
    return stream;
  }

  /** Sends `length` octets of body on `stream`. */
  body(stream: H2Stream, length: number): void {
    stream.pending = new Uint8Array(length);
    this.sendBody(stream);
  }

  awaitRestOf(stream: H2Stream): void {
    this.awaitRest(stream);
  }

  restOf(stream: H2Stream): void {
    this.restArrived(stream);
  }

  get openIds(): number[] {
    return [...this.streams.keys()];
  }

  protected onHeaderField(): void {}
  protected onHeaderBlock(id: number): void {
    this.events.push(`headers ${id}`);
  }
  protected onData(id: number): void {
    this.events.push(`data ${id}`);
  }
  protected onStreamReset(stream: H2Stream): void {
    this.forget(stream);
  }
  protected onStreamError(stream: H2Stream, error: H2Error): void {
    this.events.push(`error: ${error.message}`);
    this.forget(stream);
  }
  protected onHeaderListTooLarge(): void {}
  protected override onBodySent(stream: H2Stream): void {
    this.events.push(`sent ${stream.id}`);
    this.forget(stream);
  }
  protected onTerminate(reason: H2Error): void {
    this.events.push(`end: ${reason.message}`);
  }
}

/** A side on a fake clock, a tap on what it writes, and the peer's frames to push into it. */
function setUp(options: Partial<H2CoreOptions> = {}) {
  const clock = new FakeClock();
  const pipe = new TestSocket();
  const tap = new FrameTap(pipe.outgoing, true);
  tap.start();
  const side = new TestSide(pipe, { clock, ...options });
  const peer = {
    settings: (...pairs: [number, number][]) =>
      side.receive(encodeFrame(FrameType.Settings, 0, 0, encodeSettings(pairs))),
    windowUpdate: (id: number, increment: number) =>
      side.receive(encodeFrame(FrameType.WindowUpdate, 0, id, uint32Bytes(increment))),
    frame: (type: number, flags: number, id: number, payload?: Uint8Array) =>
      side.receive(encodeFrame(type, flags, id, payload)),
  };
  /** The frames of `type` written so far and not yet taken, taken now. */
  const written = async (type: number) => {
    await settle();
    const out = tap.frames.filter((f) => f.type === type);
    for (const f of out) tap.frames.splice(tap.frames.indexOf(f), 1);
    return out;
  };
  /** The DATA frames written since, as [stream, length, END_STREAM]. */
  const data = async () =>
    (await written(FrameType.Data)).map((f) => [f.id, f.payload.length, f.flags & Flag.EndStream]);
  return { clock, pipe, tap, side, peer, written, data };
}

describe("H2Core: bodies waiting for the peer's window", () => {
  it("sends the rest of a body as WINDOW_UPDATE and SETTINGS open the window, the last frame with END_STREAM", async () => {
    const { side, peer, data } = setUp();
    peer.settings([Setting.InitialWindowSize, 5]);
    const s = side.stream(1);
    side.body(s, 12);
    expect(await data()).toEqual([[1, 5, 0]]);
    peer.windowUpdate(1, 3);
    expect(await data()).toEqual([[1, 3, 0]]);
    peer.settings([Setting.InitialWindowSize, 100]); // the stream's window grows by 95
    expect(await data()).toEqual([[1, 4, Flag.EndStream]]);
    expect(side.events).toEqual(["sent 1"]);
  });

  it("waits for the connection window too, shared by all streams", async () => {
    const { side, peer, data } = setUp();
    peer.settings([Setting.InitialWindowSize, 100_000]);
    side.body(side.stream(1), 65_535);
    side.body(side.stream(3), 10);
    expect((await data()).filter(([id]) => id === 3)).toEqual([]);
    peer.windowUpdate(0, 10);
    expect(await data()).toEqual([[3, 10, Flag.EndStream]]);
  });

  it("resets a body that makes no progress for the read deadline (CANCEL), then drains a connection left with nothing", async () => {
    const { clock, side, peer, written } = setUp();
    peer.settings([Setting.InitialWindowSize, 0]);
    side.body(side.stream(1), 10);
    clock.advance(999);
    expect(await written(FrameType.RstStream)).toEqual([]);
    clock.advance(1);
    const [reset] = await written(FrameType.RstStream);
    expect([reset.id, codeOf(reset)]).toEqual([1, Code.Cancel]);
    expect(side.events).toEqual([
      "error: stream 1: no room in the server's flow-control window for 1000 ms",
      "end: connection drained",
    ]);
    const [goaway] = await written(FrameType.Goaway);
    expect(codeOf(goaway)).toBe(Code.NoError);
  });

  it("gives a body that makes progress a whole deadline from its last progress", async () => {
    const { clock, side, peer, written, data } = setUp();
    peer.settings([Setting.InitialWindowSize, 0]);
    side.stream(3); // another stream, not waiting: the connection is not drained
    side.body(side.stream(1), 10);
    clock.advance(600);
    peer.windowUpdate(1, 4);
    expect(await data()).toEqual([[1, 4, 0]]);
    clock.advance(999);
    expect(await written(FrameType.RstStream)).toEqual([]);
    clock.advance(1);
    expect((await written(FrameType.RstStream)).map((f) => f.id)).toEqual([1]);
    expect(side.openIds).toEqual([3]);
    expect(await written(FrameType.Goaway)).toEqual([]);
  });

  it("resets at once a body that would take the parked bytes over maxParkedBytes, and keeps the others", async () => {
    const { side, peer, written, data } = setUp({ maxParkedBytes: 100 });
    peer.settings([Setting.InitialWindowSize, 0]);
    const a = side.stream(1);
    side.body(a, 60);
    side.body(side.stream(3), 50);
    const [reset] = await written(FrameType.RstStream);
    expect([reset.id, codeOf(reset)]).toEqual([3, Code.Cancel]);
    expect(side.events).toEqual([
      "error: stream 3: 50 bytes would take the bytes waiting for the server's window over 100",
    ]);
    side.body(side.stream(5), 40); // exactly up to the cap: kept
    peer.windowUpdate(1, 60);
    peer.windowUpdate(5, 40);
    expect(await data()).toEqual([[1, 60, Flag.EndStream], [5, 40, Flag.EndStream]]);
  });

  it("drops the body of a stream the peer resets, giving its parked bytes back", async () => {
    const { side, peer, written } = setUp({ maxParkedBytes: 100 });
    peer.settings([Setting.InitialWindowSize, 0]);
    side.body(side.stream(1), 100);
    peer.frame(FrameType.RstStream, 0, 1, uint32Bytes(Code.Cancel));
    side.body(side.stream(3), 100); // would not fit beside stream 1's
    expect(await written(FrameType.RstStream)).toEqual([]);
    expect(side.openIds).toEqual([3]);
  });
});

describe("H2Core: read deadlines", () => {
  it("ends the connection with GOAWAY when the peer's SETTINGS do not come in time", async () => {
    const { clock, side, written } = setUp();
    clock.advance(1_000);
    const [goaway] = await written(FrameType.Goaway);
    expect(codeOf(goaway)).toBe(Code.NoError);
    expect(side.events).toEqual(["end: no SETTINGS from the server in 1000 ms"]);
  });

  it("ends the connection with GOAWAY(ENHANCE_YOUR_CALM) when a header block is left unfinished", async () => {
    const { clock, side, peer, written } = setUp();
    peer.settings();
    peer.frame(FrameType.Headers, 0, 1, Uint8Array.of(0x88)); // no END_HEADERS
    clock.advance(1_000);
    const [goaway] = await written(FrameType.Goaway);
    expect(codeOf(goaway)).toBe(Code.EnhanceYourCalm);
    expect(side.events).toEqual(["end: header block on stream 1 unfinished after 1000 ms"]);
  });

  it("resets a stream whose rest is late, not one whose rest arrived", async () => {
    const { clock, side, peer, written } = setUp();
    peer.settings();
    const [a, b] = [side.stream(1), side.stream(3)];
    side.awaitRestOf(a);
    side.awaitRestOf(b);
    clock.advance(500);
    side.restOf(b);
    clock.advance(500);
    const resets = await written(FrameType.RstStream);
    expect(resets.map((f) => [f.id, codeOf(f)])).toEqual([[1, Code.Cancel]]);
    expect(side.events).toEqual(["error: stream 1 unfinished by the server after 1000 ms"]);
    expect(side.openIds).toEqual([3]);
  });

  it("keeps one deadline timer and the idle timer, however many streams and bodies wait", () => {
    const { clock, side, peer } = setUp();
    peer.settings([Setting.InitialWindowSize, 0]);
    for (let i = 0; i < 50; i++) side.awaitRestOf(side.stream(2 * i + 1));
    for (let i = 50; i < 60; i++) side.body(side.stream(2 * i + 1), 1);
    expect(clock.pending).toBe(2);
  });
});

describe("H2Core: the idle timer", () => {
  it("drains once nothing has been open for idleTimeoutMs, counted from the last stream's end", async () => {
    const { clock, side, peer, written } = setUp();
    peer.settings();
    clock.advance(20_000);
    side.body(side.stream(1), 0); // opens and ends at once
    clock.advance(29_999);
    expect(await written(FrameType.Goaway)).toEqual([]);
    clock.advance(1);
    expect((await written(FrameType.Goaway)).map(codeOf)).toEqual([Code.NoError]);
    expect(side.events).toEqual(["sent 1", "end: connection drained"]);
  });

  it("sets no timer for a stream that opens and ends at once", () => {
    const { clock, side, peer } = setUp();
    peer.settings();
    const before = clock.set;
    for (let i = 0; i < 100; i++) side.body(side.stream(2 * i + 1), 33);
    expect(clock.set).toBe(before);
  });
});
