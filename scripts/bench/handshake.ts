/**
 * The handshake mode: new DoT connections per second, each a TCP connect, a full TLS handshake (no
 * session resumption: the worst case, and what a client that reconnects without a cached
 * session costs), one query for a cached name, its answer, and a close. The load comes from
 * `--processes` client processes (scripts/bench/handshake_client.ts) of `--concurrency` workers
 * each; this module starts them, merges what they report and summarises it, at a target's DoT
 * listener and, for the bridge, at a second bridge with `--dot-server native`.
 *
 * Why this client: a full TLS 1.3 handshake costs the client about as much CPU as the server
 * (key share, certificate chain), so on the 2-core bench machine the client is never free and
 * the cheapest per connection leaves the target the most. Measured there (2026-12-04, cached
 * bridge and dnsdist 1.7.3, 8 s runs, client CPU per completed connection including process
 * start): `Deno.startTls` on a TCP_NODELAY socket 660–830 µs; `node:tls` (on the same rustls,
 * plus its JS stream layer, without verification) 780–1000 µs; `openssl s_time -new` (C,
 * OpenSSL 3.0.22, handshake only, no query) 816 µs; `Deno.connectTls` stalls ~40 ms per
 * connection (no setNoDelay: the query waits behind the client's Finished for a delayed ACK).
 * A C client on this OpenSSL would be no cheaper, so the client is Deno's own TLS, in two
 * processes of 16 workers (one process caps the client at one core while dnsdist's threads
 * use both; the rates of 1×32 and 2×16 were within the run-to-run noise of ±25%).
 *
 * @module
 */
import { percentile } from "./dnsperf.ts";
import type { Target } from "./lab.ts";
import { fmtMs } from "./markdown.ts";
import { measure } from "./measure.ts";
import { exitsWithin, type Supervisor } from "./procs.ts";
import {
  assertAlive,
  type Job,
  jobKey,
  onNativeBridge,
  type RunContext,
  targetName,
  who,
} from "./run_context.ts";

/** What one client process prints (one JSON line). */
export interface HandshakeClientReport {
  /** Its run time. */
  seconds: number;
  /** Connections that got a NOERROR answer inside the run. */
  completed: number;
  /** Connections that failed (refused, handshake error, timeout, closed, not NOERROR). */
  failed: number;
  /** Failures by reason. */
  errors: Record<string, number>;
  /** Each completed connection's time, connect to answer, in µs. */
  timesUs: number[];
}

/** The figures of a handshake-rate run, merged over its client processes. */
export interface HandshakeResult {
  /** Completed connections per second (summed over the processes). */
  connPerSec: number;
  completed: number;
  failed: number;
  errors: Record<string, number>;
  /** Of a whole connection (connect, handshake, query, answer). NaN without samples. */
  p50Ms: number;
  p99Ms: number;
  /** The client command line (one process's), for the report. */
  command: string;
}

/**
 * Merges the reports of client processes that ran side by side for the same time: rates add
 * up, percentiles come from all samples together.
 *
 * @throws {Error} when there is no report
 * @example
 * ```ts
 * summariseHandshakes([
 *   { seconds: 10, completed: 2, failed: 0, errors: {}, timesUs: [1000, 3000] },
 *   { seconds: 10, completed: 1, failed: 1, errors: { "no answer": 1 }, timesUs: [2000] },
 * ], "cmd"); // { connPerSec: 0.3, completed: 3, failed: 1, p50Ms: 2, ... }
 * ```
 */
