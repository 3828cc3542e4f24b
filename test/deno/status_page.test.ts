/**
 * The status page in a real browser: headless Chromium (Debian's `chromium`, driven over the
 * DevTools protocol by `scripts/chromium.ts`) loads `/status` from a bridge under load (DoT and
 * DoH), lets it poll `/metrics`, and the test reads every `data-metric` figure and checks it
 * against `/metrics` scraped by the test itself over the same seconds. The page is one
 * self-contained document: no external script, style, font or image.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type Chromium, startChromium } from "../../scripts/chromium.ts";
import { STATUS_WINDOW_SECONDS } from "../../src/http/status_page.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { buildQuery, idOf, startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

const total = (s: Sample[], name: string, match: Record<string, string> = {}) =>
  s.filter((x) => x.name === name && Object.entries(match).every(([k, v]) => x.labels[k] === v))
    .reduce((n, x) => n + x.value, 0);

/** histogram_quantile over the bucket deltas between two scrapes, in ms. */
function quantileMs(q: number, a: Sample[], b: Sample[]): number {
  const name = "dotbridge_query_duration_seconds_bucket";
  const les = [...new Set(b.filter((x) => x.name === name).map((x) => x.labels.le))]
    .map((le) => ({
      le: le === "+Inf" ? Infinity : Number(le),
      n: total(b, name, { le }) - total(a, name, { le }),
    }))
    .sort((x, y) => x.le - y.le);
  const count = les.at(-1)!.n;
  const rank = q * count;
  let prevLe = 0, prevN = 0;
  for (const { le, n } of les) {
    if (n >= rank) {
      if (le === Infinity) return prevLe * 1000;
      return (prevLe + (le - prevLe) * (n > prevN ? (rank - prevN) / (n - prevN) : 1)) * 1000;
    }
    prevLe = le;
    prevN = n;
  }
  return prevLe * 1000;
}

interface Figure {
  metric: string;
  face: string | null;
  upstream: string | null;
  value: string | null;
  text: string;
}

