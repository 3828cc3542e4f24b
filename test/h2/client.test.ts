/**
 * The HTTP/2 client connection against a scripted server on an in-memory byte pipe: the frame
 * sequences real servers send that a loopback node:http2 server does not (h2o's dynamic-table
 * references, CONTINUATION, padding, tiny windows, a stream limit, GOAWAY with a last stream ID,
 * protocol errors), byte by byte where framing matters. The same client against real servers
 * is in test/deno/h2_transport.test.ts (node:http2) and test/interop/dnsdist_upstream.test.ts
 * (dnsdist).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H2Error } from "../../src/h2/error.ts";
import { H2ClientConnection, type H2ClientConnectionOptions } from "../../src/h2/client.ts";
import type { H2Socket } from "../../src/h2/socket.ts";
import { encodeRequestHead, pushString, withContentLength } from "../../src/h2/hpack_encode.ts";
import { Channel, channelSocket, encodeFrame, type Frame, FrameTap } from "../support/h2_pipe.ts";

const DATA = 0,
  HEADERS = 1,
  RST_STREAM = 3,
  SETTINGS = 4,
  PUSH_PROMISE = 5,
  PING = 6,
  GOAWAY = 7,
  WINDOW_UPDATE = 8,
  CONTINUATION = 9;
const END_STREAM = 1, ACK = 1, END_HEADERS = 4, PADDED = 8;

/** The server end: reads the client's frames, sends frames (optionally a byte at a time). */
class ScriptedServer {
  readonly toClient = new Channel();
  readonly toServer = new Channel();
  readonly #tap = new FrameTap(this.toServer, true);
  bytewise = false;

  socket(): H2Socket {
    return channelSocket(this.toClient, this.toServer);
  }

  send(type: number, flags: number, id: number, payload: Uint8Array = new Uint8Array(0)) {
    const frame = encodeFrame(type, flags, id, payload);
    if (this.bytewise) { for (const b of frame) this.toClient.push(Uint8Array.of(b)); }
    else this.toClient.push(frame);
  }

  settings(values: Record<number, number> = {}) {
    const entries = Object.entries(values);
    const payload = new Uint8Array(entries.length * 6);
    const view = new DataView(payload.buffer);
    entries.forEach(([k, v], i) => {
      view.setUint16(i * 6, Number(k));
      view.setUint32(i * 6 + 2, v);
    });
    this.send(SETTINGS, 0, 0, payload);
  }

  /** Takes the first client frame `match` accepts, waiting up to 1 s for one to arrive. */
  expect(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    return this.#tap.expect(match, what);
  }

  request(what = "a request"): Promise<Frame> {
    return this.expect((f) => f.type === HEADERS, what);
  }
}

const MEDIA = "application/dns-message";
const text = new TextEncoder();
const HEAD = withContentLength(
  encodeRequestHead({
    method: "POST",
    scheme: "https",
    authority: "up.example",
    path: "/dns-query",
    accept: MEDIA,
    contentType: MEDIA,
  }),
  4,
);
/** `:status: 200` (static index 8), then content-type added to the dynamic table (h2o style). */
const RESPONSE_INDEXING = Uint8Array.of(0x88, 0x40 | 31, MEDIA.length, ...text.encode(MEDIA));
/** The same response as two references: static 8 and dynamic 62. */
const RESPONSE_REFERENCING = Uint8Array.of(0x88, 0x80 | 62);

function setUp(
  options: H2ClientConnectionOptions = {},
): { server: ScriptedServer; conn: H2ClientConnection } {
  const server = new ScriptedServer();
  const conn = new H2ClientConnection(Promise.resolve(server.socket()), {
    idleTimeoutMs: 60_000,
    ...options,
  });
  return { server, conn };
}

function post(conn: H2ClientConnection, body = Uint8Array.of(1, 2, 3, 4), signal?: AbortSignal) {
  return conn.request(HEAD, body, 65_535, signal ?? AbortSignal.timeout(5_000));
}

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (error) {
    return error instanceof H2Error ? (error.retryable ? "retryable" : "fatal") : String(error);
  }
}

