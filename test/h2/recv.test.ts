/**
 * The receiving side of the streams: DATA counted against our windows (a connection
 * WINDOW_UPDATE queued at half), padding removed but counted, a stream past its window a
 * stream error, the DATA-frame cap; header blocks decoded under the list cap, and a block that
 * cannot be decoded a COMPRESSION_ERROR.
 */
import { describe, expect, it } from "vitest";
import { CONNECTION_WINDOW } from "../../src/h2/flow.ts";
import { Code, Flag, FrameReader, FrameType } from "../../src/h2/frames.ts";
import { FrameOutbox } from "../../src/h2/outbox.ts";
import { StreamReceiver } from "../../src/h2/recv.ts";
import { codeOf } from "../support/h2_pipe.ts";

interface Stream {
  sendWindow: number;
  received: number;
  dataFrames: number;
  buffer: Uint8Array | undefined;
  buffered: number;
}

const stream = (): Stream => ({
  sendWindow: 0,
  received: 0,
  dataFrames: 0,
  buffer: undefined,
  buffered: 0,
});

function setUp(options: Partial<ConstructorParameters<typeof StreamReceiver>[1]> = {}) {
  const updates: number[] = [];
  const reader = new FrameReader();
  const outbox = new FrameOutbox({
    onError: (e) => {
      throw e;
    },
  });
  outbox.attach({
    write: (bytes) => {
      reader.feed(bytes, (type, _flags, _id, payload) => {
        if (type === FrameType.WindowUpdate) {
          updates.push(new DataView(payload.buffer, payload.byteOffset).getUint32(0));
        }
      });
      return Promise.resolve();
    },
    close: () => {},
  });
  const recv = new StreamReceiver<Stream>(outbox, {
    streamWindow: 100,
    maxHeaderBytes: 1_000,
    maxHeaderListSize: 100,
    maxBufferedBytes: 10_000,
    maxDataFrames: 10,
    ...options,
  });
  const flushed = async () => {
    for (let i = 0; i < 5; i++) await Promise.resolve();
    return updates;
  };
  return { recv, flushed };
}

describe("StreamReceiver", () => {
  it("hands over DATA without its padding, counting the padding against both windows", () => {
    const { recv } = setUp();
    const s = stream();
    const payload = Uint8Array.of(3, 0xaa, 0xbb, 0, 0, 0); // pad length 3
    const data = recv.data(Flag.Padded, 1, payload, s);
    expect([...data!]).toEqual([0xaa, 0xbb]);
    expect([s.received, s.dataFrames]).toEqual([6, 1]);
  });

  it("makes DATA past a stream's window a stream error, and DATA on no open stream still counts", () => {
    const { recv } = setUp();
    const s = stream();
    expect(recv.data(0, 1, new Uint8Array(100), s)).toBeDefined();
    expect(recv.data(0, 1, new Uint8Array(1), s)).toBeUndefined();
    expect(recv.data(0, 3, new Uint8Array(50), undefined)!.length).toBe(50);
  });

  it("queues a connection WINDOW_UPDATE once half the connection window is used", async () => {
    const { recv, flushed } = setUp({ streamWindow: CONNECTION_WINDOW });
    const chunk = new Uint8Array(16_384);
    for (let used = 0; used < CONNECTION_WINDOW / 2; used += chunk.length) {
      recv.data(0, 1, chunk, undefined);
    }
    expect(await flushed()).toEqual([CONNECTION_WINDOW / 2]);
  });

  const bad: [string, (r: StreamReceiver<Stream>) => void, number][] = [
    ["DATA on stream 0", (r) => r.data(0, 0, new Uint8Array(1), undefined), Code.ProtocolError],
    [
      "padding past the payload",
      (r) => r.data(Flag.Padded, 1, Uint8Array.of(4, 0), stream()),
      Code.ProtocolError,
    ],
    [
      "DATA frames past the cap on the open streams",
      (r) => {
        const s = stream();
        for (let i = 0; i <= 10; i++) r.data(0, 1, new Uint8Array(0), s);
      },
      Code.EnhanceYourCalm,
    ],
    [
      "a header block that cannot be decoded",
      (r) => r.decode(Uint8Array.of(0x80), () => {}),
      Code.CompressionError,
    ],
  ];
  for (const [what, run, code] of bad) {
    it(`ends the connection for ${what}`, () => {
      expect(codeOf(() => run(setUp().recv))).toBe(code);
    });
  }

  it("decodes a header block, and says when its list is over the cap", () => {
    const { recv } = setUp();
    const fields: string[] = [];
    expect(recv.decode(Uint8Array.of(0x88), (n, v) => fields.push(`${n}: ${v}`))).toBe(true);
    expect(fields).toEqual([":status: 200"]);
    // :status 200 plus four indexed content-types (31): 42 + 4 × 44 octets > 100
    expect(recv.decode(Uint8Array.of(0x88, 0x9f, 0x9f, 0x9f, 0x9f), () => {})).toBe(false);
  });
});
