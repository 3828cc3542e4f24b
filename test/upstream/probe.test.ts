/**
 * Background health probes of a failover group, end to end: two real local DoH upstreams behind
 * the bridge, the first taken down and brought back. With a cool-down far longer than the test,
 * only a probe can bring the first back; while it is down, no client query reaches it.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import {
  aRecords,
  buildQuery,
  connectDot,
  type DotClient,
  idOf,
  rcodeOf,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const PROBE_MS = 200;

let pki: TestPki;
let cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  pki = await testPki();
});

afterEach(async () => {
  for (const f of cleanups.reverse()) await f();
  cleanups = [];
});

async function startWith(urls: string[]): Promise<{ bridge: Bridge; logs: string[] }> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-probe-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "off"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`, "--upstream-ca", `${dir}/ca.pem`],
      ...urls.flatMap((u) => ["--upstream", u]),
      ...["--upstream-strategy", "failover", "--health-check-interval", `${PROBE_MS}ms`],
      // A cool-down far past the test: only a probe can make the first member healthy again.
      ...["--upstream-cooldown", "10m", "--attempt-timeout", "1s"],
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  const logs: string[] = [];
  const bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (l) => logs.push(l) }),
    sighup: false,
  });
  cleanups.push(async () => {
    await bridge.shutdown();
    await Deno.remove(dir, { recursive: true });
  });
  return { bridge, logs };
}

async function upstreamAt(port?: number): Promise<LocalDohUpstream> {
  const u = await startDohUpstream(pki, "/dns-query", { port });
  cleanups.push(() => u.close());
  return u;
}

let nextId = 1;
async function ask(c: DotClient, name: string): Promise<void> {
  const id = nextId++;
  await c.send(buildQuery(name, { id }));
  const a = await c.waitFor(id);
  expect(idOf(a)).toBe(id);
  expect(rcodeOf(a)).toBe(0);
  expect(aRecords(a)).toEqual([`192.0.2.${octetFor(name)}`]);
}

/** Names of client queries (everything but the `. NS` probe) an upstream received. */
function clientNames(u: LocalDohUpstream, from = 0): string[] {
  return u.requests.slice(from).map((r) => r.name).filter((n) => n !== "." && n !== "");
}

function probes(u: LocalDohUpstream, from = 0): number {
  return u.requests.slice(from).filter((r) => r.name === "." || r.name === "").length;
}

async function poll(what: string, cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("failover group with background probes", () => {
  it("fails over on HTTP 500, probes the first back without client queries to it", async () => {
    const first = await upstreamAt();
    const second = await upstreamAt();
    const { bridge, logs } = await startWith([first.url, second.url]);
    const c = await connectDot({ port: bridge.dot.addr.port, caCerts: [pki.ca.certPem] });
    cleanups.push(() => c.close());

    await ask(c, "healthy.example.test");
    expect(clientNames(first)).toEqual(["healthy.example.test"]);
    expect(clientNames(second)).toEqual([]);

    // Down: the first failing query is how the group learns it; it is answered by the second.
    first.mode = "http-500";
    await ask(c, "detects-down.example.test");
    expect(clientNames(second)).toEqual(["detects-down.example.test"]);
    expect(logs.some((l) => l.includes("upstream down"))).toBe(true);
    const markedDownAt = first.requests.length;

    // While down: every client query goes to the second only; the first sees only probes.
    for (let i = 0; i < 5; i++) {
      await ask(c, `while-down-${i}.example.test`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(clientNames(first, markedDownAt)).toEqual([]);
    expect(clientNames(second)).toContain("while-down-4.example.test");
    await poll("a probe while down", () => probes(first, markedDownAt) >= 1);

    // Back: a probe succeeds within a few intervals, and the first is used again.
    first.mode = "ok";
    const backAt = first.requests.length;
    await poll(
      "the log line 'upstream back'",
      () => logs.some((l) => l.includes("upstream back")),
      10 * PROBE_MS + 2_000,
    );
    expect(clientNames(first, markedDownAt)).toEqual([]); // only probes brought it back
    expect(probes(first, backAt)).toBeGreaterThanOrEqual(1);
    const secondBefore = second.requests.length;
    await ask(c, "after-back.example.test");
    expect(clientNames(first, backAt)).toEqual(["after-back.example.test"]);
    expect(second.requests.length).toBe(secondBefore);
    const back = logs.find((l) => l.includes("upstream back"))!;
    expect(back).toContain(`localhost:${first.port}`);

    // Probes stop once it is healthy.
    const settled = first.requests.length;
    await new Promise((r) => setTimeout(r, 3 * PROBE_MS));
    expect(probes(first, settled)).toBe(0);
  });

  it("fails over when the first is closed, and probes it back after a restart on its port", async () => {
    const firstPort = reservePort();
    let first = await upstreamAt(firstPort);
    const second = await upstreamAt();
    const { bridge, logs } = await startWith([first.url, second.url]);
    const c = await connectDot({ port: bridge.dot.addr.port, caCerts: [pki.ca.certPem] });
    cleanups.push(() => c.close());
    await ask(c, "before-close.example.test");
    expect(clientNames(first)).toEqual(["before-close.example.test"]);

    await first.close();
    await ask(c, "first-closed.example.test");
    expect(clientNames(second)).toEqual(["first-closed.example.test"]);
    for (let i = 0; i < 3; i++) await ask(c, `while-closed-${i}.example.test`);
    expect(clientNames(second).length).toBe(4);
    await new Promise((r) => setTimeout(r, 2 * PROBE_MS)); // probes fail meanwhile
    expect(logs.some((l) => l.includes("upstream back"))).toBe(false);

    first = await upstreamAt(firstPort);
    await poll(
      "the log line 'upstream back'",
      () => logs.some((l) => l.includes("upstream back")),
      10 * PROBE_MS + 3_000,
    );
    expect(clientNames(first)).toEqual([]); // the restarted one saw only probes so far
    expect(probes(first)).toBeGreaterThanOrEqual(1);
    await ask(c, "after-restart.example.test");
    expect(clientNames(first)).toEqual(["after-restart.example.test"]);
    expect(clientNames(second)).not.toContain("after-restart.example.test");
  });
});

/** A free loopback port (bound and released), for an upstream that restarts in place. */
function reservePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
