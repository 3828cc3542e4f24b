/**
 * The HTTP/2 server connection's resource bounds against a hostile scripted client on an
 * in-memory pipe: the HPACK bomb and other oversized decoded header lists (431, offences,
 * GOAWAY(ENHANCE_YOUR_CALM)), the request read deadline (a silent half-open stream, a stalled
 * body, a header block that never ends, a preface that never completes), streams over the limit
 * the client acknowledged, DATA beyond the stream window, reading held while the outbox is over
 * its high-water mark (sockets read and sockets that push), the write deadline, the final
 * GOAWAY written after a write in flight, and no timer armed on the hot path.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { H2ServerConnection, type H2ServerOptions } from "../../src/h2/server.ts";
import { HpackDecoder } from "../../src/h2/hpack_decode.ts";
import { pushInt, pushString } from "../../src/h2/hpack_encode.ts";
import { MAX_OFFENCES } from "../../src/h2/connection.ts";
import { encodeFrame as frame, type Frame, FrameTap, TestSocket } from "../support/h2_pipe.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, PING = 6, GOAWAY = 7;
const END_STREAM = 1, ACK = 1, END_HEADERS = 4, PADDED = 8;
const NO_ERROR = 0, PROTOCOL_ERROR = 1, FLOW_CONTROL_ERROR = 3, CANCEL = 8;
const ENHANCE_YOUR_CALM = 11;
const text = new TextEncoder();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (f: Frame) => new DataView(f.payload.buffer).getUint32(f.type === GOAWAY ? 4 : 0);

/** The head of a request: :method, :scheme https, :path literal. */
function head(method: "GET" | "POST", path: string): number[] {
  const out = [method === "GET" ? 0x82 : 0x83, 0x87];
  pushInt(out, 4, 4, 0);
  pushString(out, path);
  return out;
}

const BIG = "b".repeat(4_000);
/**
 * The HPACK bomb: a request head, one 4 KB literal added to the table, then `refs` one-octet
 * references to it (`refs` 3 000: ~12 MB decoded from ~7 KB). Only the first one adds the entry;
 * later ones just refer to it (index `index`).
 */
function bomb(method: "GET" | "POST", path: string, refs: number, index?: number): Uint8Array {
  return Uint8Array.from([...head(method, path), ...bombFields(refs, index)]);
}

/** The bomb's fields alone (for trailers). */
function bombFields(refs: number, index?: number): number[] {
  const out: number[] = [];
  if (index === undefined) {
    out.push(0x40);
    pushString(out, "x-bomb");
    pushString(out, BIG);
    index = 62;
  }
  for (let i = 0; i < refs; i++) out.push(0x80 | index);
  return out;
}

interface Seen {
  path: string;
  headers: readonly (readonly [string, string])[];
}

/** A server on a {@linkcode TestSocket}, a tap on what it writes, and what its handler saw. */
function setUp(
  options: H2ServerOptions = {},
  { delayMs = 0, mode = "pull" as "pull" | "push", hold = false } = {},
) {
  const pipe = new TestSocket();
  if (hold) pipe.hold();
  const tap = new FrameTap(pipe.outgoing);
  const decoder = new HpackDecoder();
  const seen: Seen[] = [];
  const reasons: string[] = [];
  const server = new H2ServerConnection(pipe.socket(mode), async (request) => {
    seen.push({ path: request.path, headers: request.headers });
    if (delayMs) await sleep(delayMs);
    return { status: 200, headers: [["content-type", "text/plain"]], body: text.encode("ok") };
  }, { ...options, onClose: (r) => reasons.push(r) });
  const send = (bytes: Uint8Array) => mode === "pull" ? pipe.send(bytes) : server.receive(bytes);
  /** The status of the response HEADERS on stream `id`, and whether it ended the stream. */
  const statusOf = async (id: number) => {
    const h = await tap.expect((f) => f.type === HEADERS && f.id === id, `HEADERS ${id}`);
    const fields: [string, string][] = [];
    decoder.decode(h.payload, (n, v) => fields.push([n, v]));
    return { status: fields.find(([n]) => n === ":status")?.[1], end: h.flags & END_STREAM };
  };
  return { pipe, tap, server, seen, reasons, send, statusOf };
}

