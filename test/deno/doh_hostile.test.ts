/**
 * Hostile HTTP/2 and HTTP/1.1 clients against the running DoH face, over real TLS: HPACK header
 * bombs, a decoded header list over the advertised cap, CONTINUATION floods, requests left
 * half-open, and (issue #19) replies parked against a window that never opens, request bodies in
 * one-byte DATA frames, SETTINGS floods, rapid resets at any ratio, resets that must not reach
 * (or must cancel) the upstream query, and malformed authorities. Each time a good client on
 * another connection keeps getting answers, the process stays up, and the hostile connection is
 * closed, within the request deadline where one applies; what the bridge logs is checked too.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { uint32Bytes } from "../../src/bytes/uint.ts";
import { Code, Flag, FrameType, Setting } from "../../src/h2/frames.ts";
import { createLogger } from "../../src/log/mod.ts";
import { aRecords, buildQuery } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { Block, frame, RawH2, settingsPayload } from "../support/raw_h2.ts";
import { octetFor } from "../support/zone.ts";

const REQUEST_TIMEOUT_MS = 1_000;
const b64url = (bytes: Uint8Array) => bytes.toBase64({ alphabet: "base64url", omitPadding: true });
const dnsPath = (name: string) => `/dns-query?dns=${b64url(buildQuery(name, { id: 0 }))}`;

let pki: TestPki;
let upstream: LocalDohUpstream;
let bridge: Bridge;
let port: number;
let dir: string;
let good: Deno.HttpClient;
/** Every line the bridge logged (at debug and above). */
const logged: string[] = [];

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-hostile-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--rate-limit", "0"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
      ...["--doh-request-timeout", `${REQUEST_TIMEOUT_MS}ms`],
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  const logger = createLogger({ level: "debug", sink: (line) => logged.push(line) });
  bridge = await startBridge(parsed.config, { logger, sighup: false });
  port = bridge.doh!.addr.port;
  good = Deno.createHttpClient({ caCerts: [pki.ca.certPem], http1: false, http2: true });
});

afterAll(async () => {
  good?.close();
  await bridge?.shutdown();
  await upstream?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
});

/** A good client's queries, one after another, until `until` settles; every one must succeed. */
async function goodClientDuring(until: Promise<unknown>): Promise<{ answered: number }> {
  let done = false;
  until.finally(() => (done = true));
  let answered = 0;
  let i = 0;
  do {
    const name = `good${i++ % 20}.example.test`;
    const res = await fetch(`https://localhost:${port}${dnsPath(name)}`, {
      client: good,
      signal: AbortSignal.timeout(5_000),
    });
    expect(res.status).toBe(200);
    expect(aRecords(new Uint8Array(await res.arrayBuffer()))).toEqual([
      `192.0.2.${octetFor(name)}`,
    ]);
    answered++;
  } while (!done);
  return { answered };
}

/**
 * A block under the 16 KiB frame limit that decodes to ~50 MB: one 4 000-byte literal added to
 * the dynamic table, then one-byte references to it (index 62).
 */
function bombBlock(): Uint8Array {
  const block = new Block().get(dnsPath("bomb.example.test")).indexedLiteral(
    "x-b",
    "a".repeat(4_000),
  );
  const head = block.bytes();
  const refs = new Uint8Array(16_000 - head.length).fill(0x80 | 62);
  const out = new Uint8Array(head.length + refs.length);
  out.set(head);
  out.set(refs, head.length);
  return out;
}

