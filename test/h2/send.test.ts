/**
 * The sending side of the streams: header blocks cut to the peer's frame size, bodies cut to
 * the windows and the frame size with END_STREAM on the last frame, the rest parked (keeping
 * when its wait began), and a body refused when parking it would pass the cap.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_WINDOW, Flag, FrameType } from "../../src/h2/frames.ts";
import { FrameOutbox } from "../../src/h2/outbox.ts";
import { StreamSender } from "../../src/h2/send.ts";
import { FakeClock } from "../support/fake_clock.ts";

interface Stream {
  readonly id: number;
  sendWindow: number;
  received: number;
  pending: Uint8Array | undefined;
  stalledSince: number;
}

interface Sent {
  type: number;
  flags: number;
  id: number;
  length: number;
}

/** A sender over an outbox whose writes are collected as frames. */
function setUp(maxParkedBytes = 1_000_000) {
  const clock = new FakeClock();
  const written: Sent[] = [];
  const outbox = new FrameOutbox({
    onError: (e) => {
      throw e;
    },
    clock,
  });
  outbox.attach({
    write: (bytes) => {
      // Frames of any size (the peer may have raised SETTINGS_MAX_FRAME_SIZE).
      for (let at = 0; at < bytes.length;) {
        const length = (bytes[at] << 16) | (bytes[at + 1] << 8) | bytes[at + 2];
        const id = new DataView(bytes.buffer, bytes.byteOffset + at + 5).getUint32(0);
        written.push({ type: bytes[at + 3], flags: bytes[at + 4], id, length });
        at += 9 + length;
      }
      return Promise.resolve();
    },
    close: () => {},
  });
  const sender = new StreamSender<Stream>(outbox, maxParkedBytes, clock);
  const opened = (id: number): Stream => {
    const s: Stream = { id, sendWindow: 0, received: 0, pending: undefined, stalledSince: 0 };
    sender.flow.open(s);
    return s;
  };
  /** The frames written since the last call. */
  const frames = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return written.splice(0);
  };
  return { clock, sender, opened, frames };
}

describe("StreamSender", () => {
  it("sends a header block in one HEADERS frame when it fits, else in HEADERS and CONTINUATION", async () => {
    const { sender, frames } = setUp();
    sender.headers(1, new Uint8Array(100), true);
    sender.headers(3, new Uint8Array(16_384 * 2 + 1), false);
    expect(await frames()).toEqual([
      { type: FrameType.Headers, flags: Flag.EndHeaders | Flag.EndStream, id: 1, length: 100 },
      { type: FrameType.Headers, flags: 0, id: 3, length: 16_384 },
      { type: FrameType.Continuation, flags: 0, id: 3, length: 16_384 },
      { type: FrameType.Continuation, flags: Flag.EndHeaders, id: 3, length: 1 },
    ]);
  });

  it("sends a body that fits in one DATA frame with END_STREAM, and an empty one with no window", async () => {
    const { sender, opened, frames } = setUp();
    const [a, b] = [opened(1), opened(3)];
    b.sendWindow = 0;
    a.pending = new Uint8Array(33);
    b.pending = new Uint8Array(0);
    expect(sender.body(a)).toBe("sent");
    expect(sender.body(b)).toBe("sent");
    expect(a.pending).toBeUndefined();
    expect(await frames()).toEqual([
      { type: FrameType.Data, flags: Flag.EndStream, id: 1, length: 33 },
      { type: FrameType.Data, flags: Flag.EndStream, id: 3, length: 0 },
    ]);
  });

  it("cuts a body to the peer's frame size", async () => {
    const { sender, opened, frames } = setUp();
    sender.maxFrame = 20_000;
    const s = opened(1);
    s.pending = new Uint8Array(50_000);
    expect(sender.body(s)).toBe("sent");
    expect((await frames()).map((f) => [f.length, f.flags])).toEqual([
      [20_000, 0],
      [20_000, 0],
      [10_000, Flag.EndStream],
    ]);
  });

  it("sends what the windows allow and parks the rest, then resends it once they open", async () => {
    const { clock, sender, opened, frames } = setUp();
    const s = opened(1);
    s.sendWindow = 10;
    s.pending = new Uint8Array(25);
    expect(sender.body(s)).toBe("parked");
    expect(await frames()).toEqual([{ type: FrameType.Data, flags: 0, id: 1, length: 10 }]);
    expect([s.pending!.length, s.stalledSince, sender.parked.bytes]).toEqual([15, clock.now(), 15]);
    clock.advance(300);
    sender.flow.growStream(s, 5);
    expect(sender.body(s)).toBe("parked"); // progress: its wait starts again
    expect(s.stalledSince).toBe(clock.now());
    clock.advance(300);
    expect(sender.body(s)).toBe("parked"); // no progress: its wait goes on
    expect(s.stalledSince).toBe(clock.now() - 300);
    sender.flow.growStream(s, 100);
    expect(sender.body(s)).toBe("sent");
    expect(sender.parked.bytes).toBe(0);
    expect((await frames()).map((f) => [f.length, f.flags])).toEqual([
      [5, 0],
      [10, Flag.EndStream],
    ]);
  });

  it("holds bodies to the connection window shared by all streams", async () => {
    const { sender, opened, frames } = setUp();
    const [a, b] = [opened(1), opened(3)];
    a.pending = new Uint8Array(DEFAULT_WINDOW - 5);
    b.pending = new Uint8Array(10);
    expect(sender.body(a)).toBe("sent");
    expect(sender.body(b)).toBe("parked");
    const sent = await frames();
    const total = (id: number) => sent.filter((f) => f.id === id).reduce((n, f) => n + f.length, 0);
    expect([total(1), total(3)]).toEqual([DEFAULT_WINDOW - 5, 5]);
    expect(b.pending!.length).toBe(5);
  });

  it("refuses a body whose rest would take the bytes parked over the cap, leaving the rest uncounted", () => {
    const { sender, opened } = setUp(100);
    const [a, b] = [opened(1), opened(3)];
    a.sendWindow = b.sendWindow = 0;
    a.pending = new Uint8Array(60);
    b.pending = new Uint8Array(41);
    expect(sender.body(a)).toBe("parked");
    expect(sender.body(b)).toBe("refused");
    expect([b.pending!.length, b.stalledSince, sender.parked.bytes]).toEqual([41, 0, 60]);
    expect(sender.parked.size).toBe(1);
  });
});