/** A server past the preface and the SETTINGS exchange (the client has ACKed ours). */
function started(options: H2ServerOptions = {}, extra: Parameters<typeof setUp>[1] = {}) {
  const t = setUp(options, extra);
  t.send(PREFACE);
  t.send(frame(SETTINGS, 0, 0));
  t.send(frame(SETTINGS, ACK, 0));
  return t;
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("H2ServerConnection: decoded header list cap", () => {
  it("answers an HPACK bomb with 431 unseen by the handler, keeps the table in step, and ends a repeat offender with GOAWAY(ENHANCE_YOUR_CALM)", async () => {
    const { send, seen, reasons, tap, statusOf } = started();
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, bomb("GET", "/bomb1", 3_000)));
    expect(await statusOf(1)).toEqual({ status: "431", end: END_STREAM });
    // The bomb's entry is in the server's table: a normal request refers to it (index 62).
    send(
      frame(HEADERS, END_HEADERS | END_STREAM, 3, Uint8Array.from([...head("GET", "/ok"), 0xbe])),
    );
    expect(await statusOf(3)).toEqual({ status: "200", end: 0 });
    expect(seen).toEqual([{ path: "/ok", headers: [["x-bomb", BIG]] }]);
    // Offences 2 and 3: the third ends the connection, after its own 431.
    send(frame(HEADERS, END_HEADERS | END_STREAM, 5, bomb("GET", "/bomb2", 3_000, 62)));
    expect((await statusOf(5)).status).toBe("431");
    send(frame(HEADERS, END_HEADERS | END_STREAM, 7, bomb("GET", "/bomb3", 3_000, 62)));
    expect((await statusOf(7)).status).toBe("431");
    const goaway = await tap.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect(codeOf(goaway)).toBe(ENHANCE_YOUR_CALM);
    expect(await tap.ended()).toBe(true);
    expect(MAX_OFFENCES).toBe(3);
    expect(reasons[0]).toMatch(/header list over SETTINGS_MAX_HEADER_LIST_SIZE \(offence 3\)/);
    expect(seen.map((s) => s.path)).toEqual(["/ok"]);
  });

  it("advertises the cap it enforces, and takes a list just under it", async () => {
    const { send, tap, seen, statusOf } = started({ maxHeaderListSize: 1_000 });
    const settings = await tap.expect((f) => f.type === SETTINGS && !(f.flags & ACK), "SETTINGS");
    const values = new Map<number, number>();
    for (let at = 0; at < settings.payload.length; at += 6) {
      const view = new DataView(settings.payload.buffer, at);
      values.set(view.getUint16(0), view.getUint32(2));
    }
    expect(values.get(6)).toBe(1_000); // SETTINGS_MAX_HEADER_LIST_SIZE
    // :method GET (42) + :scheme https (44) + :path /x (39) + x-pad (5 + n + 32) = 1 000.
    const fits = (n: number) => {
      const out = head("GET", "/x");
      out.push(0x00);
      pushString(out, "x-pad");
      pushString(out, "p".repeat(n));
      return Uint8Array.from(out);
    };
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, fits(1_000 - 42 - 44 - 39 - 37)));
    expect((await statusOf(1)).status).toBe("200");
    send(frame(HEADERS, END_HEADERS | END_STREAM, 3, fits(1_000 - 42 - 44 - 39 - 37 + 1)));
    expect((await statusOf(3)).status).toBe("431");
    expect(seen.length).toBe(1);
  });

  it("answers an oversized POST head with 431 and RST_STREAM(NO_ERROR), ignores its body, and carries on", async () => {
    const { send, tap, seen, statusOf } = started();
    send(frame(HEADERS, END_HEADERS, 1, bomb("POST", "/big", 100)));
    expect(await statusOf(1)).toEqual({ status: "431", end: END_STREAM });
    const rst = await tap.expect((f) => f.type === RST_STREAM && f.id === 1, "RST_STREAM 1");
    expect(codeOf(rst)).toBe(NO_ERROR);
    send(frame(DATA, END_STREAM, 1, Uint8Array.of(1, 2, 3))); // in flight: ignored
    send(frame(HEADERS, END_HEADERS | END_STREAM, 3, Uint8Array.from(head("GET", "/next"))));
    expect((await statusOf(3)).status).toBe("200");
    expect(seen.map((s) => s.path)).toEqual(["/next"]);
  });

  it("answers 431 to oversized trailers on a POST, without calling the handler", async () => {
    const { send, seen, statusOf } = started();
    send(frame(HEADERS, END_HEADERS, 1, Uint8Array.from(head("POST", "/t"))));
    send(frame(DATA, 0, 1, Uint8Array.of(1, 2)));
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, Uint8Array.from(bombFields(10))));
    expect((await statusOf(1)).status).toBe("431");
    expect(seen).toEqual([]);
  });
});