describe("DoH face: hostile HTTP/2 clients", () => {
  it(
    "HPACK bombs on 4 connections: each gets 431 or a reset, then GOAWAY ENHANCE_YOUR_CALM; a good client is answered meanwhile",
    async () => {
      const bomb = bombBlock();
      const attack = async () => {
        const h2 = await RawH2.open(port, pki.ca.certPem);
        for (let id = 1; id < 400 && h2.closedAt === undefined; id += 2) {
          if (
            !await h2.write(frame(FrameType.Headers, Flag.EndHeaders | Flag.EndStream, id, bomb))
          ) {
            break;
          }
        }
        await Promise.race([h2.closed, new Promise((r) => setTimeout(r, 10_000))]);
        h2.close();
        return h2;
      };
      const attacks = Promise.all([attack(), attack(), attack(), attack()]);
      const { answered } = await goodClientDuring(attacks);
      const hostile = await attacks;
      expect(answered).toBeGreaterThan(0);
      for (const h2 of hostile) {
        expect(h2.closedAt, "the server closed the hostile connection").toBeDefined();
        expect(h2.goawayCode()).toBe(Code.EnhanceYourCalm);
        const refused = [...h2.statuses.values()].filter((s) => s === "431").length +
          h2.frames.filter((f) => f.type === FrameType.RstStream).length;
        expect(refused).toBeGreaterThan(0);
        expect([...h2.statuses.values()]).not.toContain("200");
      }
    },
    30_000,
  );

  it("a decoded header list over the cap gets 431 on its stream; the connection goes on", async () => {
    const h2 = await RawH2.open(port, pki.ca.certPem);
    try {
      // 5 × ~4 000 octets decoded from ~4 KB on the wire: over the advertised 16 KiB list size.
      // (A value must fit the 4 096-octet table to be referenced again.)
      const big = new Block().get(dnsPath("big.example.test"))
        .indexedLiteral("x-big", "b".repeat(4_000)).indexed(62).indexed(62).indexed(62).indexed(62)
        .bytes();
      await h2.write(frame(FrameType.Headers, Flag.EndHeaders | Flag.EndStream, 1, big));
      const name = "after-big.example.test";
      const ok = new Block().get(dnsPath(name)).bytes();
      await h2.write(frame(FrameType.Headers, Flag.EndHeaders | Flag.EndStream, 3, ok));
      await h2.waitFor((f) => f.type === FrameType.Data && f.id === 3, 5_000);
      expect(h2.statuses.get(1) ?? "reset").toMatch(/^(431|reset)$/);
      if (!h2.statuses.has(1)) {
        expect(h2.frames.some((f) => f.type === FrameType.RstStream && f.id === 1)).toBe(true);
      }
      expect(h2.statuses.get(3)).toBe("200");
      expect(h2.closedAt).toBeUndefined();
    } finally {
      h2.close();
    }
  });

  it(
    "a CONTINUATION flood ends the connection with GOAWAY; a good client is answered",
    async () => {
      const flood = async () => {
        const h2 = await RawH2.open(port, pki.ca.certPem);
        const head = new Block().get(dnsPath("flood.example.test")).bytes();
        await h2.write(frame(FrameType.Headers, 0, 1, head));
        for (let i = 0; i < 10_000 && h2.closedAt === undefined; i += 100) {
          const batch = Array.from({ length: 100 }, () => frame(FrameType.Continuation, 0, 1));
          if (!await h2.write(...batch)) break;
        }
        await Promise.race([h2.closed, new Promise((r) => setTimeout(r, 5_000))]);
        h2.close();
        return h2;
      };
      const floods = Promise.all([flood(), flood()]);
      const { answered } = await goodClientDuring(floods);
      expect(answered).toBeGreaterThan(0);
      for (const h2 of await floods) {
        expect(h2.closedAt).toBeDefined();
        expect(h2.goawayCode()).toBe(Code.EnhanceYourCalm);
      }
    },
    20_000,
  );

  it(
    "a stream opened and left silent is reset and its connection closed within the request deadline",
    async () => {
      const h2 = await RawH2.open(port, pki.ca.certPem);
      const started = Date.now();
      try {
        const head = new Block().post("/dns-query", 33).bytes();
        await h2.write(frame(FrameType.Headers, Flag.EndHeaders, 1, head)); // no END_STREAM, no body
        await Promise.race([h2.closed, new Promise((r) => setTimeout(r, 10_000))]);
        expect(h2.closedAt, "closed by the server").toBeDefined();
        expect(h2.closedAt! - started).toBeLessThan(REQUEST_TIMEOUT_MS + 4_000);
        expect(h2.closedAt! - started).toBeGreaterThanOrEqual(REQUEST_TIMEOUT_MS - 50);
        expect(h2.statuses.has(1)).toBe(false); // never answered
      } finally {
        h2.close();
      }
    },
    15_000,
  );

  it(
    "a header block left unfinished (no END_HEADERS) is closed within the request deadline",
    async () => {
      const h2 = await RawH2.open(port, pki.ca.certPem);
      const started = Date.now();
      try {
        await h2.write(frame(FrameType.Headers, 0, 1, new Block().get("/dns-query").bytes()));
        await Promise.race([h2.closed, new Promise((r) => setTimeout(r, 10_000))]);
        expect(h2.closedAt, "closed by the server").toBeDefined();
        expect(h2.closedAt! - started).toBeLessThan(REQUEST_TIMEOUT_MS + 4_000);
      } finally {
        h2.close();
      }
    },
    15_000,
  );
});

