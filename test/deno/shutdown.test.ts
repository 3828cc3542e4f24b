/**
 * Graceful shutdown over real sockets: queries already received on either face get their real
 * answers, new connections are refused meanwhile, idle connections are closed, and shutdown
 * resolves within the grace period.
 */
import http2 from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import {
  aRecords,
  buildQuery,
  connectDot,
  type DotClient,
  idOf,
  questionName,
  rcodeOf,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const GRACE_MS = 3_000;

let pki: TestPki;
let upstream: LocalDohUpstream;
let dir: string;
const toClose: (() => void)[] = [];

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-shutdown-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
});

afterAll(async () => {
  for (const f of toClose) f();
  await upstream?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
});

async function start(): Promise<{ bridge: Bridge; logs: string[] }> {
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
      ...["--shutdown-grace", `${GRACE_MS}ms`, "--query-timeout", "5s"],
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  const logs: string[] = [];
  const bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (l) => logs.push(l) }),
    sighup: false,
  });
  return { bridge, logs };
}

function expectAnswer(answer: Uint8Array, id: number, name: string): void {
  expect(idOf(answer)).toBe(id);
  expect(rcodeOf(answer)).toBe(0);
  expect(questionName(answer)).toBe(name);
  expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(name)}`]);
}

async function waitFor(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

interface Scenario {
  bridge: Bridge;
  dotQueries: { c: DotClient; id: number; name: string }[];
  dotResults: PromiseSettledResult<Uint8Array>[];
  dohNames: string[];
  dohResults: PromiseSettledResult<{ status: number; body: Uint8Array }>[];
  idleDot: DotClient;
  conns: DotClient[];
  idleH2Closed: Promise<void>;
  shutdownMs: number;
}

/**
 * Puts 50 slow queries in flight over 5 DoT connections and 20 slow DoH requests on one HTTP/2
 * connection, keeps one idle connection per face, calls `shutdown()` once all 70 have reached
 * the upstream, and checks that new connections are refused while it drains.
 */
async function scenario(tag: string): Promise<Scenario> {
  const { bridge } = await start();
  const dotPort = bridge.dot.addr.port;
  const dohPort = bridge.doh!.addr.port;
  const caCerts = [pki.ca.certPem];

  // An idle DoT connection and an idle HTTP/2 session (one request done, then nothing).
  const idleDot = await connectDot({ port: dotPort, caCerts });
  toClose.push(() => idleDot.close());
  const idleH2 = http2.connect(`https://localhost:${dohPort}`, { ca: caCerts });
  idleH2.on("error", () => {});
  toClose.push(() => idleH2.destroy());
  const idleH2Closed = new Promise<void>((r) => idleH2.once("close", () => r()));
  await new Promise<void>((resolve, reject) => {
    const s = idleH2.request({ ":path": "/health" });
    s.on("error", reject);
    s.resume();
    s.on("end", () => resolve());
  });

  // 50 slow DoT queries over 5 connections.
  const conns: DotClient[] = [];
  for (let i = 0; i < 5; i++) {
    const c = await connectDot({ port: dotPort, caCerts });
    toClose.push(() => c.close());
    conns.push(c);
  }
  const dotQueries = conns.flatMap((c, ci) =>
    Array.from({ length: 10 }, (_, qi) => ({
      c,
      id: 0x1000 + ci * 16 + qi,
      name: `delay-500.${tag}-dot-${ci}-${qi}.example.test`,
    }))
  );
  for (const c of conns) {
    await c.send(
      ...dotQueries.filter((q) => q.c === c).map((q) => buildQuery(q.name, { id: q.id })),
    );
  }
  const dotAnswers = Promise.allSettled(dotQueries.map((q) => q.c.waitFor(q.id, 10_000)));

  // 20 slow DoH requests, multiplexed on one HTTP/2 connection.
  const http = Deno.createHttpClient({ caCerts });
  toClose.push(() => http.close());
  const dohNames = Array.from({ length: 20 }, (_, i) => `delay-500.${tag}-doh-${i}.example.test`);
  const dohAnswers = Promise.allSettled(dohNames.map(async (name, i) => {
    const res = await fetch(`https://localhost:${dohPort}/dns-query`, {
      method: "POST",
      headers: { "content-type": "application/dns-message" },
      body: buildQuery(name, { id: 0x2000 + i }).slice(),
      client: http,
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: new Uint8Array(await res.arrayBuffer()) };
  }));

  // Wait until all 70 have reached the upstream (so they are truly in flight), then stop.
  const mine = new RegExp(`^delay-500\\.${tag}-(dot|doh)-`);
  await waitFor(
    "70 queries at the upstream",
    () => upstream.requests.filter((r) => mine.test(r.name)).length === 70,
  );
  const started = Date.now();
  let resolvedAt = 0;
  const shutdown = bridge.shutdown().then(() => (resolvedAt = Date.now()));

  // Meanwhile: new connections are refused on both faces.
  await new Promise((r) => setTimeout(r, 20));
  expect(resolvedAt).toBe(0); // still draining
  await expect(connectDot({ port: dotPort, caCerts })).rejects.toThrow();
  const fresh = Deno.createHttpClient({ caCerts });
  toClose.push(() => fresh.close());
  await expect(
    fetch(`https://localhost:${dohPort}/health`, {
      client: fresh,
      signal: AbortSignal.timeout(3_000),
    }),
  ).rejects.toThrow();

  const dotResults = await dotAnswers;
  const dohResults = await dohAnswers;
  // Shutdown resolves within the grace period (a hang bound, not a speed claim).
  await Promise.race([
    shutdown,
    new Promise((_, reject) =>
      setTimeout(() => reject(new Error("shutdown did not resolve")), GRACE_MS + 2_000)
    ),
  ]);
  return {
    bridge,
    dotQueries,
    dotResults,
    dohNames,
    dohResults,
    idleDot,
    conns,
    idleH2Closed,
    shutdownMs: resolvedAt - started,
  };
}