describe("H2ServerConnection: request read deadline", () => {
  it("resets a silent half-open stream after requestTimeoutMs, then closes the connection with GOAWAY", async () => {
    const { send, tap, seen, reasons } = started({ requestTimeoutMs: 100 });
    const start = Date.now();
    send(frame(HEADERS, END_HEADERS, 1, Uint8Array.from(head("GET", "/silent"))));
    const rst = await tap.expect((f) => f.type === RST_STREAM && f.id === 1, "RST_STREAM 1", 2_000);
    expect(codeOf(rst)).toBe(CANCEL);
    expect(Date.now() - start).toBeGreaterThanOrEqual(95);
    const goaway = await tap.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect([codeOf(goaway), new DataView(goaway.payload.buffer).getUint32(0)]).toEqual([
      NO_ERROR,
      1,
    ]);
    expect(await tap.ended()).toBe(true);
    expect(Date.now() - start).toBeLessThan(1_000);
    expect(reasons).toEqual(["connection drained"]);
    expect(seen).toEqual([]);
  });

  it("resets a stalled body but keeps a connection that is answering others", async () => {
    const { send, tap, seen, reasons, statusOf } = started({ requestTimeoutMs: 100 }, {
      delayMs: 250,
    });
    send(frame(HEADERS, END_HEADERS, 1, Uint8Array.from(head("POST", "/stalled"))));
    send(frame(DATA, 0, 1, Uint8Array.of(1, 2, 3)));
    await sleep(50);
    send(frame(HEADERS, END_HEADERS | END_STREAM, 3, Uint8Array.from(head("GET", "/slow"))));
    const rst = await tap.expect((f) => f.type === RST_STREAM && f.id === 1, "RST_STREAM 1");
    expect(codeOf(rst)).toBe(CANCEL);
    expect((await statusOf(3)).status).toBe("200");
    expect(tap.frames.some((f) => f.type === GOAWAY)).toBe(false);
    // Still open: a new request is answered.
    send(frame(HEADERS, END_HEADERS | END_STREAM, 5, Uint8Array.from(head("GET", "/again"))));
    expect((await statusOf(5)).status).toBe("200");
    expect(seen.map((s) => s.path)).toEqual(["/slow", "/again"]);
    expect(reasons).toEqual([]);
  });

  it("keeps bodies that complete within the deadline, on one timer for the connection", async () => {
    const { send, seen, statusOf } = started({ requestTimeoutMs: 150 });
    const spy = vi.spyOn(globalThis, "setTimeout");
    for (let i = 0; i < 40; i++) {
      const id = 2 * i + 1;
      send(frame(HEADERS, END_HEADERS, id, Uint8Array.from(head("POST", `/p${i}`))));
      if (i % 2 === 0) { for (let t = 0; t < 20; t++) await Promise.resolve(); }
      send(frame(DATA, END_STREAM, id, Uint8Array.of(i)));
    }
    for (let t = 0; t < 100; t++) await Promise.resolve();
    expect(seen.length).toBe(40);
    // The preface deadline's timer, still armed, serves the streams too: no timer per body.
    expect(spy.mock.calls.length).toBeLessThanOrEqual(1);
    spy.mockRestore();
    for (let i = 0; i < 40; i++) expect((await statusOf(2 * i + 1)).status).toBe("200");
    await sleep(200); // past the deadline of all of them: nothing is reset
    send(frame(HEADERS, END_HEADERS | END_STREAM, 81, Uint8Array.from(head("GET", "/after"))));
    expect((await statusOf(81)).status).toBe("200");
  });

  it("ends a connection whose header block never ends (CONTINUATION pending) after the deadline", async () => {
    const { send, tap, reasons } = started({ requestTimeoutMs: 100 });
    const start = Date.now();
    send(frame(HEADERS, 0, 1, Uint8Array.from(head("GET", "/never"))));
    const goaway = await tap.expect((f) => f.type === GOAWAY, "GOAWAY", 2_000);
    expect(codeOf(goaway)).toBe(ENHANCE_YOUR_CALM);
    expect(Date.now() - start).toBeGreaterThanOrEqual(95);
    expect(await tap.ended()).toBe(true);
    expect(reasons[0]).toMatch(/header block on stream 1 unfinished after 100 ms/);
  });

  for (
    const [what, bytes] of [
      ["half a preface", PREFACE.subarray(0, 10)],
      ["a preface but no SETTINGS", PREFACE],
    ] as const
  ) {
    it(`ends a connection that sends ${what} after the deadline`, async () => {
      const { send, tap, reasons } = setUp({ requestTimeoutMs: 100 });
      send(bytes);
      expect(await tap.ended(2_000)).toBe(true);
      expect(reasons[0]).toMatch(/no SETTINGS from the client in 100 ms/);
    });
  }

  it("cuts requestTimeoutMs to 15 s (seen in the preface deadline's timer)", () => {
    const delays: number[] = [];
    const spy = vi.spyOn(globalThis, "setTimeout").mockImplementation(
      ((
        _fn: () => void,
        ms?: number,
      ) => {
        delays.push(ms ?? 0);
        return 0 as unknown as ReturnType<typeof setTimeout>;
      }) as typeof setTimeout,
    );
    const pipe = new TestSocket();
    new H2ServerConnection(pipe.socket(), () => Promise.reject(new Error("no")), {
      requestTimeoutMs: 60_000,
      idleTimeoutMs: 99_000,
    });
    spy.mockRestore();
    expect(delays).toContain(15_000);
    expect(delays).not.toContain(60_000);
    pipe.socket().close();
  });
});

