/**
 * The HTTP/2 server connection against a scripted client on an in-memory pipe: requests with
 * HPACK state carried between them, the stream limit, body caps, a reset flood, a CONTINUATION
 * flood, a bad preface, and random frames (nothing may throw; every handler call ends; the
 * connection closes). The same server under real clients (fetch, kdig, dig, h2load) is in
 * test/deno/doh_face.test.ts.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { H2ServerConnection } from "../../src/h2/server.ts";
import type { ServerRequest } from "../../src/serve/exchange.ts";
import type { H2Socket } from "../../src/h2/socket.ts";
import { HpackDecoder } from "../../src/h2/hpack_decode.ts";
import { FrameReader } from "../../src/h2/frames.ts";
import { concatBytes } from "../../src/bytes/concat.ts";
import {
  Channel,
  channelSocket,
  encodeFrame as frame,
  type Frame,
  FrameTap,
} from "../support/h2_pipe.ts";

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const DATA = 0, HEADERS = 1, RST_STREAM = 3, SETTINGS = 4, GOAWAY = 7, WINDOW_UPDATE = 8;
const CONTINUATION = 9;
const END_STREAM = 1, END_HEADERS = 4;
const text = new TextEncoder();

/** A literal with incremental indexing and a new name (so the server's table grows). */
function indexedLiteral(name: string, value: string): number[] {
  return [0x40, name.length, ...text.encode(name), value.length, ...text.encode(value)];
}

/** GET `path` as the first request: :method GET (2), :scheme https (7), :path and authority literals. */
function getBlock(path: string): Uint8Array {
  return Uint8Array.of(
    0x82,
    0x87,
    0x04,
    path.length,
    ...text.encode(path),
    ...indexedLiteral("x-client", "scripted"),
    0x41,
    9,
    ...text.encode("localhost"),
  );
}

class Client {
  readonly toServer = new Channel();
  readonly toClient = new Channel();
  readonly #tap = new FrameTap(this.toClient);
  readonly decoder = new HpackDecoder();

  socket(): H2Socket {
    return channelSocket(this.toServer, this.toClient);
  }

  send(bytes: Uint8Array) {
    this.toServer.push(bytes);
  }

  /** Takes the first server frame `match` accepts, waiting up to 1 s for one. */
  expect(match: (f: Frame) => boolean, what: string): Promise<Frame> {
    return this.#tap.expect(match, what);
  }
}

function setUp(options: { maxStreams?: number; maxBodyBytes?: number } = {}, delayMs = 0) {
  const client = new Client();
  const seen: ServerRequest[] = [];
  const reasons: string[] = [];
  const server = new H2ServerConnection(client.socket(), async (request) => {
    seen.push(request);
    if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
    return {
      status: 200,
      headers: [["content-type", "text/plain"], ["x-path", request.path]],
      body: text.encode(`${request.method} ${request.path} ${request.body?.length ?? 0}`),
    };
  }, { ...options, onClose: (r) => reasons.push(r) });
  client.send(PREFACE);
  client.send(frame(SETTINGS, 0, 0));
  return { client, server, seen, reasons };
}

async function responseOf(client: Client, id: number) {
  const h = await client.expect((f) => f.type === HEADERS && f.id === id, `HEADERS ${id}`);
  const fields: [string, string][] = [];
  client.decoder.decode(h.payload, (n, v) => fields.push([n, v]));
  let body = "";
  if (!(h.flags & END_STREAM)) {
    const d = await client.expect((f) => f.type === DATA && f.id === id, `DATA ${id}`);
    body = new TextDecoder().decode(d.payload);
  }
  return { fields, body };
}