export function summariseHandshakes(
  reports: HandshakeClientReport[],
  command: string,
): HandshakeResult {
  if (reports.length === 0) throw new Error("no handshake client reported");
  const errors: Record<string, number> = {};
  let completed = 0;
  let failed = 0;
  let connPerSec = 0;
  const all: number[] = [];
  for (const r of reports) {
    completed += r.completed;
    failed += r.failed;
    connPerSec += r.seconds > 0 ? r.completed / r.seconds : 0;
    for (const [why, n] of Object.entries(r.errors)) errors[why] = (errors[why] ?? 0) + n;
    for (const us of r.timesUs) all.push(us / 1000);
  }
  const sorted = Float64Array.from(all).sort();
  return {
    connPerSec,
    completed,
    failed,
    errors,
    p50Ms: percentile(sorted, 50),
    p99Ms: percentile(sorted, 99),
    command,
  };
}

/**
 * Reads a client's stdout: its last line that parses as a report.
 *
 * @throws {SyntaxError} when there is none
 */
export function parseClientReport(stdout: string): HandshakeClientReport {
  const lines = stdout.trim().split("\n").reverse();
  for (const line of lines) {
    if (!line.startsWith("{")) continue;
    const r = JSON.parse(line) as HandshakeClientReport;
    if (typeof r.completed === "number" && Array.isArray(r.timesUs)) return r;
  }
  throw new SyntaxError("no handshake report in the client's output");
}

/** One handshake-rate run. */
export interface HandshakeOptions {
  port: number;
  /** A name the target has cached. */
  name: string;
  /** Client processes. */
  processes: number;
  /** Workers (connections at a time) per process. */
  concurrency: number;
  seconds: number;
  /** The bench CA, for `tls: "deno"` (which verifies). */
  caPath?: string;
  /** The client's TLS stack; default "deno" (`Deno.startTls`). */
  tls?: "node" | "deno";
}

/** The client's command line for `o` (without the process count). */
export function handshakeClientArgs(o: HandshakeOptions): string[] {
  return [
    "run",
    "-A",
    new URL("./handshake_client.ts", import.meta.url).pathname,
    "--port",
    String(o.port),
    "--name",
    o.name,
    "--concurrency",
    String(o.concurrency),
    "--seconds",
    String(o.seconds),
    "--tls",
    o.tls ?? "deno",
    ...(o.caPath ? ["--ca", o.caPath] : []),
  ];
}

/**
 * Runs `o.processes` clients side by side (each a direct child of the supervisor, so its CPU
 * counts as load generator) and merges their reports.
 *
 * @throws {Error} when a client overruns its time by 20 s or prints no report
 */
