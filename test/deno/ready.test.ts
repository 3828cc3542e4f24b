/**
 * Readiness and identity: `/ready` on the metrics listener and the DoH face answers 200 while the
 * lone upstream answers, 503 once it has failed, and 200 again when a background probe finds it
 * back (no client query needed); `/health` stays 200 throughout (liveness). The metrics carry
 * the build's version, the start time, the certificate's expiry per face and the lone upstream's
 * health.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import {
  buildQuery,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type TestPki, testPki } from "../support/pki.ts";

async function until(check: () => Promise<boolean>, ms: number, what: string) {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("/ready", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let http: Deno.HttpClient;

  beforeAll(async () => {
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    bridge = await startTestBridge(pki, upstream, [
      "--metrics-listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
      "--health-check-interval",
      "200ms",
      "--upstream-cooldown",
      "60s",
      "--attempt-timeout",
      "500ms",
    ]);
    http = Deno.createHttpClient({ caCerts: [bridge.caPem] });
  });

  afterAll(async () => {
    http?.close();
    await bridge?.close();
    await upstream?.close();
  });

  const metricsBase = () => `http://127.0.0.1:${bridge.bridge.metricsAddr!.port}`;
  const dohBase = () => `https://localhost:${bridge.bridge.doh!.addr.port}`;

  async function statusOf(url: string): Promise<number> {
    const res = await fetch(url, { client: http });
    await res.text();
    return res.status;
  }

  async function statuses(): Promise<number[]> {
    return [
      await statusOf(`${metricsBase()}/ready`),
      await statusOf(`${dohBase()}/ready`),
    ];
  }

  async function upstreamUp(): Promise<number> {
    const text = await (await fetch(`${metricsBase()}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith("dotbridge_upstream_up{"));
    return line ? Number(line.split(" ").at(-1)) : NaN;
  }

  it("flips to 503 when the upstream dies and back to 200 when it returns", async () => {
    expect(await statuses()).toEqual([200, 200]);
    expect(await upstreamUp()).toBe(1);

    const port = upstream.port;
    await upstream.close();
    const client = await bridge.connect();
    const q = buildQuery("down.example.test", { id: 7 });
    await client.send(q);
    expect(rcodeOf(await client.waitFor(idOf(q)))).toBe(2);
    client.close();
    expect(await statuses()).toEqual([503, 503]);
    expect(await upstreamUp()).toBe(0);
    // Liveness is another question: the process serves.
    expect(await statusOf(`${metricsBase()}/health`)).toBe(200);
    expect(await statusOf(`${dohBase()}/health`)).toBe(200);

    upstream = await startDohUpstream(pki, "/dns-query", { port });
    // No client query: the background probe finds it back.
    await until(async () => (await statuses()).every((s) => s === 200), 10_000, "ready again");
    expect(await upstreamUp()).toBe(1);
  });

  it("shows the build, the start time and the certificate's expiry per face", async () => {
    const text = await (await fetch(`${metricsBase()}/metrics`)).text();
    const version = JSON.parse(Deno.readTextFileSync(new URL("../../deno.json", import.meta.url)))
      .version;
    expect(text).toContain(`dotbridge_build_info{version="${version}"} 1`);
    const start = Number(/^process_start_time_seconds (\S+)$/m.exec(text)?.[1]);
    expect(start).toBeGreaterThan(Date.now() / 1000 - 3600);
    expect(start).toBeLessThanOrEqual(Date.now() / 1000);
    const notAfter = (face: string) =>
      Number(
        new RegExp(`^dotbridge_certificate_not_after_seconds\\{face="${face}"\\} (\\S+)$`, "m")
          .exec(text)?.[1],
      );
    const expected = Date.parse(
      new (await import("node:crypto")).X509Certificate(pki.server.certPem)
        .validTo,
    ) / 1000;
    expect(notAfter("dot")).toBe(expected);
    expect(notAfter("doh")).toBe(expected);
  });
});
