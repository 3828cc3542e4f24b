import { describe, expect, it } from "vitest";
import {
  handshakeClientArgs,
  type HandshakeClientReport,
  type HandshakeRow,
  parseClientReport,
  summariseHandshakes,
} from "../../scripts/bench/handshake.ts";
import { detectBridgeFeatures, readBridgeHelp } from "../../scripts/bench/lab.ts";
import { REPO_DIR } from "../../scripts/bench/procs.ts";
import type { FigureRow } from "../../scripts/bench/measure.ts";
import { kdigArgs, type OneShotRow, oneShotStats, parseKdig } from "../../scripts/bench/oneshot.ts";
import {
  allocEstimateS,
  DEFAULT_DEADLINE_S,
  extraThreadCountS,
  jobLoadS,
  parseOptions,
  requiredTools,
} from "../../scripts/bench/options.ts";
import {
  type BenchReport,
  handshakeRows,
  modeRows,
  oneShotRows,
  renderReport,
} from "../../scripts/bench/table.ts";

describe("bench options", () => {
  it("runs every mode, both DoH shapes and 20 one-shots by default", () => {
    const o = parseOptions([])!;
    expect([...o.modes]).toEqual([
      "bridging",
      "cached",
      "doh",
      "oneshot",
      "handshake",
      "dns-bridging",
      "dns-cached",
      "scale",
      "idle",
      "alloc",
    ]);
    expect(o.dohStreams).toEqual([10, 64]);
    expect(o.oneshotRuns).toBe(20);
    // The alloc mode, on by default, gets its time on top.
    expect(o.deadline).toBe(DEFAULT_DEADLINE_S + allocEstimateS(o));
    expect(parseOptions(["--modes", "doh"])!.deadline).toBe(DEFAULT_DEADLINE_S);
  });

  it("keeps only the modes asked for, in table order", () => {
    const o = parseOptions(["--modes", "oneshot, doh"])!;
    expect([...o.modes]).toEqual(["doh", "oneshot"]);
  });

  it("needs dnsperf, knotd and dnsdist (not h2load or kdig) for the plain DNS modes alone", () => {
    const o = parseOptions(["--modes", "dns-cached,dns-bridging"])!;
    expect([...o.modes]).toEqual(["dns-bridging", "dns-cached"]);
    expect(requiredTools(o)).toEqual(["knotd", "dnsdist", "dnsperf"]);
  });

  it.each([
    [["--modes", "doh-native"], /--modes: unknown "doh-native"/],
    [["--modes", ","], /--modes: empty list/],
    [["--doh-streams", "10,0"], /--doh-streams: expected whole numbers >= 1: 0/],
    [["--doh-streams", "ten"], /--doh-streams/],
    [["--oneshot-runs", "0"], /--oneshot-runs/],
    [["--oneshot-runs", "2.5"], /--oneshot-runs/],
    [["--bridge-threads", "1,x"], /--bridge-threads/],
    [["--targets", "bridge,nobody"], /--targets: unknown "nobody"/],
    [["--handshake-workers", "1", "--handshake-procs", "2"], /--handshake-workers/],
    [["--handshake-procs", "1.5"], /--handshake-procs/],
  ])("refuses %j", (args, message) => {
    expect(() => parseOptions(args)).toThrow(message);
  });

  it("reads --doh-streams as a list without duplicates", () => {
    expect(parseOptions(["--doh-streams", "64,10,64"])!.dohStreams).toEqual([64, 10]);
  });

  it("serves today's ECDSA certificate unless --cert names another kind", () => {
    expect(parseOptions([])!.cert).toBe("ecdsa");
    expect(parseOptions(["--cert", "rsa2048-chain"])!.cert).toBe("rsa2048-chain");
    expect(() => parseOptions(["--cert", "rsa1024"])).toThrow(/--cert: unknown "rsa1024"/);
    expect(() => parseOptions(["--cert", "toString"])).toThrow(RangeError);
  });

  it("returns nothing for --help", () => {
    expect(parseOptions(["--help"])).toBeUndefined();
  });

  it("gives extra thread counts time only for the modes that run", () => {
    const all = parseOptions(["--bridge-threads", "1,2"])!;
    const doh = parseOptions(["--bridge-threads", "1,2", "--modes", "doh"])!;
    expect(all.deadline).toBe(
      Math.ceil(DEFAULT_DEADLINE_S + extraThreadCountS(all, all.modes) + allocEstimateS(all)),
    );
    expect(doh.deadline).toBeLessThan(all.deadline);
    expect(doh.deadline).toBeGreaterThan(DEFAULT_DEADLINE_S);
  });

  it("estimates one DoH job as the fill plus a run per shape and the fixed rate", () => {
    const o = parseOptions(["--doh-duration", "10"])!;
    expect(jobLoadS(o, "doh", "peer")).toBe(3 + 3 * 10);
    expect(jobLoadS(o, "bridging", "peer")).toBe(2 + 2 * 15);
    // The bridge's one-shots start a second bridge (native DoT) and have one face more.
    expect(jobLoadS(o, "oneshot", "bridge")).toBeGreaterThan(jobLoadS(o, "oneshot", "peer"));
  });

  it("estimates the bridge's handshake job with its second (native) bridge", () => {
    const o = parseOptions(["--handshake-duration", "10", "--warmup", "2"])!;
    expect(o.handshakeWorkers).toBe(32);
    expect(o.handshakeProcs).toBe(2);
    expect(jobLoadS(o, "handshake", "peer")).toBe(2 + 10 + 1);
    expect(jobLoadS(o, "handshake", "bridge")).toBe(2 * 13 + 4);
  });

  it("needs only the tools of the modes that run", () => {
    expect(requiredTools(parseOptions(["--modes", "doh,oneshot"])!)).toEqual([
      "knotd",
      "dnsdist",
      "h2load",
      "kdig",
    ]);
    expect(requiredTools(parseOptions(["--modes", "oneshot"])!)).toEqual([
      "knotd",
      "dnsdist",
      "kdig",
    ]);
    expect(requiredTools(parseOptions(["--modes", "handshake"])!)).toEqual(["knotd", "dnsdist"]);
    expect(requiredTools(parseOptions(["--modes", "bridging"])!)).toEqual([
      "knotd",
      "dnsdist",
      "dnsperf",
      "h2load",
    ]);
  });
});

