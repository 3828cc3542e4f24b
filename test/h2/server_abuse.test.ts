/**
 * The HTTP/2 server connection against clients that abuse what the protocol lets them do
 * (issue #19), on an in-memory pipe: replies parked against a window that never opens (a stall
 * deadline and a byte cap), request bodies fed in tiny DATA frames (one buffer per stream, caps
 * on buffered bytes and on DATA frames), SETTINGS floods (entries and rate), rapid resets over
 * a time window, streams reset in the read that completed them (never started), and malformed
 * fields and `:authority` (400, RFC 9113 §8.2.1).
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  H2ServerConnection,
  type H2ServerOptions,
  RESET_BURST,
  RESET_RATE,
} from "../../src/h2/server.ts";
import { HpackDecoder } from "../../src/h2/hpack_decode.ts";
import { pushInt, pushString } from "../../src/h2/hpack_encode.ts";
import { MAX_SETTINGS_ENTRIES, SETTINGS_BURST } from "../../src/h2/settings.ts";
import { encodeFrame as frame, type Frame, FrameTap, TestSocket } from "../support/h2_pipe.ts";
import type { ServerRequest } from "../../src/serve/exchange.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, GOAWAY = 7, WINDOW_UPDATE = 8;
const END_STREAM = 1, ACK = 1, END_HEADERS = 4;
const NO_ERROR = 0, CANCEL = 8, ENHANCE_YOUR_CALM = 11;
const INITIAL_WINDOW_SIZE = 4;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const codeOf = (f: Frame) => new DataView(f.payload.buffer).getUint32(f.type === GOAWAY ? 4 : 0);

/** A request head: :method, :scheme https, :path, then literal fields (names never indexed). */
function head(method: "GET" | "POST", path: string, fields: [string, string][] = []): Uint8Array {
  const out = [method === "GET" ? 0x82 : 0x83, 0x87];
  pushInt(out, 4, 4, 0);
  pushString(out, path);
  for (const [name, value] of fields) {
    out.push(0x00);
    pushString(out, name);
    pushString(out, value);
  }
  return Uint8Array.from(out);
}

function settings(...entries: [number, number][]): Uint8Array {
  const out = new Uint8Array(entries.length * 6);
  const view = new DataView(out.buffer);
  entries.forEach(([key, value], i) => {
    view.setUint16(i * 6, key);
    view.setUint32(i * 6 + 2, value);
  });
  return frame(SETTINGS, 0, 0, out);
}

function windowUpdate(id: number, increment: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, increment);
  return frame(WINDOW_UPDATE, 0, id, out);
}

const rst = (id: number) => frame(RST_STREAM, 0, id, Uint8Array.of(0, 0, 0, CANCEL));

interface Seen {
  path: string;
  body: Uint8Array | undefined;
  /** Read at once, unless the handler was told to leave it (then read it from `request`). */
  signal?: AbortSignal;
  request: ServerRequest;
}

/**
 * A server past the preface (the client's SETTINGS are `clientSettings`, and it ACKs ours); its
 * handler answers `bodyBytes` bytes after `delayMs` (paths starting with /slow).
 */