describe("the status page in headless Chromium", () => {
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let browser: Chromium;
  let loading = true;
  let load: Promise<void>;
  const metricsUrl = () => `http://127.0.0.1:${bridge.bridge.metricsAddr!.port}/metrics`;

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
    // Steady load: ~150 DoT queries a second on one connection (most of them cache hits), and
    // ~20 DoH queries a second.
    load = (async () => {
      const client = await bridge.connect();
      const http = Deno.createHttpClient({ caCerts: [bridge.caPem] });
      let id = 1;
      let round = 0;
      while (loading) {
        round++;
        const qs = Array.from(
          { length: 15 },
          (_, i) =>
            buildQuery(i === 0 ? `new-${round}.example.test` : `hot-${i}.example.test`, {
              id: id++ % 60_000,
            }),
        );
        await client.send(...qs);
        for (const q of qs) await client.waitFor(idOf(q));
        if (round % 5 === 0) {
          const body = buildQuery(`doh-${round % 3}.example.test`, { id: 0 }).slice();
          await Promise.all([1, 2].map(async () => {
            const res = await fetch(
              `https://localhost:${bridge.bridge.doh!.addr.port}/dns-query`,
              {
                method: "POST",
                headers: { "content-type": "application/dns-message" },
                body,
                client: http,
              },
            );
            await res.arrayBuffer();
          }));
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      http.close();
      client.close();
    })();
    browser = await startChromium();
  }, 40_000);

  afterAll(async () => {
    loading = false;
    await load?.catch(() => {});
    await browser?.close();
    await bridge?.close();
    await upstream?.close();
  });

  it("is one small self-contained HTML document, on both listeners", async () => {
    const res = await fetch(metricsUrl().replace("/metrics", "/status"));
    expect(res.headers.get("content-type")).toContain("text/html");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await res.text();
    expect(html.length).toBeLessThan(16_384);
    expect(html).not.toMatch(/<(link|img|iframe|object)\b/i);
    expect(html).not.toMatch(/\b(src|href)\s*=/i);
    expect(html).not.toMatch(/@import|url\(/i);
    const http = Deno.createHttpClient({ caCerts: [bridge.caPem] });
    try {
      const viaDoh = await fetch(`https://localhost:${bridge.bridge.doh!.addr.port}/status`, {
        client: http,
      });
      expect(viaDoh.status).toBe(200);
      expect(await viaDoh.text()).toBe(html);
    } finally {
      http.close();
    }
  });

  it("shows figures that match /metrics", async () => {
    const page = await browser.open(metricsUrl().replace("/metrics", "/status"));
    // Let the page sample a full window while the test scrapes the same seconds itself.
    await new Promise((r) => setTimeout(r, 2_000));
    const before = parse(await (await fetch(metricsUrl())).text());
    const started = performance.now();
    await new Promise((r) => setTimeout(r, STATUS_WINDOW_SECONDS * 1000));
    const after = parse(await (await fetch(metricsUrl())).text());
    const seconds = (performance.now() - started) / 1000;
    const figures = await page.evaluate<Figure[]>(`[...document.querySelectorAll("[data-metric]")]
      .map((e) => ({ metric: e.getAttribute("data-metric"), face: e.getAttribute("data-face"),
        upstream: e.getAttribute("data-upstream"), value: e.getAttribute("data-value"),
        text: e.textContent }))`);
    const afterPage = parse(await (await fetch(metricsUrl())).text());
    const one = (
      metric: string,
      key: "face" | "upstream" | null = null,
      is: string | null = null,
    ) => {
      const f = figures.find((x) =>
        x.metric === metric && (key === null ? !x.face && !x.upstream : x[key] === is)
      );
      expect(f, `${metric} ${is ?? ""}`).toBeDefined();
      return Number(f!.value ?? f!.text);
    };

    // Every figure named in the issue is there.
    for (
      const m of [
        "qps",
        "latency_p50_ms",
        "latency_p99_ms",
        "cache_hit_ratio",
        "blocked_share",
        "upstream_up",
        "upstream_latency_ms",
        "connections",
        "queries_total",
      ]
    ) expect(figures.map((f) => f.metric), m).toContain(m);

    // Rates: the page's window and the test's are the same length, a second or so apart.
    for (const face of ["dot", "doh"]) {
      const rate = (total(after, "dotbridge_queries_total", { face }) -
        total(before, "dotbridge_queries_total", { face })) / seconds;
      expect(rate, face).toBeGreaterThan(0);
      const shown = one("qps", "face", face);
      expect(shown / rate, `qps ${face}: page ${shown}, /metrics ${rate}`).toBeGreaterThan(0.6);
      expect(shown / rate, `qps ${face}: page ${shown}, /metrics ${rate}`).toBeLessThan(1.6);
    }
    const ev = (e: string) =>
      total(after, "dotbridge_cache_events_total", { event: e }) -
      total(before, "dotbridge_cache_events_total", { event: e });
    const looked = ev("hit") + ev("miss") + ev("coalesced") + ev("stale");
    const hit = (ev("hit") + ev("stale")) / looked * 100;
    expect(Math.abs(one("cache_hit_ratio") - hit), `hit ratio vs ${hit}`).toBeLessThan(10);
    const p50 = one("latency_p50_ms"), p99 = one("latency_p99_ms");
    expect(p50).toBeGreaterThan(0);
    expect(p50).toBeLessThanOrEqual(p99);
    const testP99 = quantileMs(0.99, before, after);
    expect(p99 / testP99, `p99 ${p99} vs ${testP99}`).toBeGreaterThan(0.33);
    expect(p99 / testP99, `p99 ${p99} vs ${testP99}`).toBeLessThan(3);
    // No blocklist on this bridge: nothing blocked.
    expect(one("blocked_share")).toBe(0);

    // Gauges and totals: exactly what /metrics says, within the scrapes around the reading.
    const up = after.find((x) => x.name === "dotbridge_upstream_up")!;
    expect(one("upstream_up", "upstream", up.labels.upstream)).toBe(up.value);
    expect(one("upstream_latency_ms", "upstream", up.labels.upstream)).toBeGreaterThan(0);
    expect(one("connections", "face", "dot")).toBe(
      total(afterPage, "dotbridge_connections", { face: "dot" }),
    );
    const queries = one("queries_total");
    expect(queries).toBeGreaterThanOrEqual(total(before, "dotbridge_queries_total"));
    expect(queries).toBeLessThanOrEqual(total(afterPage, "dotbridge_queries_total"));
  });
});