describe("bridge features from --help", () => {
  const help = [
    "  --http-listen HOST:PORT|off",
    "      DoH listen address",
    "  --dot-server ENUM",
    "      DoT listener: node:tls, or Deno.listenTls (no SNI) (node | native)",
    "      default: node; env: DOTBRIDGE_DOT_SERVER",
    "  --threads N|auto",
    "      serve on N threads",
    "",
  ].join("\n");

  it("finds every option the bench sets in the help it reads from the bridge", async () => {
    const features = detectBridgeFeatures(await readBridgeHelp(REPO_DIR));
    expect(features.cacheOff).toEqual(["--no-cache"]);
    expect(features.cacheOn).toEqual(["--cache", "--cache-size", "100000"]);
    expect(features.httpOff).toEqual(["--http-listen", "off"]);
    expect(features.always).toEqual(["--rate-limit", "0"]);
    expect(features.unlimitedConnections).toEqual(["--max-connections-per-ip", "0"]);
    expect(features.dotServerNative).toEqual(["--dot-server", "native"]);
    expect(features.dnsListen).toEqual({ rrlOff: ["--dns-rrl", "0"] });
    expect(features.threads).toBe(true);
  });

  it("finds --dot-server native in the option's description", () => {
    expect(detectBridgeFeatures(help).dotServerNative).toEqual(["--dot-server", "native"]);
  });

  it("does not read another option's description as --dot-server's", () => {
    const other = help.replace("(node | native)", "(node)") +
      "  --doh-server ENUM\n      (deno | native)\n";
    expect(detectBridgeFeatures(other).dotServerNative).toBeUndefined();
    expect(detectBridgeFeatures("  --threads N\n").dotServerNative).toBeUndefined();
  });
});