describe("H2ServerConnection against a scripted client", () => {
  it("answers requests, keeping the HPACK table across them, and POST bodies", async () => {
    const { client, server, seen } = setUp();
    client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, getBlock("/one")));
    const first = await responseOf(client, 1);
    expect(first.fields).toContainEqual([":status", "200"]);
    expect(first.fields).toContainEqual(["x-path", "/one"]);
    expect(first.body).toBe("GET /one 0");
    // Second request: :method POST (3), refers to the dynamic entries (x-client at 63, the
    // authority at 62) the first request added.
    const block = Uint8Array.of(0x83, 0x87, 0x04, 4, ...text.encode("/two"), 0xbf, 0xbe);
    client.send(frame(HEADERS, END_HEADERS, 3, block));
    client.send(frame(DATA, 0, 3, Uint8Array.of(1, 2)));
    client.send(frame(DATA, END_STREAM, 3, Uint8Array.of(3)));
    const second = await responseOf(client, 3);
    expect(second.body).toBe("POST /two 3");
    expect(seen[1].headers).toContainEqual(["x-client", "scripted"]);
    expect(seen[1].authority).toBe("localhost");
    expect([...seen[1].body!]).toEqual([1, 2, 3]);
    server.destroy();
  });

  it("refuses streams past the limit with REFUSED_STREAM and answers the others", async () => {
    const { client, server } = setUp({ maxStreams: 2 }, 100);
    for (const id of [1, 3, 5]) {
      client.send(frame(HEADERS, END_HEADERS | END_STREAM, id, getBlock(`/s${id}`)));
    }
    const rst = await client.expect((f) => f.type === RST_STREAM, "RST_STREAM");
    expect(rst.id).toBe(5);
    expect(new DataView(rst.payload.buffer).getUint32(0)).toBe(7);
    expect((await responseOf(client, 1)).body).toBe("GET /s1 0");
    expect((await responseOf(client, 3)).body).toBe("GET /s3 0");
    server.destroy();
  });

  it("answers 413 to a body over the cap without calling the handler", async () => {
    const { client, server, seen } = setUp({ maxBodyBytes: 10 });
    client.send(frame(HEADERS, END_HEADERS, 1, Uint8Array.of(0x83, 0x87, 0x84, 0x41, 1, 0x78)));
    client.send(frame(DATA, 0, 1, new Uint8Array(11)));
    const res = await responseOf(client, 1);
    expect(res.fields).toContainEqual([":status", "413"]);
    expect(seen.length).toBe(0);
    server.destroy();
  });

  it("ends a connection that floods stream resets with GOAWAY(ENHANCE_YOUR_CALM)", async () => {
    const { client } = setUp();
    const rst = Uint8Array.of(0, 0, 0, 8);
    for (let i = 0; i < 1_100; i++) client.send(frame(RST_STREAM, 0, 2 * i + 1, rst));
    const goaway = await client.expect((f) => f.type === GOAWAY, "GOAWAY");
    expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(11);
  });

  for (const [what, size] of [["1 KiB", 1_024], ["empty", 0]] as const) {
    it(`ends a connection that sends endless ${what} CONTINUATION frames with GOAWAY(ENHANCE_YOUR_CALM)`, async () => {
      const { client, seen, reasons } = setUp();
      client.send(frame(HEADERS, 0, 1, getBlock("/cont")));
      for (let i = 0; i < 100; i++) client.send(frame(CONTINUATION, 0, 1, new Uint8Array(size)));
      const goaway = await client.expect((f) => f.type === GOAWAY, "GOAWAY");
      expect(new DataView(goaway.payload.buffer).getUint32(4)).toBe(11);
      expect(seen.length).toBe(0);
      expect(reasons[0]).toMatch(/header block over 16384 bytes|too many CONTINUATION/);
    });
  }

  for (
    const [what, increment, code] of [
      ["an increment of 0", 0, 1], // PROTOCOL_ERROR
      ["a window past 2^31-1", 0x7fff_ffff, 3], // FLOW_CONTROL_ERROR
    ] as const
  ) {
    it(`resets a stream whose WINDOW_UPDATE has ${what}, and answers the next one`, async () => {
      const { client, server } = setUp({}, 50);
      client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, getBlock("/w1")));
      const update = new Uint8Array(4);
      new DataView(update.buffer).setUint32(0, increment);
      client.send(frame(WINDOW_UPDATE, 0, 1, update));
      const rst = await client.expect((f) => f.type === RST_STREAM && f.id === 1, "RST_STREAM 1");
      expect(new DataView(rst.payload.buffer).getUint32(0)).toBe(code);
      client.send(frame(HEADERS, END_HEADERS | END_STREAM, 3, getBlock("/w3")));
      expect((await responseOf(client, 3)).body).toBe("GET /w3 0");
      server.destroy();
    });
  }

  it("closes a connection that does not start with the client preface", async () => {
    const client = new Client();
    const reasons: string[] = [];
    new H2ServerConnection(client.socket(), () => Promise.reject(new Error("no")), {
      onClose: (r) => reasons.push(r),
    });
    client.send(text.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await expect(client.expect(() => false, "anything")).rejects.toThrow(/closed|timed out/);
    expect(reasons[0]).toMatch(/preface/);
  });

  it("survives random frames: nothing throws, handler calls end, the connection closes", async () => {
    const arbFrame = fc.record({
      type: fc.oneof(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 10, max: 255 })),
      flags: fc.integer({ min: 0, max: 255 }),
      id: fc.oneof(fc.constantFrom(0, 1, 3, 5, 2), fc.integer({ min: 0, max: 0x7fffffff })),
      payload: fc.uint8Array({ maxLength: 48 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(arbFrame, { maxLength: 12 }), async (frames) => {
        let pending = 0;
        const client = new Client();
        const reasons: string[] = [];
        new H2ServerConnection(client.socket(), async (request) => {
          pending++;
          await new Promise((r) => setTimeout(r, 1));
          pending--;
          return { status: 200, headers: [], body: text.encode(request.path) };
        }, { onClose: (r) => reasons.push(r) });
        client.send(PREFACE);
        client.send(frame(HEADERS, END_HEADERS | END_STREAM, 1, getBlock("/fuzz")));
        for (const f of frames) client.send(frame(f.type, f.flags, f.id, f.payload));
        client.toServer.close();
        for (let i = 0; i < 50 && reasons.length === 0; i++) {
          await new Promise((r) => setTimeout(r, 2));
        }
        expect(reasons.length).toBe(1);
        await new Promise((r) => setTimeout(r, 5));
        expect(pending).toBe(0);
      }),
      { numRuns: 200 },
    );
  });
});