function started(
  options: H2ServerOptions = {},
  { clientSettings = [] as [number, number][], bodyBytes = 2, delayMs = 0, readSignal = true } = {},
) {
  const pipe = new TestSocket();
  const tap = new FrameTap(pipe.outgoing);
  const decoder = new HpackDecoder();
  const seen: Seen[] = [];
  const reasons: string[] = [];
  const server = new H2ServerConnection(pipe.socket(), async (request) => {
    seen.push({
      path: request.path,
      body: request.body,
      signal: readSignal ? request.signal : undefined,
      request,
    });
    if (request.path.startsWith("/slow")) await sleep(delayMs);
    return { status: 200, headers: [], body: new Uint8Array(bodyBytes).fill(0x61) };
  }, { ...options, onClose: (r) => reasons.push(r) });
  const send = (...parts: Uint8Array[]) => {
    const bytes = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    pipe.send(bytes); // one read
  };
  send(PREFACE, settings(...clientSettings), frame(SETTINGS, ACK, 0));
  const statusOf = async (id: number) => {
    const h = await tap.expect((f) => f.type === HEADERS && f.id === id, `HEADERS ${id}`);
    let status: string | undefined;
    decoder.decode(h.payload, (n, v) => {
      if (n === ":status") status = v;
    });
    return status;
  };
  return { pipe, tap, server, seen, reasons, send, statusOf };
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe("H2ServerConnection: replies waiting for the client's window", () => {
  it("resets a reply that makes no progress for requestTimeoutMs, then closes a connection left with nothing else", async () => {
    const { send, tap, statusOf, reasons } = started({ requestTimeoutMs: 100 }, {
      clientSettings: [[INITIAL_WINDOW_SIZE, 0]],
    });
    const start = Date.now();
    for (const id of [1, 3, 5]) {
      send(frame(HEADERS, END_HEADERS | END_STREAM, id, head("GET", "/z")));
    }
    for (const id of [1, 3, 5]) expect(await statusOf(id)).toBe("200");
    for (const id of [1, 3, 5]) {
      const reset = await tap.expect((f) => f.type === RST_STREAM && f.id === id, `RST ${id}`);
      expect(codeOf(reset)).toBe(CANCEL);
    }
    expect(Date.now() - start).toBeGreaterThanOrEqual(95);
    expect(tap.frames.some((f) => f.type === DATA)).toBe(false);
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(NO_ERROR);
    expect(await tap.ended()).toBe(true);
    expect(reasons).toEqual(["connection drained"]);
  });

  it("keeps a reply that makes progress, however slowly, and sends it whole", async () => {
    const { send, tap, statusOf, reasons } = started({ requestTimeoutMs: 100 }, {
      clientSettings: [[INITIAL_WINDOW_SIZE, 0]],
      bodyBytes: 6,
    });
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, head("GET", "/drip")));
    expect(await statusOf(1)).toBe("200");
    let bytes = 0;
    for (let i = 0; i < 6; i++) { // 6 × 60 ms: past the deadline in total, never between bytes
      await sleep(60);
      send(windowUpdate(1, 1));
      const data = await tap.expect((f) => f.type === DATA && f.id === 1, `byte ${i}`);
      bytes += data.payload.length;
    }
    expect(bytes).toBe(6);
    expect(tap.frames.some((f) => f.type === RST_STREAM || f.type === GOAWAY)).toBe(false);
    expect(reasons).toEqual([]);
  });

  it("resets a stalled reply but keeps a connection that is answering others", async () => {
    const { send, tap, statusOf, reasons } = started({ requestTimeoutMs: 100 }, {
      clientSettings: [[INITIAL_WINDOW_SIZE, 0]],
      delayMs: 250,
    });
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, head("GET", "/stalled")));
    send(frame(HEADERS, END_HEADERS | END_STREAM, 3, head("GET", "/slow")), windowUpdate(3, 100));
    const reset = await tap.expect((f) => f.type === RST_STREAM && f.id === 1, "RST 1");
    expect(codeOf(reset)).toBe(CANCEL);
    expect(await statusOf(3)).toBe("200");
    await tap.expect(
      (f) => f.type === DATA && f.id === 3 && (f.flags & END_STREAM) !== 0,
      "DATA 3",
    );
    expect(tap.frames.some((f) => f.type === GOAWAY)).toBe(false);
    expect(reasons).toEqual([]);
  });

  it("parks reply bytes up to maxParkedBytes and resets a reply that would go over, at once", async () => {
    const { send, tap, statusOf } = started({ maxParkedBytes: 1_000, requestTimeoutMs: 5_000 }, {
      clientSettings: [[INITIAL_WINDOW_SIZE, 0]],
      bodyBytes: 400,
    });
    for (const id of [1, 3, 5, 7]) {
      send(frame(HEADERS, END_HEADERS | END_STREAM, id, head("GET", "/p")));
    }
    for (const id of [5, 7]) { // 800 bytes parked: 400 more would be 1 200
      const reset = await tap.expect((f) => f.type === RST_STREAM && f.id === id, `RST ${id}`);
      expect(codeOf(reset)).toBe(CANCEL);
    }
    expect(tap.frames.some((f) => f.type === RST_STREAM)).toBe(false); // not 1 or 3
    send(settings([INITIAL_WINDOW_SIZE, 65_535])); // the window opens: the parked ones go
    for (const id of [1, 3]) {
      expect(await statusOf(id)).toBe("200");
      const data = await tap.expect((f) => f.type === DATA && f.id === id, `DATA ${id}`);
      expect([data.payload.length, data.flags & END_STREAM]).toEqual([400, END_STREAM]);
    }
    // Room again for another parked reply once those left.
    send(settings([INITIAL_WINDOW_SIZE, 0]));
    send(frame(HEADERS, END_HEADERS | END_STREAM, 9, head("GET", "/p")));
    expect(await statusOf(9)).toBe("200");
    await sleep(20);
    expect(tap.frames.some((f) => f.type === RST_STREAM && f.id === 9)).toBe(false);
  });

  it("counts what is left of a parked reply after partial progress", async () => {
    const { send, tap, statusOf } = started({ maxParkedBytes: 1_000, requestTimeoutMs: 5_000 }, {
      clientSettings: [[INITIAL_WINDOW_SIZE, 0]],
      bodyBytes: 400,
    });
    for (const id of [1, 3]) send(frame(HEADERS, END_HEADERS | END_STREAM, id, head("GET", "/p")));
    for (const id of [1, 3]) expect(await statusOf(id)).toBe("200");
    send(windowUpdate(1, 300)); // 100 left of stream 1: 500 parked
    await tap.expect((f) => f.type === DATA && f.id === 1, "300 bytes of stream 1");
    send(frame(HEADERS, END_HEADERS | END_STREAM, 5, head("GET", "/p"))); // 900: fits
    expect(await statusOf(5)).toBe("200");
    send(frame(HEADERS, END_HEADERS | END_STREAM, 7, head("GET", "/p"))); // 1 300: over
    const reset = await tap.expect((f) => f.type === RST_STREAM, "a RST_STREAM");
    expect(reset.id).toBe(7);
    send(windowUpdate(1, 100)); // stream 1 done: 800 parked
    await tap.expect((f) => f.type === DATA && f.id === 1 && (f.flags & END_STREAM) !== 0, "end 1");
    send(frame(HEADERS, END_HEADERS | END_STREAM, 9, head("GET", "/p"))); // 1 200: over
    expect((await tap.expect((f) => f.type === RST_STREAM, "a RST_STREAM")).id).toBe(9);
  });

  it("takes the last INITIAL_WINDOW_SIZE of a SETTINGS frame, applied once", async () => {
    const { send, tap, statusOf } = started({}, {
      clientSettings: [[INITIAL_WINDOW_SIZE, 1_000], [INITIAL_WINDOW_SIZE, 0]],
    });
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, head("GET", "/a")));
    expect(await statusOf(1)).toBe("200");
    await sleep(20);
    expect(tap.frames.some((f) => f.type === DATA && f.id === 1)).toBe(false); // parked at 0
    send(settings([INITIAL_WINDOW_SIZE, 0], [INITIAL_WINDOW_SIZE, 1_000]));
    await tap.expect((f) => f.type === DATA && f.id === 1, "DATA 1");
  });
});

