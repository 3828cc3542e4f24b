/**
 * Running h2load against the DoH upstream (GET `?dns=` URLs) and reading its summary plus the
 * per-request `--log-file` (start µs, status, duration µs) for percentiles.
 *
 * @module
 */
import { percentile } from "./dnsperf.ts";
import { exitsWithin, type Proc, type Supervisor } from "./procs.ts";

/** What one h2load run reported. */
export interface H2loadResult {
  reqPerSec: number;
  total: number;
  /** Requests of the measured phase answered with a 2xx status. */
  succeeded: number;
  failed: number;
  /** h2load's "status codes" 2xx count (also counts answers arriving after the phase). */
  ok2xx: number;
  p50Ms: number;
  p99Ms: number;
  /** Mean request duration from the log file. */
  avgMs: number;
  samples: number;
  command: string;
}

/** Parses h2load's summary lines. */
export function parseH2loadSummary(
  text: string,
): Pick<H2loadResult, "reqPerSec" | "total" | "succeeded" | "failed" | "ok2xx"> {
  const finished = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(text);
  const req =
    /requests: (\d+) total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/
      .exec(text);
  const codes = /status codes: (\d+) 2xx/.exec(text);
  if (!finished || !req) throw new Error("h2load printed no summary");
  return {
    reqPerSec: Number(finished[1]),
    total: Number(req[1]),
    succeeded: Number(req[2]),
    failed: Number(req[3]) + Number(req[4]),
    ok2xx: codes ? Number(codes[1]) : NaN,
  };
}

/** Request durations (ms) from an h2load `--log-file`, sorted ascending. */
export function parseH2loadLog(text: string): Float64Array {
  const out: number[] = [];
  for (const line of text.split("\n")) {
    const cols = line.split("\t");
    if (cols.length >= 3 && cols[1] !== "-1") out.push(Number(cols[2]) / 1000);
  }
  return Float64Array.from(out).sort();
}

/**
 * One h2load load: `clients` connections × `streams` concurrent streams for `seconds` (or for
 * `requests` requests in all, when set).
 */
export interface H2loadOptions {
  urisPath: string;
  clients: number;
  streams: number;
  /** `-D`; with `requests` set, only the time limit (plus 20 s) for the run. */
  seconds: number;
  logPath: string;
  /** `--rps`: request rate per client; unlimited when unset. */
  rps?: number;
  /** `-n`: a count-based run of this many requests across all clients instead of `-D`. */
  requests?: number;
  /** `--warm-up-time` of a timed run (0: none). Default 1. */
  warmUpSeconds?: number;
}

/** Runs h2load to completion and parses it. */
export async function runH2load(
  sup: Supervisor,
  name: string,
  o: H2loadOptions,
  onStart?: (proc: Proc) => void,
): Promise<H2loadResult> {
  const args = [
    "-i",
    o.urisPath,
    "-c",
    String(o.clients),
    "-m",
    String(o.streams),
    ...(o.requests ? ["-n", String(o.requests)] : ["-D", String(o.seconds)]),
    ...(!o.requests && (o.warmUpSeconds ?? 1) > 0
      ? ["--warm-up-time", String(o.warmUpSeconds ?? 1)]
      : []),
    "-H",
    "accept: application/dns-message",
    "--log-file",
    o.logPath,
    ...(o.rps ? ["--rps", String(o.rps)] : []),
  ];
  try {
    Deno.removeSync(o.logPath); // h2load appends
  } catch {
    // none yet
  }
  const proc = sup.spawn(name, "h2load", args);
  onStart?.(proc);
  const limitMs = (o.seconds + 20) * 1000;
  if (!await exitsWithin(proc, limitMs)) {
    await proc.stop(1_000);
    throw new Error(`h2load ${name} overran ${limitMs} ms`);
  }
  const summary = parseH2loadSummary(Deno.readTextFileSync(proc.stdoutPath));
  const latencies = parseH2loadLog(Deno.readTextFileSync(o.logPath));
  return {
    ...summary,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    avgMs: latencies.length > 0 ? latencies.reduce((a, b) => a + b, 0) / latencies.length : NaN,
    samples: latencies.length,
    command: `h2load ${args.join(" ")}`,
  };
}
