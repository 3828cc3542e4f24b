/**
 * The bridge's defences over real TLS on loopback: ACL refusals before the handshake, the
 * per-address connection cap, the per-client rate limit, and what the logs may say.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import {
  aRecords,
  buildQuery,
  connectDot,
  type DotClient,
  edeCode,
  ednsOptions,
  idOf,
  questionName,
  rcodeOf,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";
import { concat } from "../dns/fixtures.ts";

interface Running {
  bridge: Bridge;
  logs: string[];
  dotPort: number;
  dohPort: number;
  close(): Promise<void>;
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let http: Deno.HttpClient;
const running: Running[] = [];
const clients: DotClient[] = [];

/** Starts a bridge with both faces on ephemeral loopback ports and the test certificate. */
async function start(args: string[]): Promise<Running> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-sec-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
      ...args,
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  const logs: string[] = [];
  const bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (line) => logs.push(line) }),
    sighup: false,
  });
  const r: Running = {
    bridge,
    logs,
    dotPort: bridge.dot.addr.port,
    dohPort: bridge.doh!.addr.port,
    async close() {
      await bridge.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
  running.push(r);
  return r;
}

async function dot(r: Running): Promise<DotClient> {
  const c = await connectDot({ port: r.dotPort, caCerts: [pki.ca.certPem] });
  clients.push(c);
  return c;
}

/** One DoH POST; rejects if the connection is refused. */
async function dohPost(r: Running, wire: Uint8Array, headers: Record<string, string> = {}) {
  const res = await fetch(`https://localhost:${r.dohPort}/dns-query`, {
    method: "POST",
    headers: { "content-type": "application/dns-message", ...headers },
    body: wire.slice(),
    client: http,
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
}

function expectA(answer: Uint8Array, id: number, name: string): void {
  expect(idOf(answer)).toBe(id);
  expect(rcodeOf(answer)).toBe(0);
  expect(questionName(answer)).toBe(name);
  expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(name)}`]);
}

/** Plain TCP to `port`: accepted, then closed by the server without a single byte. */
async function expectClosedWithoutBytes(port: number): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const buf = new Uint8Array(64);
    let got: number | null;
    try {
      got = await Promise.race([
        conn.read(buf),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error("server kept the connection open")), 3_000)
        ),
      ]);
    } catch (e) {
      if ((e as Error).message === "server kept the connection open") throw e;
      got = null; // reset: closed too
    }
    expect(got).toBeNull();
  } finally {
    conn.close();
  }
}

async function waitFor(what: string, cond: () => boolean, ms = 3_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  http = Deno.createHttpClient({ caCerts: [pki.ca.certPem] });
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const r of running) await r.close();
  http?.close();
  await upstream?.close();
});

describe("ACL on the listeners", () => {
  it("--deny 127.0.0.1: DoT and DoH close before the handshake completes", async () => {
    const r = await start(["--deny", "127.0.0.1"]);
    await expect(connectDot({ port: r.dotPort, caCerts: [pki.ca.certPem] })).rejects.toThrow();
    await expectClosedWithoutBytes(r.dotPort);
    await expectClosedWithoutBytes(r.dohPort);
    await expect(dohPost(r, buildQuery("denied.example.test"))).rejects.toThrow();
    expect(upstream.requests.some((q) => q.name === "denied.example.test")).toBe(false);
    expect(r.logs.some((l) => l.includes("connection refused") && l.includes("reason=acl")))
      .toBe(true);
    expect(r.bridge.dot.connections).toBe(0);
  });

  it("--allow 10.0.0.0/8 refuses loopback on both faces", async () => {
    const r = await start(["--allow", "10.0.0.0/8"]);
    await expect(connectDot({ port: r.dotPort, caCerts: [pki.ca.certPem] })).rejects.toThrow();
    await expectClosedWithoutBytes(r.dotPort);
    await expectClosedWithoutBytes(r.dohPort);
    await expect(dohPost(r, buildQuery("denied.example.test"))).rejects.toThrow();
  });

  it("--allow 127.0.0.0/8 with another range denied lets loopback in", async () => {
    const r = await start(["--allow", "127.0.0.0/8", "--deny", "127.0.0.2"]);
    const c = await dot(r);
    await c.send(buildQuery("allowed.example.test", { id: 0x0a01 }));
    expectA(await c.waitFor(0x0a01), 0x0a01, "allowed.example.test");
    const res = await dohPost(r, buildQuery("allowed.example.test", { id: 0x0a02 }));
    expect(res.status).toBe(200);
    expectA(res.body, 0x0a02, "allowed.example.test");
  });

  it("behind a trusted proxy header, a denied client address gets REFUSED with EDE 18", async () => {
    const r = await start([
      ...["--trusted-proxy-header", "x-forwarded-for", "--deny", "198.51.100.0/24"],
    ]);
    const q = buildQuery("proxied.example.test", { id: 0, edns: true });
    const denied = await dohPost(r, q, { "x-forwarded-for": "203.0.113.1, 198.51.100.7" });
    expect(denied.status).toBe(200);
    expect(rcodeOf(denied.body)).toBe(5);
    expect(edeCode(denied.body)).toBe(18);
    const ok = await dohPost(r, q, { "x-forwarded-for": "198.51.100.7, 203.0.113.1" });
    expect(rcodeOf(ok.body)).toBe(0);
    expect(aRecords(ok.body)).toEqual([`192.0.2.${octetFor("proxied.example.test")}`]);
  });
});

describe("--max-connections-per-ip", () => {
  it("refuses the 3rd DoT connection from 127.0.0.1, keeps the first two, frees a slot on close", async () => {
    const r = await start(["--max-connections-per-ip", "2"]);
    const a = await dot(r);
    const b = await dot(r);
    await waitFor("two connections", () => r.bridge.dot.connections === 2);
    await expect(connectDot({ port: r.dotPort, caCerts: [pki.ca.certPem] })).rejects.toThrow();
    expect(r.logs.some((l) => l.includes("reason=max-connections-per-ip"))).toBe(true);
    await a.send(buildQuery("first.example.test", { id: 0x0101 }));
    await b.send(buildQuery("second.example.test", { id: 0x0102 }));
    expectA(await a.waitFor(0x0101), 0x0101, "first.example.test");
    expectA(await b.waitFor(0x0102), 0x0102, "second.example.test");
    expect(a.isClosed || b.isClosed).toBe(false);

    a.close();
    await waitFor("the closed slot to free", () => r.bridge.dot.connections === 1);
    const c = await dot(r);
    await c.send(buildQuery("third.example.test", { id: 0x0103 }));
    expectA(await c.waitFor(0x0103), 0x0103, "third.example.test");
    await b.send(buildQuery("second-again.example.test", { id: 0x0104 }));
    expectA(await b.waitFor(0x0104), 0x0104, "second-again.example.test");
  });
});

describe("--rate-limit", () => {
  it('REFUSES the 6th+ query of a burst with EDE 0 "rate limited", then recovers', async () => {
    const r = await start(["--rate-limit", "5", "--rate-limit-burst", "5"]);
    const c = await dot(r);
    const ids = Array.from({ length: 10 }, (_, i) => 0x0200 + i);
    const names = ids.map((_, i) => `burst-${i}.example.test`);
    await c.send(...names.map((n, i) => buildQuery(n, { id: ids[i], edns: true })));
    const answers = await Promise.all(ids.map((id) => c.waitFor(id)));
    for (let i = 0; i < 5; i++) expectA(answers[i], ids[i], names[i]);
    for (let i = 5; i < 10; i++) {
      const a = answers[i];
      expect(idOf(a)).toBe(ids[i]);
      expect(rcodeOf(a)).toBe(5);
      expect(questionName(a)).toBe(names[i]);
      const ede = ednsOptions(a)?.find((o) => o.code === 15);
      expect(ede).toBeDefined();
      expect((ede!.data[0] << 8) | ede!.data[1]).toBe(0);
      expect(new TextDecoder().decode(ede!.data.subarray(2))).toBe("rate limited");
    }
    // Refused queries never reached the upstream.
    expect(upstream.requests.filter((q) => q.name.startsWith("burst-")).length).toBe(5);

    // The same client on the DoH face shares the (empty) bucket.
    const viaDoh = await dohPost(r, buildQuery("burst-doh.example.test", { id: 0 }));
    expect(rcodeOf(viaDoh.body)).toBe(5);

    await new Promise((resolve) => setTimeout(resolve, 1_100)); // 5/s: full again
    const later = Array.from({ length: 5 }, (_, i) => 0x0300 + i);
    await c.send(...later.map((id, i) => buildQuery(`later-${i}.example.test`, { id })));
    const again = await Promise.all(later.map((id) => c.waitFor(id)));
    again.forEach((a, i) => expectA(a, later[i], `later-${i}.example.test`));
  });
});

describe("logs and privacy", () => {
  /** Traffic that makes the bridge log: good queries on both faces, FORMERR, SERVFAIL. */
  async function traffic(r: Running, tag: string): Promise<void> {
    const c = await dot(r);
    const good = `${tag}-canary.example.test`;
    await c.send(buildQuery(good, { id: 0x0401 }));
    expectA(await c.waitFor(0x0401), 0x0401, good);
    // A query with trailing junk: FORMERR.
    await c.send(concat(buildQuery(`${tag}-junk-canary.example.test`, { id: 0x0402 }), [1, 2]));
    expect(rcodeOf(await c.waitFor(0x0402))).toBe(1);
    // An upstream that is too slow: SERVFAIL after --query-timeout.
    await c.send(buildQuery(`delay-1000.${tag}-slow-canary.example.test`, { id: 0x0403 }));
    expect(rcodeOf(await c.waitFor(0x0403))).toBe(2);
    const viaDoh = await dohPost(r, buildQuery(`${tag}-doh-canary.example.test`));
    expect(rcodeOf(viaDoh.body)).toBe(0);
    const json = await fetch(
      `https://localhost:${r.dohPort}/dns-query?name=${tag}-json-canary.example.test&type=A`,
      { client: http, headers: { accept: "application/dns-json" } },
    );
    expect(json.status).toBe(200);
    await json.body?.cancel();
  }

  it("with --log-queries off, no line names a query or a client address", async () => {
    const r = await start(["--query-timeout", "300ms", "--log-queries=false"]);
    await traffic(r, "quiet");
    expect(r.logs.some((l) => l.includes("query failed"))).toBe(true); // it did log
    expect(r.logs.some((l) => l.includes("rejecting query"))).toBe(true);
    const leaks = r.logs.filter((l) => /canary|127\.0\.0\.1|::1|::ffff:/.test(l));
    expect(leaks).toEqual([]);
  });

  it("with --log-queries on, query lines carry the name and the client address", async () => {
    const r = await start(["--query-timeout", "300ms", "--log-queries"]);
    await traffic(r, "loud");
    const queryLines = r.logs.filter((l) => l.includes("msg=query "));
    expect(queryLines.some((l) => l.includes("name=loud-canary.example.test"))).toBe(true);
    expect(queryLines.some((l) => l.includes("name=loud-doh-canary.example.test"))).toBe(true);
    expect(
      queryLines.some((l) => l.includes("face=dot") && /client=(::ffff:)?127\.0\.0\.1/.test(l)),
    )
      .toBe(true);
    expect(
      queryLines.some((l) => l.includes("face=doh") && /client=(::ffff:)?127\.0\.0\.1/.test(l)),
    )
      .toBe(true);
  });
});