describe("H2ServerConnection: request bodies", () => {
  it("gathers a body sent a byte per DATA frame into one buffer", async () => {
    const { send, seen, statusOf } = started();
    send(frame(HEADERS, END_HEADERS, 1, head("POST", "/bytes")));
    const frames = Array.from(
      { length: 300 },
      (_, i) => frame(DATA, 0, 1, Uint8Array.of(i & 0xff)),
    );
    send(...frames, frame(DATA, END_STREAM, 1));
    expect(await statusOf(1)).toBe("200");
    expect([...seen[0].body!]).toEqual(Array.from({ length: 300 }, (_, i) => i & 0xff));
  });

  it("takes a body as long as its content-length in one buffer, and a longer one too", async () => {
    const { send, seen, statusOf } = started();
    send(frame(HEADERS, END_HEADERS, 1, head("POST", "/exact", [["content-length", "5"]])));
    send(
      frame(DATA, 0, 1, Uint8Array.of(1, 2)),
      frame(DATA, END_STREAM, 1, Uint8Array.of(3, 4, 5)),
    );
    send(frame(HEADERS, END_HEADERS, 3, head("POST", "/longer", [["content-length", "2"]])));
    send(frame(DATA, 0, 3, Uint8Array.of(1, 2)), frame(DATA, END_STREAM, 3, Uint8Array.of(3)));
    expect(await statusOf(1)).toBe("200");
    expect(await statusOf(3)).toBe("200");
    expect(seen.map((s) => [...s.body!])).toEqual([[1, 2, 3, 4, 5], [1, 2, 3]]);
  });

  it("ends a connection past maxDataFrames on its open streams with GOAWAY(ENHANCE_YOUR_CALM)", async () => {
    const { send, tap, seen, reasons } = started({ maxDataFrames: 50 });
    for (const id of [1, 3]) send(frame(HEADERS, END_HEADERS, id, head("POST", "/tiny")));
    send(...Array.from({ length: 25 }, (_, i) => frame(DATA, 0, i % 2 ? 3 : 1, Uint8Array.of(1))));
    send(frame(DATA, 0, 1)); // empty frames count too
    await sleep(10);
    expect(reasons).toEqual([]); // 26 frames so far
    send(...Array.from({ length: 25 }, () => frame(DATA, 0, 3)));
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(ENHANCE_YOUR_CALM);
    expect(reasons[0]).toMatch(/over 50 DATA frames on the open streams/);
    expect(seen).toEqual([]);
  });

  it("counts only the DATA frames of streams still open", async () => {
    const { send, reasons, statusOf } = started({ maxDataFrames: 50 });
    for (let i = 0; i < 10; i++) {
      const id = 2 * i + 1;
      send(frame(HEADERS, END_HEADERS, id, head("POST", "/ok")));
      send(...Array.from({ length: 9 }, () => frame(DATA, 0, id, Uint8Array.of(1))));
      send(frame(DATA, END_STREAM, id, Uint8Array.of(2)));
      expect(await statusOf(id)).toBe("200");
    }
    expect(reasons).toEqual([]);
  });

  it("ends a connection whose bodies being received go over maxBufferedBodyBytes", async () => {
    const { send, tap, reasons } = started({ maxBufferedBodyBytes: 1_000 });
    // Each declares 600 bytes and sends one: its buffer is made 600 bytes at once.
    send(frame(HEADERS, END_HEADERS, 1, head("POST", "/a", [["content-length", "600"]])));
    send(frame(DATA, 0, 1, Uint8Array.of(1)));
    await sleep(10);
    expect(reasons).toEqual([]);
    send(frame(HEADERS, END_HEADERS, 3, head("POST", "/b", [["content-length", "600"]])));
    send(frame(DATA, 0, 3, Uint8Array.of(1)));
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(ENHANCE_YOUR_CALM);
    expect(reasons[0]).toMatch(/bodies being received over 1000 bytes/);
  });
});