describe("DoH face: HTTP/2 clients that abuse flow control, resets and SETTINGS (issue #19)", () => {
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const get = (id: number, name: string) =>
    frame(
      FrameType.Headers,
      Flag.EndHeaders | Flag.EndStream,
      id,
      new Block().get(dnsPath(name)).bytes(),
    );
  const rst = (id: number) => frame(FrameType.RstStream, 0, id, uint32Bytes(Code.Cancel));

  it(
    "replies parked against a window that never opens are reset, and the connection closed, within the request deadline",
    async () => {
      const h2 = await RawH2.open(port, pki.ca.certPem, [[Setting.InitialWindowSize, 0]]);
      const started = Date.now();
      try {
        await h2.write(...[1, 3, 5, 7, 9].map((id) => get(id, `good${id}.example.test`)));
        await Promise.race([h2.closed, sleep(REQUEST_TIMEOUT_MS + 5_000)]);
        expect(h2.closedAt, "closed by the server").toBeDefined();
        expect(h2.closedAt! - started).toBeLessThan(REQUEST_TIMEOUT_MS + 4_000);
        for (const id of [1, 3, 5, 7, 9]) {
          expect(h2.statuses.get(id)).toBe("200");
          const reset = h2.frames.find((f) => f.type === FrameType.RstStream && f.id === id);
          expect(reset, `RST_STREAM ${id}`).toBeDefined();
        }
        expect(h2.frames.some((f) => f.type === FrameType.Data)).toBe(false);
        expect(h2.goawayCode()).toBe(Code.NoError);
      } finally {
        h2.close();
      }
    },
    15_000,
  );

  it(
    "request bodies in one-byte DATA frames on 128 streams end with GOAWAY ENHANCE_YOUR_CALM; a good client is answered",
    async () => {
      const flood = async () => {
        const h2 = await RawH2.open(port, pki.ca.certPem);
        const ids = Array.from({ length: 128 }, (_, i) => 2 * i + 1);
        await h2.write(
          ...ids.map((id) =>
            frame(
              FrameType.Headers,
              Flag.EndHeaders,
              id,
              new Block().post("/dns-query", 100).bytes(),
            )
          ),
        );
        for (let round = 0; round < 99 && h2.closedAt === undefined; round++) {
          const bytes = ids.map((id) => frame(FrameType.Data, 0, id, Uint8Array.of(round)));
          if (!await h2.write(...bytes)) break;
          await sleep(0);
        }
        await Promise.race([h2.closed, sleep(5_000)]);
        h2.close();
        return h2;
      };
      const flooding = flood();
      const { answered } = await goodClientDuring(flooding);
      const h2 = await flooding;
      expect(answered).toBeGreaterThan(0);
      expect(h2.closedAt, "closed by the server").toBeDefined();
      expect(h2.goawayCode()).toBe(Code.EnhanceYourCalm);
    },
    20_000,
  );

  it("a SETTINGS frame full of INITIAL_WINDOW_SIZE entries ends the connection with GOAWAY ENHANCE_YOUR_CALM", async () => {
    const entries = Array.from(
      { length: 2_730 },
      (_, i) => [Setting.InitialWindowSize, i] as const,
    );
    const h2 = await RawH2.open(port, pki.ca.certPem);
    try {
      await h2.write(...[1, 3, 5].map((id) => get(id, `good${id}.example.test`)));
      await h2.write(frame(FrameType.Settings, 0, 0, settingsPayload(entries)));
      await Promise.race([h2.closed, sleep(5_000)]);
      expect(h2.closedAt, "closed by the server").toBeDefined();
      expect(h2.goawayCode()).toBe(Code.EnhanceYourCalm);
    } finally {
      h2.close();
    }
  });

  it(
    "a client that resets every other stream is cut off once past the reset budget, whatever the ratio",
    async () => {
      const h2 = await RawH2.open(port, pki.ca.certPem);
      try {
        let id = 1;
        // Batches of 20 answered requests and 20 reset ones, each batch waited for (so the
        // stream limit is never what ends it): 500 resets, under the old guard's 1 000.
        for (let batch = 0; batch < 25 && h2.closedAt === undefined; batch++) {
          const frames: Uint8Array[] = [];
          let last = 0;
          for (let i = 0; i < 20; i++, id += 4) {
            frames.push(get(id, `good${i}.example.test`), get(id + 2, `good${i}.example.test`));
            frames.push(rst(id + 2));
            last = id;
          }
          await h2.write(...frames);
          await h2.waitFor((f) => f.type === FrameType.Data && f.id === last, 5_000);
        }
        await Promise.race([h2.closed, sleep(3_000)]);
        expect(h2.closedAt, "closed by the server").toBeDefined();
        expect(h2.goawayCode()).toBe(Code.EnhanceYourCalm);
      } finally {
        h2.close();
      }
    },
    30_000,
  );

  it("a stream reset in the write that opened it never reaches the upstream, and is no error in the log", async () => {
    const h2 = await RawH2.open(port, pki.ca.certPem);
    const from = logged.length;
    try {
      await h2.write(get(1, "warm-reset.example.test")); // the upstream connection is up
      await h2.waitFor((f) => f.type === FrameType.Data && f.id === 1, 5_000);
      const names = Array.from({ length: 20 }, (_, i) => `reset${i}.example.test`);
      await h2.write(...names.flatMap((name, i) => [get(3 + 2 * i, name), rst(3 + 2 * i)]));
      await h2.write(get(101, "after-reset.example.test"));
      await h2.waitFor((f) => f.type === FrameType.Data && f.id === 101, 5_000);
      const asked = upstream.requests.map((r) => r.name);
      expect(asked).toContain("after-reset.example.test");
      expect(asked.filter((name) => names.includes(name))).toEqual([]);
      // Reset later, mid-query: still not an error.
      await h2.write(get(103, "delay-300.reset-late.example.test"));
      await sleep(50);
      await h2.write(rst(103));
      await sleep(400);
      expect(logged.slice(from).filter((line) => /level=(error|warn)/.test(line))).toEqual([]);
    } finally {
      h2.close();
    }
  });

  it("a reset cancels its upstream query, unless another client waits for the same answer", async () => {
    const h2 = await RawH2.open(port, pki.ca.certPem);
    try {
      await h2.write(get(1, "delay-300.alone.example.test"));
      await sleep(50);
      await h2.write(rst(1));
      await h2.write(
        get(3, "delay-300.shared.example.test"),
        get(5, "delay-300.shared.example.test"),
      );
      await sleep(50);
      await h2.write(rst(3));
      await h2.waitFor((f) => f.type === FrameType.Data && f.id === 5, 5_000);
      expect(h2.statuses.get(5)).toBe("200");
      expect(h2.statuses.has(1) || h2.statuses.has(3)).toBe(false);
      await sleep(100);
      const seen = (name: string) => upstream.requests.filter((r) => r.name === name);
      expect(seen("delay-300.alone.example.test").map((r) => r.aborted)).toEqual([true]);
      expect(seen("delay-300.shared.example.test").map((r) => r.aborted)).toEqual([false]);
    } finally {
      h2.close();
    }
  });

  for (
    const [authority, where] of [
      ["secret host", "the HTTP/2 server"],
      ["xn--a", "the face (no URL takes it)"],
    ]
  ) {
    it(`a malformed :authority (${JSON.stringify(authority)}) gets 400 from ${where}; the query name never reaches the log`, async () => {
      const h2 = await RawH2.open(port, pki.ca.certPem);
      const from = logged.length;
      try {
        const path = "/dns-query?name=secret-authority.example.test&type=A";
        const block = new Block().indexed(2).indexed(7).literal(4, path).literal(1, authority);
        await h2.write(
          frame(FrameType.Headers, Flag.EndHeaders | Flag.EndStream, 1, block.bytes()),
        );
        await h2.waitFor((f) => f.type === FrameType.Headers && f.id === 1, 5_000);
        expect(h2.statuses.get(1)).toBe("400");
        await h2.write(get(3, "after-authority.example.test"));
        await h2.waitFor((f) => f.type === FrameType.Data && f.id === 3, 5_000);
        expect(h2.statuses.get(3)).toBe("200");
        expect(logged.slice(from).filter((l) => /secret-authority|level=error/.test(l))).toEqual(
          [],
        );
      } finally {
        h2.close();
      }
    });
  }
});