describe("bridge.shutdown()", () => {
  it("answers the 50 in-flight DoT queries, refuses new connections, closes idle ones", async () => {
    const s = await scenario("a");
    expect(s.shutdownMs).toBeLessThan(GRACE_MS + 1_000);
    // Every DoT query got its real answer: none lost, none SERVFAIL.
    s.dotResults.forEach((r, i) => {
      const q = s.dotQueries[i];
      expect(r.status, `DoT query ${q.name}`).toBe("fulfilled");
      expectAnswer((r as PromiseFulfilledResult<Uint8Array>).value, q.id, q.name);
    });
    // DoH: never a wrong answer or a SERVFAIL (see the next test for "never lost").
    s.dohResults.forEach((r, i) => {
      if (r.status === "rejected") return;
      expect(r.value.status).toBe(200);
      expectAnswer(r.value.body, 0x2000 + i, s.dohNames[i]);
    });

    // Idle and drained connections are closed by the bridge (the clients see EOF).
    await Promise.race([
      Promise.all([s.idleDot.closed, ...s.conns.map((c) => c.closed), s.idleH2Closed]),
      new Promise((_, reject) =>
        setTimeout(() => reject(new Error("a connection stayed open")), 3_000)
      ),
    ]);
    expect(s.idleDot.isClosed && s.conns.every((c) => c.isClosed)).toBe(true);
    expect(s.bridge.doh!.connections).toBe(0);
    for (const c of [s.idleDot, ...s.conns]) c.close();
  });

  // Regressions: DoH answers were counted done when queued rather than flushed (shutdown cut
  // them off), and half-open DoT sockets paused by shutdown never saw the peer's FIN.
  it("answers all 20 in-flight DoH requests too, and releases every connection", async () => {
    const s = await scenario("b");
    s.dohResults.forEach((r, i) => {
      expect(r.status, `DoH query ${s.dohNames[i]}`).toBe("fulfilled");
      const { status, body } = (r as PromiseFulfilledResult<{ status: number; body: Uint8Array }>)
        .value;
      expect(status).toBe(200);
      expectAnswer(body, 0x2000 + i, s.dohNames[i]);
    });
    s.dotResults.forEach((r) => expect(r.status).toBe("fulfilled"));
    // Once the clients close their side too, the bridge holds nothing.
    for (const c of [s.idleDot, ...s.conns]) c.close();
    await waitFor(
      "the bridge to count no open connections",
      () => s.bridge.dot.connections === 0 && s.bridge.doh!.connections === 0,
      3_000,
    );
  });
});