describe("H2ServerConnection: SETTINGS floods", () => {
  it(`acts on a SETTINGS frame of ${MAX_SETTINGS_ENTRIES} entries and ends a connection that sends more`, async () => {
    const { send, tap, reasons } = started();
    const entries = (n: number) =>
      Array.from({ length: n }, (_, i) => [INITIAL_WINDOW_SIZE, 65_535 - i] as [number, number]);
    send(settings(...entries(MAX_SETTINGS_ENTRIES)));
    for (const which of ["first", "second"]) {
      await tap.expect((f) => f.type === SETTINGS && (f.flags & ACK) !== 0, `${which} ACK`);
    }
    send(settings(...entries(MAX_SETTINGS_ENTRIES + 1)));
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(ENHANCE_YOUR_CALM);
    expect(reasons[0]).toMatch(/SETTINGS with 33 entries/);
  });

  it(`ends a connection that sends more than ${SETTINGS_BURST} SETTINGS frames at once`, async () => {
    const { send, tap, reasons } = started(); // its first SETTINGS counts
    send(...Array.from({ length: SETTINGS_BURST - 1 }, () => settings()));
    await sleep(10);
    expect(reasons).toEqual([]);
    send(settings());
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(ENHANCE_YOUR_CALM);
    expect(reasons[0]).toMatch(/SETTINGS frames over 32 at once/);
  });
});