describe("H2ClientConnection against a scripted server", () => {
  it("opens with the preface and SETTINGS, acknowledges the server's, and decodes indexed headers", async () => {
    const { server, conn } = setUp();
    const first = post(conn);
    const settings = await server.expect((f) => f.type === SETTINGS, "client SETTINGS");
    expect(settings.flags & ACK).toBe(0);
    server.settings({ 3: 100 });
    await server.expect((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, "SETTINGS ACK");
    const h1 = await server.request();
    const d1 = await server.expect((f) => f.type === DATA, "the body");
    expect([...d1.payload]).toEqual([1, 2, 3, 4]);
    expect(d1.flags & END_STREAM).toBe(END_STREAM);
    server.send(HEADERS, END_HEADERS, h1.id, RESPONSE_INDEXING);
    server.send(DATA, END_STREAM, h1.id, Uint8Array.of(9, 8));
    expect(await first).toEqual({ status: 200, contentType: MEDIA, body: Uint8Array.of(9, 8) });
    // The second response refers to the dynamic-table entry the first one added.
    const second = post(conn);
    const h2 = await server.request("the second request");
    expect(h2.id).toBe(h1.id + 2);
    server.send(HEADERS, END_HEADERS, h2.id, RESPONSE_REFERENCING);
    server.send(DATA, END_STREAM, h2.id, Uint8Array.of(7));
    expect(await second).toEqual({ status: 200, contentType: MEDIA, body: Uint8Array.of(7) });
    conn.close();
  });

  it("reassembles CONTINUATION, padded HEADERS and DATA, all delivered a byte at a time", async () => {
    const { server, conn } = setUp();
    server.bytewise = true;
    const pending = post(conn);
    server.settings();
    const h = await server.request();
    const block = RESPONSE_INDEXING;
    const padded = new Uint8Array(1 + 3 + 2);
    padded[0] = 2; // pad length
    padded.set(block.subarray(0, 3), 1);
    server.send(HEADERS, PADDED, h.id, padded);
    server.send(CONTINUATION, 0, h.id, block.subarray(3, 10));
    server.send(CONTINUATION, END_HEADERS, h.id, block.subarray(10));
    server.send(DATA, PADDED, h.id, Uint8Array.of(3, 0xaa, 0xbb, 0, 0, 0));
    server.send(DATA, END_STREAM, h.id, Uint8Array.of(0xcc));
    const res = await pending;
    expect(res.contentType).toBe(MEDIA);
    expect([...res.body]).toEqual([0xaa, 0xbb, 0xcc]);
    conn.close();
  });

  it("keeps to the server's stream limit and starts queued requests as streams end", async () => {
    const { server, conn } = setUp();
    server.settings({ 3: 2 });
    await server.expect((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, "SETTINGS ACK");
    const all = Array.from({ length: 5 }, (_, i) => post(conn, Uint8Array.of(i)));
    const a = await server.request("request 1");
    const b = await server.request("request 2");
    // No third HEADERS while two streams are open.
    await expect(server.request("a third request")).rejects.toThrow(/timed out/);
    for (const f of [a, b]) {
      server.send(HEADERS, END_HEADERS | END_STREAM, f.id, Uint8Array.of(0x88));
    }
    const rest = [await server.request("request 3"), await server.request("request 4")];
    for (const f of rest) server.send(HEADERS, END_HEADERS | END_STREAM, f.id, Uint8Array.of(0x88));
    const last = await server.request("request 5");
    server.send(HEADERS, END_HEADERS | END_STREAM, last.id, Uint8Array.of(0x88));
    for (const res of await Promise.all(all)) expect(res.status).toBe(200);
    conn.close();
  });

  it("waits for WINDOW_UPDATE when the server's windows are smaller than the body", async () => {
    const { server, conn } = setUp();
    server.settings({ 4: 10 }); // INITIAL_WINDOW_SIZE 10
    await server.expect((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, "SETTINGS ACK");
    const body = Uint8Array.from({ length: 25 }, (_, i) => i);
    const pending = conn.request(
      withContentLength(HEAD, 25),
      body,
      512,
      AbortSignal.timeout(5_000),
    );
    const h = await server.request();
    const d1 = await server.expect((f) => f.type === DATA, "the first 10 bytes");
    expect(d1.payload.length).toBe(10);
    expect(d1.flags & END_STREAM).toBe(0);
    await expect(server.expect((f) => f.type === DATA, "more data")).rejects.toThrow(/timed out/);
    server.send(WINDOW_UPDATE, 0, h.id, Uint8Array.of(0, 0, 0, 20));
    const d2 = await server.expect((f) => f.type === DATA, "the rest");
    expect(d2.payload.length).toBe(15);
    expect(d2.flags & END_STREAM).toBe(END_STREAM);
    expect([...d1.payload, ...d2.payload]).toEqual([...body]);
    server.send(HEADERS, END_HEADERS | END_STREAM, h.id, Uint8Array.of(0x88));
    expect((await pending).status).toBe(200);
    conn.close();
  });

  it("ends an empty body at once even with no window, and holds a real one until WINDOW_UPDATE", async () => {
    const { server, conn } = setUp();
    server.settings({ 4: 0 }); // INITIAL_WINDOW_SIZE 0
    await server.expect((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, "SETTINGS ACK");
    const empty = conn.request(
      withContentLength(HEAD, 0),
      new Uint8Array(0),
      512,
      AbortSignal.timeout(5_000),
    );
    const h1 = await server.request("the empty POST");
    const d1 = await server.expect((f) => f.type === DATA && f.id === h1.id, "its DATA");
    expect([d1.payload.length, d1.flags & END_STREAM]).toEqual([0, END_STREAM]);
    const full = post(conn, Uint8Array.of(1, 2, 3));
    const h2 = await server.request("the second POST");
    await expect(server.expect((f) => f.type === DATA && f.id === h2.id, "early DATA")).rejects
      .toThrow(/timed out/);
    server.send(WINDOW_UPDATE, 0, h2.id, Uint8Array.of(0, 0, 0, 3));
    const d2 = await server.expect((f) => f.type === DATA && f.id === h2.id, "its DATA");
    expect([...d2.payload]).toEqual([1, 2, 3]);
    for (const id of [h1.id, h2.id]) {
      server.send(HEADERS, END_HEADERS | END_STREAM, id, Uint8Array.of(0x88));
    }
    expect((await empty).status).toBe(200);
    expect((await full).status).toBe(200);
    conn.close();
  });

  it("splits a body larger than the frame size and answers PING", async () => {
    const { server, conn } = setUp();
    server.settings({ 4: 1 << 20 });
    server.send(WINDOW_UPDATE, 0, 0, Uint8Array.of(0, 1, 0, 0));
    const body = new Uint8Array(20_000).fill(7);
    const pending = conn.request(
      withContentLength(HEAD, body.length),
      body,
      512,
      AbortSignal.timeout(5_000),
    );
    const h = await server.request();
    const d1 = await server.expect((f) => f.type === DATA, "DATA 1");
    const d2 = await server.expect((f) => f.type === DATA, "DATA 2");
    expect([d1.payload.length, d2.payload.length]).toEqual([16_384, 20_000 - 16_384]);
    server.send(PING, 0, 0, Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8));
    const pong = await server.expect((f) => f.type === PING, "PING ACK");
    expect(pong.flags & ACK).toBe(ACK);
    expect([...pong.payload]).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    server.send(HEADERS, END_HEADERS | END_STREAM, h.id, Uint8Array.of(0x88));
    expect((await pending).status).toBe(200);
    conn.close();
  });

  it("on GOAWAY finishes streams up to the last ID, fails later ones as retryable, takes no more", async () => {
    const { server, conn } = setUp();
    server.settings();
    const p1 = post(conn);
    const p3 = post(conn);
    const f1 = await server.request("stream 1");
    await server.request("stream 3");
    server.send(GOAWAY, 0, 0, Uint8Array.of(0, 0, 0, f1.id, 0, 0, 0, 0));
    expect(await outcome(p3)).toBe("retryable");
    expect(conn.usable).toBe(false);
    expect(await outcome(post(conn))).toBe("retryable");
    server.send(HEADERS, END_HEADERS, f1.id, RESPONSE_INDEXING);
    server.send(DATA, END_STREAM, f1.id, Uint8Array.of(5));
    expect([...(await p1).body]).toEqual([5]);
  });

  it("cancels an aborted request with RST_STREAM and ignores its late answer", async () => {
    const { server, conn } = setUp();
    server.settings();
    const controller = new AbortController();
    const pending = post(conn, undefined, controller.signal);
    const h = await server.request();
    controller.abort(new Error("gave up"));
    await expect(pending).rejects.toThrow("gave up");
    const rst = await server.expect((f) => f.type === RST_STREAM, "RST_STREAM");
    expect(rst.id).toBe(h.id);
    expect(new DataView(rst.payload.buffer).getUint32(0)).toBe(8); // CANCEL
    // A late answer on the cancelled stream, then a fresh request, still work.
    server.send(HEADERS, END_HEADERS, h.id, RESPONSE_INDEXING);
    server.send(DATA, END_STREAM, h.id, Uint8Array.of(1));
    const next = post(conn);
    const h2 = await server.request("the next request");
    server.send(HEADERS, END_HEADERS | END_STREAM, h2.id, RESPONSE_REFERENCING);
    expect((await next).contentType).toBe(MEDIA);
    conn.close();
  });

  it("rejects an answer over the size cap with a RangeError and resets the stream", async () => {
    const { server, conn } = setUp();
    server.settings();
    const pending = conn.request(HEAD, Uint8Array.of(1, 2, 3, 4), 100, AbortSignal.timeout(5_000));
    const h = await server.request();
    server.send(HEADERS, END_HEADERS, h.id, RESPONSE_INDEXING);
    server.send(DATA, 0, h.id, new Uint8Array(101));
    await expect(pending).rejects.toThrow(RangeError);
    expect((await server.expect((f) => f.type === RST_STREAM, "RST_STREAM")).id).toBe(h.id);
    conn.close();
  });

  it("ends the connection with GOAWAY(PROTOCOL_ERROR) on PUSH_PROMISE, failing what is open", async () => {
    const { server, conn } = setUp();
    server.settings();
    const pending = post(conn);
    const h = await server.request();
    server.send(PUSH_PROMISE, END_HEADERS, h.id, Uint8Array.of(0, 0, 0, 2, 0x88));
    expect(await outcome(pending)).toBe("fatal");
    const goaway = await server.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(1); // PROTOCOL_ERROR
    expect(conn.usable).toBe(false);
  });

  for (const [what, size] of [["1 KiB", 1_024], ["empty", 0]] as const) {
    it(`ends the connection with GOAWAY(ENHANCE_YOUR_CALM) on endless ${what} CONTINUATION frames`, async () => {
      const { server, conn } = setUp();
      server.settings();
      const pending = post(conn);
      const h = await server.request();
      server.send(HEADERS, 0, h.id, Uint8Array.of(0x88));
      for (let i = 0; i < 100; i++) server.send(CONTINUATION, 0, h.id, new Uint8Array(size));
      expect(await outcome(pending)).toBe("fatal");
      const goaway = await server.expect((f) => f.type === GOAWAY, "GOAWAY");
      expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(11);
      expect(conn.usable).toBe(false);
    });
  }

  it("ends a connection whose server floods stream resets with GOAWAY(ENHANCE_YOUR_CALM)", async () => {
    const { server, conn } = setUp();
    server.settings();
    const pending = post(conn);
    await server.request();
    for (let i = 0; i < 1_100; i++) {
      server.send(RST_STREAM, 0, 1_001 + 2 * i, Uint8Array.of(0, 0, 0, 8));
    }
    expect(await outcome(pending)).toBe("fatal");
    const goaway = await server.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(11);
  });

  it("fails open requests as retryable when the server closes the connection", async () => {
    const { server, conn } = setUp();
    server.settings();
    const pending = post(conn);
    await server.request();
    server.toClient.close();
    expect(await outcome(pending)).toBe("retryable");
    expect(conn.usable).toBe(false);
  });
});

describe("H2ClientConnection bounds against a hostile server", () => {
  const BIG = "r".repeat(4_000);
  /** :status 200, a 4 KB literal added to the table (index 62), then `refs` references to it. */
  function bombResponse(refs: number): Uint8Array {
    const out = [0x88, 0x40];
    pushString(out, "x-bomb");
    pushString(out, BIG);
    for (let i = 0; i < refs; i++) out.push(0x80 | 62);
    return Uint8Array.from(out);
  }

  it("fails the one request whose response header list is over the decoded cap, resets its stream, and carries on", async () => {
    const { server, conn } = setUp();
    server.settings();
    const settings = await server.expect(
      (f) => f.type === SETTINGS && !(f.flags & ACK),
      "SETTINGS",
    );
    expect(settings.payload.toHex()).toContain("000600010000"); // MAX_HEADER_LIST_SIZE 65 536
    const bombed = post(conn);
    const other = post(conn);
    const h1 = await server.request("request 1");
    const h2 = await server.request("request 2");
    // 21 fields of 4 038 octets: ~85 KB decoded from ~4 KB, over the 64 KiB default.
    server.send(HEADERS, END_HEADERS, h1.id, bombResponse(20));
    const error = await bombed.then(() => undefined, (e) => e);
    expect(error).toBeInstanceOf(H2Error);
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/response header list on stream 1 over 65536 bytes/);
    const rst = await server.expect((f) => f.type === RST_STREAM, "RST_STREAM");
    expect([rst.id, new DataView(rst.payload.buffer).getUint32(0)]).toEqual([h1.id, 8]); // CANCEL
    // The other stream's answer refers to the bomb's table entry: the table stayed in step.
    server.send(HEADERS, END_HEADERS | END_STREAM, h2.id, Uint8Array.of(0x88, 0x80 | 62));
    expect((await other).status).toBe(200);
    expect(conn.usable).toBe(true);
    conn.close();
  });

  it("fails a request whose DATA (padding included) passes the stream window, and carries on", async () => {
    const { server, conn } = setUp();
    server.settings();
    const flooded = conn.request(
      HEAD,
      Uint8Array.of(1, 2, 3, 4),
      1 << 20,
      AbortSignal.timeout(5_000),
    );
    const h = await server.request();
    server.send(HEADERS, END_HEADERS, h.id, RESPONSE_INDEXING);
    const padded = new Uint8Array(16_384);
    padded[0] = 255; // pad length: 16 128 body bytes, 255 of padding
    // 17 frames: 278 528 bytes of window, over the 256 KiB the client advertised; the body
    // (274 176 bytes) is within this request's cap, so only the window can stop it.
    for (let i = 0; i < 17; i++) server.send(DATA, PADDED, h.id, padded);
    const error = await flooded.then(() => undefined, (e) => e);
    expect(error).toBeInstanceOf(H2Error);
    expect(error.message).toMatch(/DATA beyond the stream window on stream 1/);
    const rst = await server.expect((f) => f.type === RST_STREAM, "RST_STREAM");
    expect([rst.id, new DataView(rst.payload.buffer).getUint32(0)]).toEqual([h.id, 3]);
    const next = post(conn);
    const h2 = await server.request("the next request");
    server.send(HEADERS, END_HEADERS | END_STREAM, h2.id, RESPONSE_REFERENCING);
    expect((await next).contentType).toBe(MEDIA);
    conn.close();
  });

  it("gathers a response sent a byte per DATA frame into one buffer", async () => {
    const { server, conn } = setUp();
    server.settings();
    const pending = conn.request(
      HEAD,
      Uint8Array.of(1, 2, 3, 4),
      1_000,
      AbortSignal.timeout(5_000),
    );
    const h = await server.request();
    server.send(HEADERS, END_HEADERS, h.id, RESPONSE_INDEXING);
    for (let i = 0; i < 500; i++) server.send(DATA, 0, h.id, Uint8Array.of(i & 0xff));
    server.send(DATA, END_STREAM, h.id);
    const response = await pending;
    expect([...response.body]).toEqual(Array.from({ length: 500 }, (_, i) => i & 0xff));
    conn.close();
  });

  it("ends the connection with GOAWAY(ENHANCE_YOUR_CALM) when DATA frames on its open streams pass 8 192", async () => {
    const { server, conn } = setUp();
    server.settings();
    const pending = post(conn);
    const h = await server.request();
    server.send(HEADERS, END_HEADERS, h.id, RESPONSE_INDEXING);
    const batch = new Uint8Array(9 * 1_024);
    for (let i = 0; i < 1_024; i++) batch.set(encodeFrame(DATA, 0, h.id), 9 * i); // empty frames
    for (let i = 0; i < 8; i++) server.toClient.push(batch);
    server.send(DATA, 0, h.id);
    expect(await outcome(pending)).toBe("fatal");
    const goaway = await server.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(11);
  });

  it("resets a request whose body makes no progress against the server's window for readTimeoutMs", async () => {
    const { server, conn } = setUp({ readTimeoutMs: 80 });
    server.settings({ 4: 0 }); // INITIAL_WINDOW_SIZE 0
    await server.expect((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, "SETTINGS ACK");
    const pending = post(conn);
    const h = await server.request();
    const error = await pending.then(() => undefined, (e) => e);
    expect(error).toBeInstanceOf(H2Error);
    expect(error.message).toMatch(/no room in the server's flow-control window for 80 ms/);
    const rst = await server.expect((f) => f.type === RST_STREAM, "RST_STREAM");
    expect([rst.id, new DataView(rst.payload.buffer).getUint32(0)]).toEqual([h.id, 8]); // CANCEL
  });

  it("ends the connection when the server sends no SETTINGS within readTimeoutMs", async () => {
    const { server, conn } = setUp({ readTimeoutMs: 80 });
    const pending = post(conn);
    await server.request();
    expect(await outcome(pending)).toBe("retryable");
    const goaway = await server.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(0);
    expect(conn.usable).toBe(false);
  });

  it("ends the connection when a response header block never ends", async () => {
    const { server, conn } = setUp({ readTimeoutMs: 80 });
    server.settings();
    const pending = post(conn);
    const h = await server.request();
    server.send(HEADERS, 0, h.id, Uint8Array.of(0x88));
    expect(await outcome(pending)).toBe("fatal");
    const goaway = await server.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(11);
    expect(conn.usable).toBe(false);
  });
});

describe("H2ClientConnection against random server bytes", () => {
  /** A frame with a random type, flags, stream ID (mostly the open ones) and payload. */
  const arbFrame = fc.record({
    type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 255 })),
    flags: fc.integer({ min: 0, max: 255 }),
    id: fc.oneof(fc.constantFrom(0, 1, 3, 5), fc.integer({ min: 0, max: 0x7fffffff })),
    payload: fc.uint8Array({ maxLength: 64 }),
  });

  it("settles every request and never throws, whatever frames (or bytes) the server sends", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(arbFrame, { maxLength: 12 }),
        fc.uint8Array({ maxLength: 40 }),
        async (frames, tail) => {
          const { server, conn } = setUp();
          const pending = [post(conn), post(conn), post(conn)].map((p) =>
            p.then(() => "answered", (e) => (e instanceof Error ? "failed" : "odd"))
          );
          server.settings();
          for (const f of frames) server.send(f.type, f.flags, f.id, f.payload);
          server.toClient.push(tail);
          server.toClient.close(); // then the server goes away: everything must settle
          const outcomes = await Promise.all(pending);
          expect(outcomes.every((o) => o === "answered" || o === "failed")).toBe(true);
          expect(conn.usable).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });
});