export async function runHandshakes(
  sup: Supervisor,
  name: string,
  o: HandshakeOptions,
): Promise<HandshakeResult> {
  const args = handshakeClientArgs(o);
  const procs = Array.from(
    { length: o.processes },
    (_, i) => sup.spawn(`${name}-${i}`, Deno.execPath(), args),
  );
  const limitMs = (o.seconds + 20) * 1000;
  const reports: HandshakeClientReport[] = [];
  for (const proc of procs) {
    if (!await exitsWithin(proc, limitMs)) {
      await Promise.all(procs.map((p) => p.stop(1_000)));
      throw new Error(`handshake client ${proc.name} overran ${limitMs} ms`);
    }
    try {
      reports.push(parseClientReport(Deno.readTextFileSync(proc.stdoutPath)));
    } catch (e) {
      const err = Deno.readTextFileSync(proc.stderrPath).trim().split("\n").slice(-3).join(" | ");
      throw new Error(`handshake client ${proc.name}: ${(e as Error).message}: ${err}`);
    }
  }
  const shown = args.map((a) => a.replace(/^.*\/scripts\/bench\//, "scripts/bench/"));
  return summariseHandshakes(
    reports,
    `${o.processes}× deno ${shown.join(" ")}`.replace(`--port ${o.port}`, "--port PORT"),
  );
}

/**
 * One line of the handshake-rate table: new connections per second, each a full TLS handshake
 * and one query.
 */
export interface HandshakeRow {
  target: string;
  /** E.g. "DoT" or "DoT, --dot-server native". */
  listener: string;
  connPerSec?: number;
  /** Of a whole connection: connect, handshake, query, answer. */
  p50Ms?: number;
  p99Ms?: number;
  /** Connections that failed. */
  failed?: number;
  /** The target's CPU seconds over the run. */
  cpuS?: number;
  /** The target's CPU microseconds per completed connection. */
  cpuUsPerConn?: number;
  /** E.g. "skipped (deadline)". */
  unavailable?: string;
  /** Ratio rows are printed in italics with × values. */
  ratio?: boolean;
}

/** The handshake-rate listeners: the bridge's default DoT server and its native one. */
const HANDSHAKE_LISTENER = {
  dot: "DoT",
  dotNative: "DoT, --dot-server native",
} as const;

/** The rows of a handshake job that did not run, each reading `text`. */
export function handshakeUnavailable(ctx: RunContext, job: Job, text: string): HandshakeRow[] {
  return (job.label === "bridge"
    ? [HANDSHAKE_LISTENER.dot, HANDSHAKE_LISTENER.dotNative]
    : [HANDSHAKE_LISTENER.dot]).map((listener) => ({
      target: targetName(ctx, job),
      listener,
      unavailable: text,
    }));
}

/**
 * One handshake job on a started target's DoT listener (the name is cached: the readiness
 * probe asked it): a warm-up, then the measured run; for the bridge also at a second bridge
 * with --dot-server native.
 */
export async function runHandshakeJob(
  ctx: RunContext,
  job: Job,
  target: Target,
): Promise<HandshakeRow[]> {
  const { o, sup, lab, log } = ctx;
  const series = async (listener: string, t: Target): Promise<HandshakeRow> => {
    const what = `${who(job)} handshake rate, ${listener}`;
    const slug = `${jobKey(job)}${listener === HANDSHAKE_LISTENER.dot ? "" : "-native"}`;
    const load = {
      port: t.port,
      name: lab.names[1],
      processes: o.handshakeProcs,
      concurrency: Math.ceil(o.handshakeWorkers / o.handshakeProcs),
      seconds: o.handshakeDuration,
      caPath: lab.pki.caPath,
    };
    if (o.warmup > 0) await runHandshakes(sup, `warmup-${slug}`, { ...load, seconds: o.warmup });
    log(`${what}: ${o.handshakeWorkers} workers, ${o.handshakeDuration} s`);
    const m = await measure(
      { target: t.proc, upstream: lab.upstreamProcs },
      () => runHandshakes(sup, `hs-${slug}`, load),
    );
    assertAlive(t.proc);
    const r = m.result;
    ctx.commands.push(r.command);
    ctx.budget.push({ run: what, ...m.budget });
    if (r.failed > 0) {
      ctx.notes.push(
        `${what}: ${r.failed} connections failed (${
          Object.entries(r.errors).map(([why, n]) => `${n}× ${why}`).join("; ")
        }).`,
      );
    }
    const cpuUsPerConn = r.completed > 0 ? (m.cpuS / r.completed) * 1e6 : undefined;
    log(
      `${what}: ${r.connPerSec.toFixed(0)} conn/s, p50 ${fmtMs(r.p50Ms)} ms, ` +
        `${cpuUsPerConn?.toFixed(0) ?? "–"} CPU µs/conn`,
    );
    return {
      target: targetName(ctx, job),
      listener,
      connPerSec: r.connPerSec,
      p50Ms: r.p50Ms,
      p99Ms: r.p99Ms,
      failed: r.failed,
      cpuS: m.cpuS,
      cpuUsPerConn,
    };
  };
  const out = [await series(HANDSHAKE_LISTENER.dot, target)];
  if (job.label === "bridge") {
    out.push(
      await onNativeBridge(
        ctx,
        job,
        "handshake rate, native DoT",
        (t) => series(HANDSHAKE_LISTENER.dotNative, t),
        { target: targetName(ctx, job), listener: HANDSHAKE_LISTENER.dotNative },
      ),
    );
  }
  return out;
}
