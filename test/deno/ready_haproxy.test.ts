/**
 * The fleet guide's readiness probe, for real: HAProxy (TCP mode, PROXY protocol to the bridge)
 * checks each bridge with `option httpchk GET /ready` on its metrics port, as
 * docs/deployment.md shows. When the bridge's only upstream dies HAProxy takes the bridge out;
 * when it is back (found by the bridge's background probe) HAProxy puts it back, and DoT through
 * HAProxy answers again.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import {
  buildQuery,
  connectDot,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import {
  HAVE_HAPROXY,
  requireHaproxy,
  startHaproxy,
  type TestHaproxy,
} from "../support/haproxy.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";

async function until(check: () => Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe.skipIf(!HAVE_HAPROXY && Deno.env.get("CI") !== "true")("/ready behind HAProxy", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let haproxy: TestHaproxy;
  let dir: string;
  let front: number;

  beforeAll(async () => {
    requireHaproxy();
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    bridge = await startTestBridge(pki, upstream, [
      "--metrics-listen",
      "127.0.0.1:0",
      "--proxy-protocol-from",
      "127.0.0.1/32",
      "--health-check-interval",
      "200ms",
      "--upstream-cooldown",
      "60s",
      "--attempt-timeout",
      "500ms",
    ]);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-ready-haproxy-" });
    front = freePort();
    haproxy = await startHaproxy(
      `${dir}/haproxy.cfg`,
      [
        "global",
        `  stats socket ${dir}/stats.sock level admin`,
        "defaults",
        "  mode tcp",
        "  timeout connect 2s",
        "  timeout client 10s",
        "  timeout server 10s",
        "frontend dot",
        `  bind 127.0.0.1:${front}`,
        "  default_backend bridges_dot",
        "backend bridges_dot",
        "  option httpchk GET /ready",
        "  http-check expect status 200",
        `  default-server check port ${bridge.bridge.metricsAddr!.port} inter 200ms fall 2 rise 2`,
        `  server b1 127.0.0.1:${bridge.port} send-proxy-v2`,
        "",
      ].join("\n"),
      [front],
    );
  });

  afterAll(async () => {
    await haproxy?.stop();
    await bridge?.close();
    await upstream?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  });

  /** The server's status as HAProxy's stats socket tells it (UP, DOWN, ...). */
  async function status(): Promise<string> {
    const conn = await Deno.connect({ transport: "unix", path: `${dir}/stats.sock` });
    await conn.write(new TextEncoder().encode("show stat\n"));
    let text = "";
    const buf = new Uint8Array(8192);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    conn.close();
    const header = text.split("\n")[0].replace(/^# /, "").split(",");
    const row = text.split("\n").find((l) => l.startsWith("bridges_dot,b1,"));
    return row?.split(",")[header.indexOf("status")] ?? "";
  }

  async function askThroughHaproxy(name: string, id: number): Promise<number> {
    const client = await connectDot({ port: front, caCerts: [bridge.caPem] });
    try {
      const q = buildQuery(name, { id });
      await client.send(q);
      return rcodeOf(await client.waitFor(idOf(q)));
    } finally {
      client.close();
    }
  }

  it("takes the bridge out while its upstream is down and back when it returns", async () => {
    await until(async () => (await status()) === "UP", 10_000, "UP");
    expect(await askThroughHaproxy("up.example.test", 1)).toBe(0);

    const port = upstream.port;
    await upstream.close();
    // A query finds the upstream down (SERVFAIL); /ready turns 503 and HAProxy notices.
    expect(await askThroughHaproxy("down.example.test", 2)).toBe(2);
    await until(async () => (await status()).startsWith("DOWN"), 10_000, "DOWN");

    upstream = await startDohUpstream(pki, "/dns-query", { port });
    await until(async () => (await status()) === "UP", 10_000, "UP again");
    expect(await askThroughHaproxy("again.example.test", 3)).toBe(0);
  });
});
