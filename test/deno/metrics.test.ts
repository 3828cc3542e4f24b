import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import {
  buildQuery,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";

/** Parses Prometheus text into "name{labels}" -> value. */
function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const i = line.lastIndexOf(" ");
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

describe("metrics after known traffic", () => {
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;

  beforeAll(async () => {
    const pki = await testPki();
    upstream = await startDohUpstream(pki);
    bridge = await startTestBridge(pki, upstream, [
      "--metrics-listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
      "--doh-metrics",
    ]);
  });

  afterAll(async () => {
    await bridge?.close();
    await upstream?.close();
  });

  it("counts queries by face and rcode, cache events, upstream outcomes and connections", async () => {
    const client = await bridge.connect();
    try {
      const names = ["m1.example.test", "m2.example.test", "m1.example.test", "nx.example.test"];
      const queries = names.map((n, i) => buildQuery(n, { id: 100 + i }));
      for (const q of queries) {
        client.send(q);
        const answer = await client.waitFor(idOf(q));
        expect(rcodeOf(answer)).toBe(n(q));
      }
      upstream.mode = "http-500";
      const failing = buildQuery("fail.example.test", { id: 200 });
      client.send(failing);
      expect(rcodeOf(await client.waitFor(200))).toBe(2);
      upstream.mode = "ok";

      const res = await fetch(`http://127.0.0.1:${bridge.bridge.metricsAddr!.port}/metrics`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain("version=0.0.4");
      const m = parseMetrics(await res.text());
      expect(m.get('dotbridge_queries_total{face="dot",tenant="",rcode="NOERROR"}')).toBe(3);
      expect(m.get('dotbridge_queries_total{face="dot",tenant="",rcode="NXDOMAIN"}')).toBe(1);
      expect(m.get('dotbridge_queries_total{face="dot",tenant="",rcode="SERVFAIL"}')).toBe(1);
      expect(m.get('dotbridge_cache_events_total{event="hit"}')).toBe(1);
      expect(m.get('dotbridge_cache_events_total{event="miss"}')).toBe(4);
      // The upstream's scheme, host and port: never its path.
      const up = new URL(upstream.url).origin;
      expect(m.get(`dotbridge_upstream_queries_total{upstream="${up}",outcome="ok"}`)).toBe(3);
      expect(m.get(`dotbridge_upstream_queries_total{upstream="${up}",outcome="http-status"}`))
        .toBe(1);
      expect(m.get(`dotbridge_upstream_duration_seconds_count{upstream="${up}"}`)).toBe(3);
      expect(m.get('dotbridge_connections{face="dot"}')).toBe(1);
      expect(m.get('dotbridge_queries_in_flight{face="dot"}')).toBe(0);
      expect(m.get('dotbridge_query_duration_seconds_count{face="dot"}')).toBe(5);

      const http = Deno.createHttpClient({ caCerts: [bridge.caPem] });
      try {
        const viaDoh = await fetch(
          `https://localhost:${bridge.bridge.doh!.addr.port}/metrics`,
          { client: http },
        );
        expect(viaDoh.status).toBe(200);
        const text = await viaDoh.text();
        expect(text).toContain("dotbridge_queries_total");
        // The DoH face's own connection (the one this request came on) is counted too.
        expect(parseMetrics(text).get('dotbridge_connections{face="doh"}')).toBeGreaterThanOrEqual(
          1,
        );
      } finally {
        http.close();
      }
    } finally {
      client.close();
    }

    function n(q: Uint8Array): number {
      return new TextDecoder().decode(q).includes("nx") ? 3 : 0;
    }
  });
});

describe("upstream names in metrics and logs", () => {
  // A NextDNS/ControlD-style account ID in the path, and a credential in the user info and the
  // query string: none of them may reach a metric label (public with --doh-metrics) or a log
  // line above debug.
  const SECRETS = ["abc123secret", "tok987", "pw654"];
  let failing: LocalDohUpstream;
  let healthy: LocalDohUpstream;
  let bridge: TestBridge;

  beforeAll(async () => {
    const pki = await testPki();
    failing = await startDohUpstream(pki, "/abc123secret");
    healthy = await startDohUpstream(pki, "/abc123secret");
    failing.mode = "http-500";
    const withSecrets = (u: LocalDohUpstream) =>
      u.url.replace("https://", "https://user:pw654@") + "?token=tok987";
    bridge = await startTestBridge(pki, withSecrets(failing), [
      "--upstream",
      withSecrets(healthy),
      "--upstream-strategy",
      "failover",
      "--upstream-cooldown",
      "30s",
      "--metrics-listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
      "--doh-metrics",
    ]);
  });

  afterAll(async () => {
    await bridge?.close();
    await failing?.close();
    await healthy?.close();
  });

  it("labels each upstream with its host and its place in the list, never path, user or query", async () => {
    const client = await bridge.connect();
    try {
      for (let i = 0; i < 3; i++) {
        const q = buildQuery(`label-${i}.example.test`, { id: 300 + i });
        client.send(q);
        expect(rcodeOf(await client.waitFor(300 + i))).toBe(0);
      }
    } finally {
      client.close();
    }
    expect(healthy.requests.length).toBeGreaterThan(0);
    const first = `${new URL(failing.url).origin} [1]`;
    const second = `${new URL(healthy.url).origin} [2]`;

    const http = Deno.createHttpClient({ caCerts: [bridge.caPem] });
    try {
      const pages = [
        await (await fetch(`http://127.0.0.1:${bridge.bridge.metricsAddr!.port}/metrics`)).text(),
        await (await fetch(`https://localhost:${bridge.bridge.doh!.addr.port}/metrics`, {
          client: http,
        })).text(),
      ];
      for (const page of pages) {
        const m = parseMetrics(page);
        expect(m.get(`dotbridge_upstream_queries_total{upstream="${first}",outcome="http-status"}`))
          .toBeGreaterThan(0);
        expect(m.get(`dotbridge_upstream_queries_total{upstream="${second}",outcome="ok"}`))
          .toBe(3);
        expect(m.get(`dotbridge_upstream_up{upstream="${first}"}`)).toBe(0);
        expect(m.get(`dotbridge_upstream_up{upstream="${second}"}`)).toBe(1);
        for (const secret of SECRETS) expect(page).not.toContain(secret);
      }
    } finally {
      http.close();
    }
    // The member went down, and the log says so, naming it the same way.
    const aboveDebug = bridge.logs.filter((line) => !/level=debug|"level":"debug"/.test(line));
    expect(aboveDebug.some((line) => line.includes("upstream down") && line.includes(first)))
      .toBe(true);
    for (const secret of SECRETS) {
      expect(aboveDebug.filter((line) => line.includes(secret))).toEqual([]);
    }
  });
});
