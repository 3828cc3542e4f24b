import { describe, expect, it } from "vitest";
import { Counter, Gauge, Histogram, Registry } from "../../src/metrics/registry.ts";
import { rcodeName } from "../../src/metrics/bridge.ts";
import { mergeExpositions } from "../../src/metrics/merge.ts";

describe("metrics Registry", () => {
  it("renders counters with HELP, TYPE and escaped labels", () => {
    const r = new Registry();
    const c = r.add(new Counter("x_total", "Things.", ["kind"]));
    c.inc({ kind: 'a"b\\c' });
    c.inc({ kind: 'a"b\\c' }, 2);
    c.inc({ kind: "plain" });
    expect(r.render()).toBe(
      [
        "# HELP x_total Things.",
        "# TYPE x_total counter",
        'x_total{kind="a\\"b\\\\c"} 3',
        'x_total{kind="plain"} 1',
        "",
      ].join("\n"),
    );
  });

  it("reads callback gauges at scrape time", () => {
    const r = new Registry();
    let open = 1;
    r.add(new Gauge("open", "Open.", ["face"], () => [[{ face: "dot" }, open]]));
    expect(r.render()).toContain('open{face="dot"} 1');
    open = 7;
    expect(r.render()).toContain('open{face="dot"} 7');
  });

  it("renders cumulative histogram buckets, +Inf, sum and count", () => {
    const r = new Registry();
    const h = r.add(new Histogram("lat_seconds", "Latency.", ["u"], [0.1, 1]));
    h.observe({ u: "a" }, 0.05);
    h.observe({ u: "a" }, 0.5);
    h.observe({ u: "a" }, 3);
    const text = r.render();
    expect(text).toContain('lat_seconds_bucket{u="a",le="0.1"} 1');
    expect(text).toContain('lat_seconds_bucket{u="a",le="1"} 2');
    expect(text).toContain('lat_seconds_bucket{u="a",le="+Inf"} 3');
    expect(text).toContain('lat_seconds_sum{u="a"} 3.55');
    expect(text).toContain('lat_seconds_count{u="a"} 3');
  });

  it("refuses a metric name registered twice", () => {
    const r = new Registry();
    r.add(new Counter("dup", "One."));
    expect(() => r.add(new Counter("dup", "Two."))).toThrow(/dup registered twice/);
  });

  it("names rcodes", () => {
    expect([0, 2, 3, 5, 16].map(rcodeName)).toEqual([
      "NOERROR",
      "SERVFAIL",
      "NXDOMAIN",
      "REFUSED",
      "16",
    ]);
  });
});

describe("mergeExpositions", () => {
  it("adds samples across threads, keeps families together, takes the minimum for health", () => {
    const a = [
      "# HELP q_total Q.",
      "# TYPE q_total counter",
      'q_total{rcode="NOERROR"} 2',
      "# HELP up Up.",
      "# TYPE up gauge",
      'up{u="x"} 1',
      "",
    ].join("\n");
    const b = [
      "# HELP q_total Q.",
      "# TYPE q_total counter",
      'q_total{rcode="NOERROR"} 3',
      'q_total{rcode="SERVFAIL"} 1',
      "# HELP up Up.",
      "# TYPE up gauge",
      'up{u="x"} 0',
      "",
    ].join("\n");
    expect(mergeExpositions([a, b], new Set(["up"]))).toBe(
      [
        "# HELP q_total Q.",
        "# TYPE q_total counter",
        'q_total{rcode="NOERROR"} 5',
        'q_total{rcode="SERVFAIL"} 1',
        "# HELP up Up.",
        "# TYPE up gauge",
        'up{u="x"} 0',
        "",
      ].join("\n"),
    );
  });
});
