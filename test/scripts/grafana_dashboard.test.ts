/**
 * The Grafana dashboard (`scripts/deploy/grafana/dotbridge.json`) against a real Prometheus
 * (Debian's `prometheus`), started here and scraping a bridge under load: the JSON is importable
 * as is (a data source variable, `job` and `instance` variables, every target on
 * `$__rate_interval` where it takes a rate), every panel's query is accepted by Prometheus, and
 * the main panels return data.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { buildQuery, idOf, startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";

const DASHBOARD = new URL("../../scripts/deploy/grafana/dotbridge.json", import.meta.url);

interface Target {
  expr: string;
}
interface Panel {
  type: string;
  title: string;
  targets?: Target[];
  datasource?: { uid: string };
}

const dashboard = JSON.parse(Deno.readTextFileSync(DASHBOARD)) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string; type: string; query: unknown }[] };
};
const queryPanels = dashboard.panels.filter((p) => p.targets?.length);

/** The panels an operator looks at first: they must show data for a bridge under load. */
const MAIN_PANELS = [
  "Queries per second",
  "Queries per second by face",
  "Queries per second by rcode",
  "Latency quantiles (all faces)",
  "p99 latency",
  "Cache hit ratio",
  "Cache events",
  "Upstream latency",
  "Upstream health",
  "Upstream exchanges by outcome",
  "Open connections",
  "TLS handshakes",
  "Certificate expires in",
  "Uptime",
  "Version",
];

describe("the dashboard's JSON", () => {
  it("has the data source, job and instance variables and a stable uid", () => {
    expect(dashboard.uid).toBe("dotbridge");
    const vars = dashboard.templating.list.map((v) => `${v.name}:${v.type}`);
    expect(vars).toEqual(["datasource:datasource", "job:query", "instance:query"]);
    for (const p of queryPanels) expect(p.datasource?.uid, p.title).toBe("${datasource}");
  });

  it("selects by job and instance, and rates over $__rate_interval", () => {
    for (const p of queryPanels) {
      for (const t of p.targets!) {
        expect(t.expr, p.title).toContain('job="$job",instance=~"$instance"');
        for (const m of t.expr.matchAll(/rate\([^[]*\[([^\]]+)\]/g)) {
          expect(m[1], p.title).toBe("$__rate_interval");
        }
      }
    }
    for (const title of MAIN_PANELS) {
      expect(queryPanels.map((p) => p.title), title).toContain(title);
    }
  });
});

describe("the dashboard against a real Prometheus", () => {
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let prometheus: Deno.ChildProcess;
  let promUrl: string;
  let dir: string;
  let loading = true;
  let load: Promise<void>;

  beforeAll(async () => {
    const pki = await testPki();
    upstream = await startDohUpstream(pki);
    bridge = await startTestBridge(pki, upstream, [
      "--metrics-listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
    ]);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-prom-" });
    Deno.writeTextFileSync(
      `${dir}/prometheus.yml`,
      [
        "global:",
        "  scrape_interval: 1s",
        "  evaluation_interval: 1s",
        "scrape_configs:",
        "  - job_name: dotbridge",
        "    static_configs:",
        `      - targets: ["127.0.0.1:${bridge.bridge.metricsAddr!.port}"]`,
        "",
      ].join("\n"),
    );
    const port = freePort();
    promUrl = `http://127.0.0.1:${port}`;
    prometheus = new Deno.Command("prometheus", {
      args: [
        `--config.file=${dir}/prometheus.yml`,
        `--storage.tsdb.path=${dir}/data`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      stdout: "null",
      stderr: "null",
      stdin: "null",
    }).spawn();
    // Load: DoT queries, some repeated (cache hits), over one connection, until the end.
    load = (async () => {
      const client = await bridge.connect();
      let id = 1;
      while (loading) {
        const qs = Array.from(
          { length: 20 },
          (_, i) =>
            buildQuery(`load-${i % 7}-${Math.floor(id / 200)}.example.test`, { id: id++ % 60_000 }),
        );
        await client.send(...qs);
        for (const q of qs) await client.waitFor(idOf(q));
        await new Promise((r) => setTimeout(r, 50));
      }
      client.close();
    })();
    const end = Date.now() + 20_000;
    for (;;) {
      try {
        const res = await fetch(`${promUrl}/-/ready`);
        await res.text();
        if (res.ok) break;
      } catch {
        // Not listening yet.
      }
      if (Date.now() > end) throw new Error("prometheus did not become ready");
      await new Promise((r) => setTimeout(r, 200));
    }
    // Enough scrapes for rates over a few seconds.
    await new Promise((r) => setTimeout(r, 8_000));
  }, 40_000);

  afterAll(async () => {
    loading = false;
    await load?.catch(() => {});
    try {
      prometheus?.kill("SIGTERM");
      await prometheus?.status;
    } catch {
      // Gone.
    }
    await bridge?.close();
    await upstream?.close();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  });

  /** A panel's expression with Grafana's variables as the test's Prometheus needs them. */
  function expand(expr: string): string {
    return expr
      .replaceAll("$job", "dotbridge")
      .replaceAll("$instance", ".+")
      .replaceAll("$__rate_interval", "5s");
  }

  async function query(expr: string): Promise<{ status: string; data?: { result: unknown[] } }> {
    const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expand(expr))}`);
    return await res.json();
  }

  it("accepts every panel's query", async () => {
    for (const p of queryPanels) {
      for (const t of p.targets!) {
        const answer = await query(t.expr);
        expect(answer.status, `${p.title}: ${t.expr}`).toBe("success");
      }
    }
  });

  it("returns data for the main panels", async () => {
    const empty: string[] = [];
    for (const title of MAIN_PANELS) {
      const panel = queryPanels.find((p) => p.title === title)!;
      const answer = await query(panel.targets![0].expr);
      if (!answer.data?.result.length) empty.push(title);
    }
    expect(empty).toEqual([]);
  });

  it("finds the job and instance the variables list", async () => {
    const res = await fetch(`${promUrl}/api/v1/label/instance/values?match[]=dotbridge_build_info`);
    const body = await res.json();
    expect(body.data).toEqual([`127.0.0.1:${bridge.bridge.metricsAddr!.port}`]);
  });
});