describe("kdig one-shots", () => {
  const answer = `;; TLS session (TLS1.3)-(ECDHE-SECP256R1)-(ECDSA-SECP256R1-SHA256)-(AES-256-GCM)
;; HTTP session (HTTP/2-POST)-(localhost/dns-query)-(status: 200)
;; ->>HEADER<<- opcode: QUERY; status: NOERROR; id: 0
;; Flags: qr aa rd; QUERY: 1; ANSWER: 1; AUTHORITY: 0; ADDITIONAL: 1

;; ANSWER SECTION:
h2.bench.test.      	3596	IN	A	10.0.0.2

;; Received 58 B
;; Time 2026-12-02 16:50:30 UTC
;; From 127.0.0.1@41137(TCP) in 44.2 ms
`;

  it("reads kdig's own time of an answered query", () => {
    expect(parseKdig(answer)).toEqual({ ms: 44.2, ok: true });
  });

  it("counts an error answer as failed, with its rcode", () => {
    const servfail = answer.replace("NOERROR", "SERVFAIL").replace("ANSWER: 1", "ANSWER: 0");
    expect(parseKdig(servfail)).toEqual({ ms: 44.2, ok: false, why: "SERVFAIL, 0 answers" });
  });

  it("counts no answer as failed, with kdig's reason", () => {
    const text = ";; WARNING: can't connect to 127.0.0.1@46031(TCP)\n" +
      ";; ERROR: failed to query server 127.0.0.1@46031(TCP)\n";
    expect(parseKdig(text)).toEqual({
      ms: undefined,
      ok: false,
      why: "can't connect to 127.0.0.1@46031(TCP)",
    });
  });

  it("asks over DoH or DoT with the certificate checked", () => {
    const t = { port: 853, caPath: "/ca.pem", name: "h2.bench.test." };
    const doh = kdigArgs({ ...t, kind: "doh" });
    expect(doh).toContain("+https=/dns-query");
    expect(doh).not.toContain("+tls");
    expect(kdigArgs({ ...t, kind: "dot" })).toEqual([
      "@127.0.0.1",
      "-p",
      "853",
      "+tls",
      "+tls-ca=/ca.pem",
      "+tls-hostname=localhost",
      "+timeout=2",
      "+retry=0",
      "h2.bench.test.",
      "A",
    ]);
  });

  it("takes the median, p90 and max of a series", () => {
    const ms = [44, 3, 5, 4, 41, 2, 6, 3, 4, 5];
    expect(oneShotStats(ms, 1)).toEqual({
      runs: 10,
      failed: 1,
      medianMs: 4.5,
      p90Ms: 41,
      maxMs: 44,
    });
    expect(oneShotStats([3, 1, 2], 0).medianMs).toBe(2);
    const none = oneShotStats([], 3);
    expect(none.runs).toBe(0);
    expect(none.medianMs).toBeNaN();
    expect(none.maxMs).toBeNaN();
  });
});

const fig = (target: string, mode: string, qps: number): FigureRow => ({
  target,
  mode,
  qps,
  p50Ms: 2,
  p99Ms: 4,
  lost: 0,
  cpuS: 10,
  peakRssMb: 100,
  cpuUsPerQuery: 1e6 * 10 / (qps * 10),
});

describe("the main table's rows", () => {
  const shapes = ["h2load GET 16×10", "h2load GET 16×64", "1000 req/s (h2load)"];
  const bridge = shapes.map((s, i) => fig("dotbridge", s, 1000 * (i + 1)));
  const peer = shapes.map((s) => fig("dnsdist", s, 4000));

  it("puts each load's bridge row, peer row and ratio row together", () => {
    const rows = modeRows([{ threads: 1, rows: bridge }], peer);
    expect(rows.map((r) => [r.target, r.mode])).toEqual([
      ["dotbridge", shapes[0]],
      ["dnsdist", shapes[0]],
      ["ratio dotbridge / dnsdist", shapes[0]],
      ["dotbridge", shapes[1]],
      ["dnsdist", shapes[1]],
      ["ratio dotbridge / dnsdist", shapes[1]],
      ["dotbridge", shapes[2]],
      ["dnsdist", shapes[2]],
      ["ratio dotbridge / dnsdist", shapes[2]],
    ]);
    expect(rows[2].qps).toBe(0.25);
    expect(rows[5].qps).toBe(0.5);
    // CPU µs per request: 500 (bridge, 2000 req/s on 10 s) over 250 (peer, 4000 req/s).
    expect(rows[5].cpuUsPerQuery).toBe(2);
  });

  it("names the thread count in ratio rows and skips ratios against n/a", () => {
    const skipped = shapes.map((mode) => ({ target: "dotbridge ×2", mode, unavailable: "n/a" }));
    const rows = modeRows([
      { threads: 1, rows: bridge },
      { threads: 2, rows: skipped },
      { threads: 3 },
    ], peer);
    expect(rows.slice(0, 4).map((r) => r.target)).toEqual([
      "dotbridge",
      "dotbridge ×2",
      "dnsdist",
      "ratio dotbridge / dnsdist",
    ]);
    expect(rows).toHaveLength(12);
  });

  it("prints the bridge alone when the peer did not run", () => {
    expect(modeRows([{ threads: 2, rows: bridge }])).toEqual(bridge);
  });
});

