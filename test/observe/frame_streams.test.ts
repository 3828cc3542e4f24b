/**
 * Frame Streams pieces and dnstap's encoding, without a collector: control frames both ways,
 * data frames, the bounded frame queue, the target syntax, and the protobuf bytes of a message.
 *
 * @module
 */
import { describe, expect, it } from "vitest";
import { parseDnstapTarget } from "../../src/deno/dnstap_sender.ts";
import { encodeDnstap, faceProtocol, MessageType } from "../../src/observe/dnstap.ts";
import {
  Control,
  controlFrame,
  ControlReader,
  dataFrame,
  DNSTAP_CONTENT_TYPE,
  FrameQueue,
} from "../../src/observe/frame_streams.ts";

describe("Frame Streams", () => {
  it("writes control frames the reader reads back, in any pieces", () => {
    const bytes = controlFrame(Control.ACCEPT, [DNSTAP_CONTENT_TYPE]);
    expect([...bytes.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    const reader = new ControlReader();
    const frames = [];
    for (const b of bytes) frames.push(...reader.push(Uint8Array.of(b)));
    expect(frames).toEqual([{ type: Control.ACCEPT, contentTypes: [DNSTAP_CONTENT_TYPE] }]);
    expect(reader.push(controlFrame(Control.FINISH))).toEqual([
      { type: Control.FINISH, contentTypes: [] },
    ]);
  });

  it("refuses a data frame or an oversize control frame from the receiver", () => {
    expect(() => new ControlReader().push(dataFrame(Uint8Array.of(1, 2)))).toThrow(/data frame/);
    const big = Uint8Array.of(0, 0, 0, 0, 0, 0, 4, 0);
    expect(() => new ControlReader().push(big)).toThrow(/1024 bytes/);
  });

  it("queues frames up to its cap, dropping and counting the rest", () => {
    let drops = 0;
    const q = new FrameQueue({ maxBytes: 10, onDrop: () => drops++ });
    expect(q.push(dataFrame(Uint8Array.of(1, 2, 3)))).toBe(true);
    expect(q.push(dataFrame(Uint8Array.of(1, 2, 3)))).toBe(false);
    expect(drops).toBe(1);
    const { bytes, count } = q.take();
    expect([count, [...bytes]]).toEqual([1, [0, 0, 0, 3, 1, 2, 3]]);
    expect(q.take().count).toBe(0);
  });

  it.each([
    ["unix:/run/dnstap.sock", { transport: "unix", path: "/run/dnstap.sock" }],
    ["tcp:127.0.0.1:6000", { transport: "tcp", hostname: "127.0.0.1", port: 6000 }],
    ["tcp:[::1]:6000", { transport: "tcp", hostname: "::1", port: 6000 }],
  ])("reads the target %s", (text, target) => {
    expect(parseDnstapTarget(text)).toEqual(target);
  });

  it.each(["udp:1.2.3.4:5", "unix:", "tcp:host", "tcp:host:0", "/run/x.sock"])(
    "refuses the target %s",
    (text) => expect(() => parseDnstapTarget(text)).toThrow(RangeError),
  );
});

describe("dnstap messages", () => {
  it("encodes the envelope and the message with the schema's field numbers", () => {
    const bytes = encodeDnstap(
      {
        type: MessageType.CLIENT_QUERY,
        protocol: faceProtocol("doq"),
        queryMessage: Uint8Array.of(9),
      },
      { version: "v" },
    );
    // version (2) "v", message (14) { type (1) 5, socket_protocol (3) 7, query_message (10) },
    // type (15) MESSAGE.
    expect([...bytes]).toEqual([0x12, 1, 0x76, 0x72, 7, 0x08, 5, 0x18, 7, 0x52, 1, 9, 0x78, 1]);
  });
});
