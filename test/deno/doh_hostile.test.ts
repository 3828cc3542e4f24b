/**
 * Hostile HTTP/2 and HTTP/1.1 clients against the running DoH face, over real TLS: HPACK header
 * bombs, a decoded header list over the advertised cap, CONTINUATION floods, and requests left
 * half-open. Each time a good client on another connection keeps getting answers, the process
 * stays up, and the hostile connection is closed, within the request deadline where one applies.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { Code, Flag, FrameType } from "../../src/h2/frames.ts";
import { silentLogger } from "../../src/log/mod.ts";
import { aRecords, buildQuery } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { Block, frame, RawH2 } from "../support/raw_h2.ts";
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
  bridge = await startBridge(parsed.config, { logger: silentLogger, sighup: false });
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