describe("H2ServerConnection: stream resets", () => {
  it(`ends a connection that resets half its streams once past ${RESET_BURST} resets, whatever the ratio`, async () => {
    const { send, tap, reasons } = started({ maxStreams: 1_000 });
    // One answered request, one reset, alternately: the old guard (> 1 000 and more than half
    // of the streams opened) let this go on for ever.
    let id = 1;
    for (let i = 0; i < RESET_BURST + 10 && reasons.length === 0; i++) {
      send(frame(HEADERS, END_HEADERS | END_STREAM, id, head("GET", "/ok")));
      send(frame(HEADERS, END_HEADERS | END_STREAM, id + 2, head("GET", "/gone")), rst(id + 2));
      id += 4;
      if (i % 50 === 0) await sleep(1);
    }
    expect(codeOf(await tap.expect((f) => f.type === GOAWAY, "GOAWAY"))).toBe(ENHANCE_YOUR_CALM);
    expect(reasons[0]).toMatch(/stream resets over 400 at once or 40 a second/);
  });

  it(`gives back ${RESET_RATE} resets a second`, async () => {
    let now = 1_000_000;
    vi.spyOn(Date, "now").mockImplementation(() => now);
    const { send, reasons } = started({ maxStreams: 1_000 });
    let id = 1;
    /** `n` streams opened and reset, each in one read; waits until the server read them. */
    const resets = async (n: number) => {
      for (let i = 0; i < n; i++, id += 2) {
        send(frame(HEADERS, END_HEADERS | END_STREAM, id, head("GET", "/r")), rst(id));
      }
      await sleep(20);
    };
    await resets(RESET_BURST);
    now += 10_000; // all back
    await resets(RESET_BURST);
    now += 1_000;
    await resets(RESET_RATE);
    expect(reasons).toEqual([]);
    await resets(1);
    expect(reasons[0]).toMatch(/stream resets over/);
  });

  it("never starts a request the client resets in the same read, and aborts one reset later", async () => {
    const { send, seen, tap } = started({}, { delayMs: 100 });
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, head("GET", "/never")), rst(1));
    send(frame(HEADERS, END_HEADERS, 3, head("POST", "/never-body")));
    send(frame(DATA, END_STREAM, 3, Uint8Array.of(1)), rst(3));
    send(frame(HEADERS, END_HEADERS | END_STREAM, 5, head("GET", "/slow-later")));
    await sleep(5);
    send(rst(5));
    await sleep(5);
    expect(seen.map((s) => s.path)).toEqual(["/slow-later"]);
    expect(seen[0].signal!.aborted).toBe(true);
    expect(tap.frames.some((f) => f.type === HEADERS)).toBe(false);
  });

  it("aborts a request's signal read only after the reset (made lazily, aborted already)", async () => {
    const { send, seen } = started({}, { delayMs: 100, readSignal: false });
    send(frame(HEADERS, END_HEADERS | END_STREAM, 1, head("GET", "/slow-unread")));
    await sleep(5);
    send(rst(1));
    await sleep(5);
    expect(seen.map((s) => s.path)).toEqual(["/slow-unread"]);
    const signal = seen[0].request.signal; // first read, after the abort
    expect(signal.aborted).toBe(true);
    expect(String(signal.reason)).toMatch(/reset/);
  });
});

describe("H2ServerConnection: malformed fields (RFC 9113 §8.2.1)", () => {
  const cases: [string, [string, string][], string][] = [
    ["an upper-case field name", [["X-Upper", "1"]], "400"],
    ["a field name with a space", [["x bad", "1"]], "400"],
    ["a value with a leading space", [["x-pad", " v"]], "400"],
    ["a value with a trailing tab", [["x-pad", "v\t"]], "400"],
    ["a value with a NUL", [["x-nul", "a\0b"]], "400"],
    ["a value with a CR", [["x-cr", "a\rb"]], "400"],
    ["an :authority with userinfo", [[":authority", "user@dns.example"]], "400"],
    ["an :authority with a space", [[":authority", "dns example"]], "400"],
    ["an :authority with a path", [[":authority", "dns.example/x"]], "400"],
    ["a host with a bad port", [["host", "dns.example:53a"]], "400"],
    ["an IPv6 :authority with a port", [[":authority", "[2001:db8::1]:443"]], "200"],
    ["a percent-encoded :authority", [[":authority", "dns%2Dexample:443"]], "200"],
    ["obs-text in a value", [["x-latin", "caf\xe9"]], "200"],
  ];
  for (const [what, fields, status] of cases) {
    it(`answers ${status} to ${what}${status === "400" ? ", without calling the handler" : ""}`, async () => {
      const { send, seen, statusOf } = started();
      send(frame(HEADERS, END_HEADERS | END_STREAM, 1, head("GET", "/f", fields)));
      expect(await statusOf(1)).toBe(status);
      expect(seen.length).toBe(status === "400" ? 0 : 1);
      send(frame(HEADERS, END_HEADERS | END_STREAM, 3, head("GET", "/next")));
      expect(await statusOf(3)).toBe("200"); // the connection goes on
    });
  }

  it("answers 400 to a malformed POST head and asks for no body (RST_STREAM NO_ERROR)", async () => {
    const { send, tap, statusOf } = started();
    send(frame(HEADERS, END_HEADERS, 1, head("POST", "/f", [["x-bad", "a\nb"]])));
    expect(await statusOf(1)).toBe("400");
    const reset = await tap.expect((f) => f.type === RST_STREAM && f.id === 1, "RST 1");
    expect(codeOf(reset)).toBe(NO_ERROR);
  });
});
