/**
 * A small metrics registry that renders the Prometheus text format (version 0.0.4): counters,
 * gauges (set, or read from a callback at scrape time) and histograms, with labels. No runtime
 * APIs; the edge serves `render()` on `/metrics`.
 *
 * @module
 */

type Labels = Readonly<Record<string, string>>;

function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll("\n", "\\n").replaceAll('"', '\\"');
}

function labelText(names: readonly string[], values: readonly string[], extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra) parts.push(extra);
  return parts.length ? `{${parts.join(",")}}` : "";
}

function formatNumber(n: number): string {
  if (Number.isNaN(n)) return "NaN";
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

interface Metric {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  render(lines: string[]): void;
}

abstract class Labelled<T> {
  protected readonly series = new Map<string, { values: string[]; data: T }>();
  constructor(readonly labelNames: readonly string[]) {}

  protected get(labels: Labels, init: () => T): T {
    // Called on every query: build the key without intermediate arrays.
    const names = this.labelNames;
    let key = "";
    for (let i = 0; i < names.length; i++) {
      if (i > 0) key += "\u0000";
      key += labels[names[i]] ?? "";
    }
    let s = this.series.get(key);
    if (!s) {
      s = { values: names.map((n) => labels[n] ?? ""), data: init() };
      this.series.set(key, s);
    }
    return s.data;
  }
}

/** A monotonically increasing count. */
export class Counter extends Labelled<{ v: number }> implements Metric {
  readonly type = "counter";
  constructor(readonly name: string, readonly help: string, labelNames: readonly string[] = []) {
    super(labelNames);
  }

  /** Adds `n` (default 1) to the series with these labels. */
  inc(labels: Labels = {}, n = 1): void {
    this.get(labels, () => ({ v: 0 })).v += n;
  }

  /** The series with these labels, bound: for callers that count into it often. */
  labels(labels: Labels = {}): { inc(n?: number): void } {
    const data = this.get(labels, () => ({ v: 0 }));
    return { inc: (n = 1) => void (data.v += n) };
  }

  /** The current value of one series (tests, health pages). */
  value(labels: Labels = {}): number {
    return this.get(labels, () => ({ v: 0 })).v;
  }

  render(lines: string[]): void {
    for (const { values, data } of this.series.values()) {
      lines.push(`${this.name}${labelText(this.labelNames, values)} ${formatNumber(data.v)}`);
    }
  }
}

/** A value that goes up and down; set directly or read from `collect` at scrape time. */
export class Gauge extends Labelled<{ v: number }> implements Metric {
  readonly type = "gauge";
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[] = [],
    readonly collect?: () => Iterable<[Labels, number]>,
  ) {
    super(labelNames);
  }

  set(labels: Labels, v: number): void {
    this.get(labels, () => ({ v: 0 })).v = v;
  }

  add(labels: Labels, n: number): void {
    this.get(labels, () => ({ v: 0 })).v += n;
  }

  /** The series with these labels, bound: for callers that change it often. */
  labels(labels: Labels): { add(n: number): void } {
    const data = this.get(labels, () => ({ v: 0 }));
    return { add: (n) => void (data.v += n) };
  }

  render(lines: string[]): void {
    if (this.collect) {
      for (const [labels, v] of this.collect()) this.set(labels, v);
    }
    for (const { values, data } of this.series.values()) {
      lines.push(`${this.name}${labelText(this.labelNames, values)} ${formatNumber(data.v)}`);
    }
  }
}

/** Default latency buckets in seconds: 0.5 ms to 5 s. */
export const LATENCY_BUCKETS = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
];

/** Observations counted into cumulative buckets, with their sum and count. */
export class Histogram extends Labelled<{ counts: number[]; sum: number; count: number }>
  implements Metric {
  readonly type = "histogram";
  constructor(
    readonly name: string,
    readonly help: string,
    labelNames: readonly string[] = [],
    readonly buckets: readonly number[] = LATENCY_BUCKETS,
  ) {
    super(labelNames);
  }

  observe(labels: Labels, value: number): void {
    this.#observe(this.#series(labels), value);
  }

  /** The series with these labels, bound: for callers that observe into it often. */
  labels(labels: Labels): { observe(value: number): void } {
    const s = this.#series(labels);
    return { observe: (value) => this.#observe(s, value) };
  }

  #series(labels: Labels) {
    return this.get(labels, () => ({
      counts: new Array(this.buckets.length).fill(0),
      sum: 0,
      count: 0,
    }));
  }

  #observe(s: { counts: number[]; sum: number; count: number }, value: number): void {
    for (let i = 0; i < this.buckets.length; i++) {
      if (value <= this.buckets[i]) {
        s.counts[i]++;
        break;
      }
    }
    s.sum += value;
    s.count++;
  }

  render(lines: string[]): void {
    for (const { values, data } of this.series.values()) {
      let cumulative = 0;
      for (let i = 0; i < this.buckets.length; i++) {
        cumulative += data.counts[i];
        const le = `le="${formatNumber(this.buckets[i])}"`;
        lines.push(`${this.name}_bucket${labelText(this.labelNames, values, le)} ${cumulative}`);
      }
      lines.push(
        `${this.name}_bucket${labelText(this.labelNames, values, 'le="+Inf"')} ${data.count}`,
      );
      lines.push(`${this.name}_sum${labelText(this.labelNames, values)} ${formatNumber(data.sum)}`);
      lines.push(`${this.name}_count${labelText(this.labelNames, values)} ${data.count}`);
    }
  }
}

/**
 * A set of metrics rendered together.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * const queries = registry.add(new Counter("dns_queries_total", "Queries.", ["rcode"]));
 * queries.inc({ rcode: "NOERROR" });
 * console.log(registry.render());
 * ```
 */
export class Registry {
  readonly #metrics: Metric[] = [];

  add<M extends Metric>(metric: M): M {
    if (this.#metrics.some((m) => m.name === metric.name)) {
      throw new RangeError(`metrics: ${metric.name} registered twice`);
    }
    this.#metrics.push(metric);
    return metric;
  }

  /** The Prometheus text exposition of every metric. */
  render(): string {
    const lines: string[] = [];
    for (const m of this.#metrics) {
      lines.push(`# HELP ${m.name} ${m.help.replaceAll("\\", "\\\\").replaceAll("\n", "\\n")}`);
      lines.push(`# TYPE ${m.name} ${m.type}`);
      m.render(lines);
    }
    return lines.join("\n") + "\n";
  }
}

/** The Content-Type of {@linkcode Registry.render}'s output. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";
