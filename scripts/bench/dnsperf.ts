/**
 * Running dnsperf (2.10) and reading its output: the summary block, and the per-query latency
 * lines `-v` prints (`> NOERROR h1.bench.test A 0.000412`), from which percentiles are computed
 * (this dnsperf has no latency histogram option).
 *
 * @module
 */
import { exitsWithin, type Proc, type Supervisor } from "./procs.ts";

/** What one dnsperf run reported. */
export interface DnsperfResult {
  sent: number;
  completed: number;
  lost: number;
  /** Completed queries per second over the run time. */
  qps: number;
  runTimeS: number;
  /** Response codes and counts, e.g. `{ NOERROR: 1000 }`. */
  rcodes: Record<string, number>;
  avgMs: number;
  /** Percentiles from the per-query lines; NaN when there were none. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Number of per-query latency lines read. */
  samples: number;
  reconnections: number;
  /** The command line, for the report. */
  command: string;
}

/** Numbers from dnsperf's "Statistics:" block. */
export interface DnsperfSummary {
  sent: number;
  completed: number;
  lost: number;
  qps: number;
  runTimeS: number;
  avgMs: number;
  maxMs: number;
  rcodes: Record<string, number>;
  reconnections: number;
}

function num(text: string, re: RegExp): number {
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
}

/**
 * Parses dnsperf's summary.
 *
 * @throws {Error} when the text holds no "Statistics:" block (dnsperf failed)
 */
export function parseDnsperfSummary(text: string): DnsperfSummary {
  const at = text.indexOf("Statistics:");
  if (at < 0) throw new Error("dnsperf printed no statistics");
  const stats = text.slice(at);
  const rcodes: Record<string, number> = {};
  const rcodeLine = /Response codes:\s*(.*)/.exec(stats)?.[1] ?? "";
  for (const m of rcodeLine.matchAll(/([A-Z]+)\s+(\d+)\s+\(/g)) rcodes[m[1]] = Number(m[2]);
  return {
    sent: num(stats, /Queries sent:\s+(\d+)/),
    completed: num(stats, /Queries completed:\s+(\d+)/),
    lost: num(stats, /Queries lost:\s+(\d+)/),
    qps: num(stats, /Queries per second:\s+([\d.]+)/),
    runTimeS: num(stats, /Run time \(s\):\s+([\d.]+)/),
    avgMs: num(stats, /Average Latency \(s\):\s+([\d.]+)/) * 1000,
    maxMs: num(stats, /Average Latency \(s\):.*max ([\d.]+)/) * 1000,
    rcodes,
    reconnections: num(stats, /Reconnections:\s+(\d+)/),
  };
}

/** The latencies (ms) of `-v` per-query lines, sorted ascending. */
export function parseDnsperfLatencies(text: string): Float64Array {
  const out: number[] = [];
  for (const m of text.matchAll(/^> \S+ \S+ \S+ (\d+\.\d+)$/gm)) out.push(Number(m[1]) * 1000);
  return Float64Array.from(out).sort();
}

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** One dnsperf load. */
export interface DnsperfOptions {
  /** dnsperf's `-m`: `udp` is plain DNS. */
  mode: "dot" | "doh" | "udp";
  port: number;
  queriesPath: string;
  /** `-c`: connections. */
  clients: number;
  /** `-q`: outstanding queries in total. */
  outstanding: number;
  /** `-l`: seconds. */
  seconds: number;
  /** `-Q`: rate cap; none when unset. */
  qps?: number;
  /** `-t`: per-query timeout in seconds. Default 5. */
  timeoutS?: number;
  /** DoH only: method. Default GET. */
  dohMethod?: "GET" | "POST";
  /** Per-query latencies (`-v`). Default true. */
  verbose?: boolean;
}

/** dnsperf's argument list for `options`. */
export function dnsperfArgs(o: DnsperfOptions): string[] {
  const args = ["-m", o.mode, "-s", "127.0.0.1", "-p", String(o.port), "-d", o.queriesPath];
  if (o.mode === "doh") {
    args.push(
      "-O",
      `doh-uri=https://localhost:${o.port}/dns-query`,
      "-O",
      `doh-method=${o.dohMethod ?? "GET"}`,
    );
  }
  args.push("-c", String(o.clients), "-q", String(o.outstanding), "-l", String(o.seconds));
  if (o.qps) args.push("-Q", String(o.qps));
  args.push("-t", String(o.timeoutS ?? 5));
  if (o.verbose ?? true) args.push("-v");
  return args;
}

/**
 * Runs dnsperf to completion (killed if it overruns its own limit by 20 s) and parses it.
 * `onStart` sees the process as soon as it is spawned.
 */
export async function runDnsperf(
  sup: Supervisor,
  name: string,
  options: DnsperfOptions,
  onStart?: (proc: Proc) => void,
): Promise<DnsperfResult> {
  const args = dnsperfArgs(options);
  const proc = sup.spawn(name, "dnsperf", args);
  onStart?.(proc);
  const limitMs = (options.seconds + (options.timeoutS ?? 5) + 20) * 1000;
  if (!await exitsWithin(proc, limitMs)) {
    await proc.stop(1_000);
    throw new Error(`dnsperf ${name} overran ${limitMs} ms; output in ${proc.stdoutPath}`);
  }
  const text = Deno.readTextFileSync(proc.stdoutPath);
  let summary: DnsperfSummary;
  try {
    summary = parseDnsperfSummary(text);
  } catch (e) {
    const err = Deno.readTextFileSync(proc.stderrPath).trim().split("\n").slice(-3).join(" | ");
    throw new Error(`dnsperf ${name}: ${(e as Error).message}: ${err}`);
  }
  const latencies = parseDnsperfLatencies(text);
  return {
    ...summary,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    samples: latencies.length,
    command: `dnsperf ${args.join(" ")}`,
  };
}