describe("the one-shot table's rows", () => {
  const row = (target: string, face: string, kind: "doh" | "dot", medianMs: number) =>
    ({
      target,
      face,
      kind,
      runs: 20,
      failed: 0,
      medianMs,
      p90Ms: 2 * medianMs,
      maxMs: 90,
    }) as OneShotRow;
  const bridge = [
    row("dotbridge", "DoH (kdig +https)", "doh", 44),
    row("dotbridge", "DoT (kdig +tls)", "dot", 4),
    row("dotbridge", "DoT, --dot-server native (kdig +tls)", "dot", 40),
  ];
  const peer = [
    row("dnsdist", "DoH (kdig +https)", "doh", 4),
    row("dnsdist", "DoT (kdig +tls)", "dot", 4),
  ];

  it("compares every bridge face with the peer's face of the same protocol", () => {
    const rows = oneShotRows([{ threads: 1, rows: bridge }], peer);
    expect(rows.map((r) => [r.target, r.face])).toEqual([
      ["dotbridge", "DoH (kdig +https)"],
      ["dnsdist", "DoH (kdig +https)"],
      ["ratio dotbridge / dnsdist", "DoH (kdig +https)"],
      ["dotbridge", "DoT (kdig +tls)"],
      ["dotbridge", "DoT, --dot-server native (kdig +tls)"],
      ["dnsdist", "DoT (kdig +tls)"],
      ["ratio dotbridge / dnsdist", "DoT (kdig +tls)"],
      ["ratio dotbridge / dnsdist", "DoT, --dot-server native (kdig +tls)"],
    ]);
    expect(rows[2]).toMatchObject({ ratio: true, medianMs: 11, p90Ms: 11, maxMs: 1 });
    expect(rows[7].medianMs).toBe(10);
  });

  it("leaves out ratios against a face that is n/a", () => {
    const noDoh = [{ ...bridge[0], unavailable: "n/a (no DoH face)" }, ...bridge.slice(1)];
    const rows = oneShotRows([{ threads: 1, rows: noDoh }], peer);
    expect(rows.filter((r) => r.ratio).map((r) => r.kind)).toEqual(["dot", "dot"]);
  });

  it("renders as its own table, with the main table left out when empty", () => {
    const report: BenchReport = {
      date: "2026-12-02T00:00:00Z",
      machine: "2 CPUs",
      tools: "kdig 3.2.6",
      settings: ["modes: oneshot (--modes)"],
      rows: [],
      oneShot: oneShotRows([{ threads: 1, rows: bridge }], peer),
      handshakes: [],
      added: [],
      budget: [],
      notes: [],
      commands: [],
    };
    const md = renderReport(report, true);
    expect(md).not.toContain("| QPS |");
    expect(md).toContain("| target | face | runs | median ms | p90 ms | max ms | failed |");
    expect(md).toContain("| dotbridge | DoH (kdig +https) | 20 | 44.0 | 88.0 | 90.0 | 0 |");
    expect(md).toContain("| *ratio dotbridge / dnsdist* | *DoH (kdig +https)* |  | 11.0× |");
  });
});