describe("H2ServerConnection: streams, flow control", () => {
  it("refuses streams over the limit, and counts them as offences once the client ACKed the limit", async () => {
    const { send, tap, reasons } = started({ maxStreams: 1 }, { delayMs: 300 });
    for (const id of [1, 3, 5, 7]) {
      send(frame(HEADERS, END_HEADERS | END_STREAM, id, Uint8Array.from(head("GET", `/${id}`))));
    }
    for (const id of [3, 5, 7]) {
      const rst = await tap.expect((f) => f.type === RST_STREAM && f.id === id, `RST ${id}`);
      expect(codeOf(rst)).toBe(7); // REFUSED_STREAM
    }
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(ENHANCE_YOUR_CALM);
    expect(reasons[0]).toMatch(/streams over SETTINGS_MAX_CONCURRENT_STREAMS \(offence 3\)/);
  });

  it("resets a stream whose DATA (padding included) goes past the 65 535-byte window, and carries on", async () => {
    const { send, tap, seen, statusOf } = started();
    send(frame(HEADERS, END_HEADERS, 1, Uint8Array.from(head("POST", "/pad"))));
    // Four padded frames of 16 384 bytes: 64 512 body bytes (under the 65 535 body cap), but
    // 65 536 bytes of window.
    for (let i = 0; i < 4; i++) {
      const payload = new Uint8Array(16_384);
      payload[0] = 255; // pad length: 16 128 body bytes, then 255 of padding
      send(frame(DATA, PADDED, 1, payload));
    }
    const rst = await tap.expect((f) => f.type === RST_STREAM && f.id === 1, "RST_STREAM 1");
    expect(codeOf(rst)).toBe(FLOW_CONTROL_ERROR);
    send(frame(HEADERS, END_HEADERS | END_STREAM, 3, Uint8Array.from(head("GET", "/next"))));
    expect((await statusOf(3)).status).toBe("200");
    expect(seen.map((s) => s.path)).toEqual(["/next"]);
  });

  it("still answers a body of exactly 65 535 bytes", async () => {
    const { send, statusOf } = started({ maxBodyBytes: 65_535 });
    send(frame(HEADERS, END_HEADERS, 1, Uint8Array.from(head("POST", "/full"))));
    for (const n of [16_384, 16_384, 16_384, 16_383]) {
      send(frame(DATA, n === 16_383 ? END_STREAM : 0, 1, new Uint8Array(n)));
    }
    expect((await statusOf(1)).status).toBe("200");
  });
});