describe("DoH face: hostile HTTP/1.1 clients", () => {
  async function http1(): Promise<Deno.TlsConn> {
    const conn = await Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [pki.ca.certPem],
      alpnProtocols: ["http/1.1"],
    });
    const info = await conn.handshake();
    expect(info.alpnProtocol).toBe("http/1.1");
    return conn;
  }

  async function readAll(
    conn: Deno.TlsConn,
    ms: number,
  ): Promise<{ text: string; closed: boolean }> {
    const chunks: string[] = [];
    const buffer = new Uint8Array(16 * 1024);
    const decoder = new TextDecoder();
    const deadline = setTimeout(() => conn.close(), ms);
    let closed = false;
    try {
      for (;;) {
        const n = await conn.read(buffer);
        if (n === null) {
          closed = true;
          break;
        }
        chunks.push(decoder.decode(buffer.subarray(0, n)));
      }
    } catch {
      closed = false; // our own deadline closed it
    } finally {
      clearTimeout(deadline);
    }
    return { text: chunks.join(""), closed };
  }

  it("a body that never comes gets 408 and a close within the request deadline", async () => {
    const conn = await http1();
    const started = Date.now();
    await conn.write(new TextEncoder().encode(
      "POST /dns-query HTTP/1.1\r\nHost: localhost\r\ncontent-type: application/dns-message\r\n" +
        "content-length: 40\r\n\r\n",
    ));
    const { text, closed } = await readAll(conn, 10_000);
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(REQUEST_TIMEOUT_MS + 4_000);
  }, 15_000);

  it("a Host no URL takes gets 400, and the query name never reaches the log", async () => {
    const conn = await http1();
    const from = logged.length;
    await conn.write(new TextEncoder().encode(
      "GET /dns-query?name=secret-host.example.test&type=A HTTP/1.1\r\nHost: 256.1.1.1\r\n" +
        "connection: close\r\n\r\n",
    ));
    const { text } = await readAll(conn, 5_000);
    expect(text).toMatch(/^HTTP\/1\.1 400 /);
    expect(logged.slice(from).filter((l) => /secret-host|level=error/.test(l))).toEqual([]);
  });

  it("a header section over the cap gets 431 and a close", async () => {
    const conn = await http1();
    await conn.write(new TextEncoder().encode(
      `GET /dns-query HTTP/1.1\r\nHost: localhost\r\nx-big: ${"c".repeat(20_000)}\r\n\r\n`,
    ));
    const { text, closed } = await readAll(conn, 5_000);
    expect(closed).toBe(true);
    expect(text).toMatch(/^HTTP\/1\.1 431 /);
  });
});