describe("the handshake-rate client's reports", () => {
  const report = (completed: number, timesUs: number[], failed = 0): HandshakeClientReport => ({
    seconds: 10,
    completed,
    failed,
    errors: failed > 0 ? { "no answer in 5000 ms": failed } : {},
    timesUs,
  });

  it("adds the rates of processes that ran side by side and pools their samples", () => {
    const r = summariseHandshakes([
      report(3, [1000, 2000, 3000]),
      report(2, [4000, 5000], 2),
    ], "cmd");
    expect(r).toMatchObject({ completed: 5, failed: 2, connPerSec: 0.5, command: "cmd" });
    expect(r.errors).toEqual({ "no answer in 5000 ms": 2 });
    expect(r.p50Ms).toBe(3);
    expect(r.p99Ms).toBeCloseTo(5, 0);
  });

  it("gives NaN percentiles when nothing completed", () => {
    const r = summariseHandshakes([report(0, [], 7)], "cmd");
    expect(r.connPerSec).toBe(0);
    expect(r.p50Ms).toBeNaN();
  });

  it("refuses to summarise no report", () => {
    expect(() => summariseHandshakes([], "cmd")).toThrow(/no handshake client/);
  });

  it("reads the last JSON line of a client's output", () => {
    const line = JSON.stringify(report(1, [1500]));
    expect(parseClientReport(`Download something\n${line}\n`).timesUs).toEqual([1500]);
    expect(() => parseClientReport("error: boom\n")).toThrow(SyntaxError);
  });

  it("starts the Deno client, verifying against the CA, with workers per process", () => {
    const args = handshakeClientArgs({
      port: 853,
      name: "h1.bench.test.",
      processes: 2,
      concurrency: 16,
      seconds: 10,
      caPath: "/tmp/ca.pem",
    });
    expect(args.join(" ")).toMatch(
      /handshake_client\.ts --port 853 --name h1\.bench\.test\. --concurrency 16 --seconds 10 --tls deno --ca \/tmp\/ca\.pem$/,
    );
  });
});

describe("the handshake-rate table's rows", () => {
  const row = (target: string, listener: string, connPerSec: number): HandshakeRow => ({
    target,
    listener,
    connPerSec,
    p50Ms: 20,
    p99Ms: 60,
    failed: 0,
    cpuS: 5,
    cpuUsPerConn: 500,
  });

  it("compares both bridge listeners with the peer's DoT row", () => {
    const rows = handshakeRows(
      [{ threads: 1, rows: [row("dotbridge", "DoT", 1500), row("dotbridge", "native", 600)] }],
      [row("dnsdist", "DoT", 1000)],
    );
    expect(rows.map((r) => [r.target, r.listener])).toEqual([
      ["dotbridge", "DoT"],
      ["dotbridge", "native"],
      ["dnsdist", "DoT"],
      ["ratio dotbridge / dnsdist", "DoT"],
      ["ratio dotbridge / dnsdist", "native"],
    ]);
    expect(rows[3]).toMatchObject({ ratio: true, connPerSec: 1.5, cpuUsPerConn: 1 });
    expect(rows[4].connPerSec).toBe(0.6);
  });

  it("leaves out the ratio of a skipped listener and renders its own table", () => {
    const rows = handshakeRows(
      [{
        threads: 2,
        rows: [row("dotbridge", "DoT", 1500), {
          target: "dotbridge",
          listener: "native",
          unavailable: "skipped (deadline)",
        }],
      }],
      [row("dnsdist", "DoT", 1000)],
    );
    expect(rows.filter((r) => r.ratio).map((r) => r.target)).toEqual([
      "ratio dotbridge ×2 threads / dnsdist",
    ]);
    const md = renderReport({
      date: "2026-12-04T00:00:00Z",
      machine: "2 CPUs",
      tools: "Deno",
      settings: [],
      rows: [],
      oneShot: [],
      handshakes: rows,
      added: [],
      budget: [],
      notes: [],
      commands: [],
    }, true);
    expect(md).toContain("| target | listener | conn/s | p50 ms | p99 ms | failed | CPU s |");
    expect(md).toContain("| dotbridge | DoT | 1500 | 20.0 | 60.0 | 0 | 5.00 | 500 |");
    expect(md).toContain("| dotbridge | native | skipped (deadline) |");
    expect(md).toContain("| *ratio dotbridge ×2 threads / dnsdist* | *DoT* | 1.50× |");
  });
});