describe("H2ServerConnection: outbox bounds", () => {
  it("stops reading a socket while the outbox is over its high-water mark, and resumes once written", async () => {
    const { pipe, send, tap } = started({ writeHighWaterMark: 1_024 }, { hold: true });
    for (let i = 0; i < 200; i++) {
      send(frame(PING, 0, 0, Uint8Array.of(0, 0, 0, 0, 0, 0, i >> 8, i)));
    }
    await sleep(50);
    const reads = pipe.reads;
    expect(pipe.bytesRead).toBeLessThan(PREFACE.length + 27 + 200 * 17); // not all read
    await sleep(50);
    expect(pipe.reads).toBe(reads); // held: no read in flight grows
    pipe.release();
    for (let i = 0; i < 200; i++) {
      const pong = await tap.expect((f) => f.type === PING, `PING ACK ${i}`);
      expect([pong.flags & ACK, pong.payload[7]]).toEqual([ACK, i & 0xff]);
    }
  });

  it("pauses and resumes a socket that pushes", async () => {
    const { pipe, send, tap } = started({ writeHighWaterMark: 1_024 }, {
      hold: true,
      mode: "push",
    });
    for (let i = 0; i < 100; i++) send(frame(PING, 0, 0, new Uint8Array(8)));
    expect([pipe.pauses, pipe.paused]).toEqual([1, true]);
    pipe.release();
    for (let i = 0; i < 100; i++) await tap.expect((f) => f.type === PING, `PING ACK ${i}`);
    expect([pipe.pauses, pipe.resumes, pipe.paused]).toEqual([1, 1, false]);
  });

  it("ends the connection when a write does not finish within writeTimeoutMs", async () => {
    const { pipe, reasons } = started({ writeTimeoutMs: 60 }, { hold: true });
    await sleep(30);
    expect(reasons).toEqual([]);
    await sleep(100);
    expect(reasons).toEqual(["write failed: write not finished after 60 ms"]);
    expect(pipe.closed).toBe(true);
  });

  it("writes the GOAWAY of a connection that fails while a write is in flight", async () => {
    const { pipe, send, tap, reasons } = setUp({}, { hold: true });
    send(PREFACE);
    send(frame(DATA, 0, 0, new Uint8Array(1))); // DATA on stream 0: a connection error
    await sleep(20);
    expect(reasons[0]).toMatch(/DATA on stream 0/);
    expect(pipe.closed).toBe(false); // waiting for the SETTINGS write in flight
    pipe.release();
    await tap.expect((f) => f.type === SETTINGS, "our SETTINGS");
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(PROTOCOL_ERROR);
    expect(await tap.ended()).toBe(true);
  });
});

describe("H2ServerConnection: the hot path", () => {
  it("arms no timer for GETs answered at once, one after another or together", async () => {
    const { send, seen, statusOf, pipe } = started();
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, Uint8Array.from(head("GET", "/warm"))));
    expect((await statusOf(1)).status).toBe("200");
    const spy = vi.spyOn(globalThis, "setTimeout");
    let id = 3;
    for (let round = 0; round < 20; round++) {
      const batch = round % 2 === 0 ? 1 : 10;
      for (let i = 0; i < batch; i++, id += 2) {
        send(frame(HEADERS, END_HEADERS | END_STREAM, id, Uint8Array.from(head("GET", `/${id}`))));
      }
      const written = pipe.bytesWritten;
      for (let i = 0; i < 50; i++) await Promise.resolve(); // microtasks only
      expect(seen.length).toBe((id - 1) / 2); // every request so far was answered...
      expect(pipe.bytesWritten).toBeGreaterThan(written); // ...and written
    }
    const calls = spy.mock.calls.length;
    spy.mockRestore();
    expect(calls).toBe(0);
    for (let i = 3; i < id; i += 2) expect((await statusOf(i)).status).toBe("200");
  });
});