describe("H2ServerConnection write batching", () => {
  /** Frames in `bytes` (whole frames only: what one socket write carried). */
  function framesOf(bytes: Uint8Array): { type: number; id: number }[] {
    const out: { type: number; id: number }[] = [];
    new FrameReader().feed(bytes, (type, _flags, id) => void out.push({ type, id }));
    return out;
  }

  it("sends the answers to the requests of one read in one socket write", async () => {
    // A pushing socket, as the Deno edge's node:tls one: each write recorded, done at once.
    const writes: Uint8Array[] = [];
    const socket: H2Socket = {
      write(bytes) {
        writes.push(bytes.slice());
        return Promise.resolve();
      },
      close() {},
    };
    // Answered as a cache hit is: a promise already settled.
    const server = new H2ServerConnection(socket, (request) =>
      Promise.resolve({
        status: 200,
        headers: [["content-type", "application/dns-message"]] as [string, string][],
        body: text.encode(request.path),
      }));
    server.receive(PREFACE);
    server.receive(frame(SETTINGS, 0, 0));
    await new Promise((r) => setTimeout(r, 5));
    const before = writes.length;
    // Ten GETs in one read, as h2load -m 10 sends them (measured: ~10.5 answers per write at
    // 16x10, where dnsdist 1.7 makes ~2 writes per answer).
    const ids = [1, 3, 5, 7, 9, 11, 13, 15, 17, 19];
    const read = concatBytes(
      ids.map((id) => frame(HEADERS, END_HEADERS | END_STREAM, id, getBlock(`/dns-query?${id}`))),
    );
    server.receive(read);
    await new Promise((r) => setTimeout(r, 5));
    const after = writes.slice(before);
    expect(after.length).toBe(1);
    const sent = framesOf(after[0]);
    expect(sent.filter((f) => f.type === HEADERS).map((f) => f.id)).toEqual(ids);
    expect(sent.filter((f) => f.type === DATA).map((f) => f.id)).toEqual(ids);
    server.destroy();
  });
});
