/**
 * The oneshot mode: one query on a new connection, from a new kdig process each time, timed by
 * kdig itself (`;; From 127.0.0.1@PORT(TCP) in 44.2 ms`: connect, TLS handshake, query and
 * answer; no process start), at a target's DoH and DoT faces and, for the bridge, at the DoT
 * face of a second bridge with `--dot-server native`. This is where a server that leaves a
 * small write behind another without TCP_NODELAY shows: the second write waits for the client's
 * delayed ACK (~40 ms).
 *
 * @module
 */
import { percentile } from "./dnsperf.ts";
import type { Target } from "./lab.ts";
import { fmtMs } from "./markdown.ts";
import type { Proc } from "./procs.ts";
import {
  assertAlive,
  type Job,
  onNativeBridge,
  type RunContext,
  targetName,
  who,
} from "./run_context.ts";

/** The protocol of a one-shot series: DoH (`kdig +https`, HTTP/2 POST) or DoT (`kdig +tls`). */
export type OneShotKind = "doh" | "dot";

/** Where a one-shot series goes and what it asks. */
export interface OneShotTarget {
  kind: OneShotKind;
  port: number;
  /** The CA kdig verifies the server's certificate against (its name: localhost). */
  caPath: string;
  /** The name asked (type A). */
  name: string;
}

/** kdig's arguments for one query at `t`: certificate verified, one try of at most 2 s. */
export function kdigArgs(t: OneShotTarget): string[] {
  return [
    "@127.0.0.1",
    "-p",
    String(t.port),
    t.kind === "doh" ? "+https=/dns-query" : "+tls",
    `+tls-ca=${t.caPath}`,
    "+tls-hostname=localhost",
    "+timeout=2",
    "+retry=0",
    t.name,
    "A",
  ];
}

/** What one kdig run said: its time when it got an answer, and whether that was NOERROR. */
export interface KdigAnswer {
  /** kdig's "in X ms"; undefined when it printed none (no answer). */
  ms?: number;
  /** NOERROR with at least one answer record. */
  ok: boolean;
  /** Why not ok: kdig's error line or the rcode. */
  why?: string;
}

/** Reads kdig's output (stdout and stderr together). */
export function parseKdig(text: string): KdigAnswer {
  const time = /^;; From \S+ in ([\d.]+) ms$/m.exec(text);
  const ms = time ? Number(time[1]) : undefined;
  const status = /opcode: \w+; status: (\w+)/.exec(text)?.[1];
  const answers = Number(/ANSWER: (\d+)/.exec(text)?.[1] ?? 0);
  if (ms !== undefined && status === "NOERROR" && answers > 0) return { ms, ok: true };
  const error = /^;; (?:ERROR|WARNING): (.*)$/m.exec(text)?.[1];
  return {
    ms,
    ok: false,
    why: error ?? (status ? `${status}, ${answers} answers` : "no answer printed"),
  };
}

/** Median (mean of the middle two for an even count), p90 and max of a series, in ms. */
export interface OneShotStats {
  /** Queries measured (answered NOERROR). */
  runs: number;
  /** Queries that got no good answer (not in the figures). */
  failed: number;
  medianMs: number;
  p90Ms: number;
  maxMs: number;
}

/** The figures of a series from its good samples (ms, any order). NaN figures when empty. */
export function oneShotStats(samples: number[], failed: number): OneShotStats {
  const sorted = Float64Array.from(samples).sort();
  const n = sorted.length;
  const median = n === 0
    ? NaN
    : n % 2 === 1
    ? sorted[(n - 1) / 2]
    : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
  return {
    runs: n,
    failed,
    medianMs: median,
    p90Ms: percentile(sorted, 90),
    maxMs: n === 0 ? NaN : sorted[n - 1],
  };
}

/** Runs kdig once; a kdig that has not ended after `timeoutMs` is killed (no answer). */
export async function runKdig(args: string[], timeoutMs = 5_000): Promise<KdigAnswer> {
  try {
    const out = await new Deno.Command("kdig", {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(timeoutMs),
    }).output();
    const dec = new TextDecoder();
    const answer = parseKdig(dec.decode(out.stdout) + dec.decode(out.stderr));
    if (out.signal) return { ok: false, why: `kdig killed (${out.signal}) after ${timeoutMs} ms` };
    return answer;
  } catch (e) {
    return { ok: false, why: `kdig: ${(e as Error).message}` };
  }
}

/** A measured series: the figures, the distinct reasons of failures, the command. */
export interface OneShotSeries extends OneShotStats {
  errors: string[];
  command: string;
}

/**
 * `warm` queries to fill the target's cache (not counted; more than one when its threads each
 * have a cache of their own), then `runs` one-shot queries, one after another, each on a new
 * kdig process and connection.
 */
export async function oneShotSeries(
  t: OneShotTarget,
  runs: number,
  warm = 1,
): Promise<OneShotSeries> {
  const args = kdigArgs(t);
  for (let i = 0; i < warm; i++) await runKdig(args);
  const samples: number[] = [];
  const errors = new Set<string>();
  let failed = 0;
  for (let i = 0; i < runs; i++) {
    const a = await runKdig(args);
    if (a.ok) {
      samples.push(a.ms!);
    } else {
      failed++;
      errors.add(a.why ?? "?");
    }
  }
  return {
    ...oneShotStats(samples, failed),
    errors: [...errors],
    command: `kdig ${args.join(" ")}`,
  };
}

/** One line of the one-shot latency table: a series of queries, each on a new connection. */
export interface OneShotRow {
  target: string;
  /** E.g. "DoH (kdig +https)". */
  face: string;
  /** The protocol: rows of one kind are compared with the peer's row of that kind. */
  kind: OneShotKind;
  /** Queries measured. */
  runs?: number;
  /** Queries without a good answer (not in the figures). */
  failed?: number;
  medianMs?: number;
  p90Ms?: number;
  maxMs?: number;
  /** E.g. "n/a (no DoH face)". */
  unavailable?: string;
  /** Ratio rows are printed in italics with × values. */
  ratio?: boolean;
}

/** The one-shot faces: the label in the table and the protocol kdig speaks. */
const ONESHOT_FACE = {
  doh: { face: "DoH (kdig +https)", kind: "doh" },
  dot: { face: "DoT (kdig +tls)", kind: "dot" },
  dotNative: { face: "DoT, --dot-server native (kdig +tls)", kind: "dot" },
} as const satisfies Record<string, { face: string; kind: OneShotKind }>;

/** The faces a job measures: DoH and DoT, and for the bridge also native DoT. */
function facesOf(job: Job): { face: string; kind: OneShotKind }[] {
  return job.label === "bridge"
    ? [ONESHOT_FACE.doh, ONESHOT_FACE.dot, ONESHOT_FACE.dotNative]
    : [ONESHOT_FACE.doh, ONESHOT_FACE.dot];
}

/** The rows of a oneshot job that did not run, each reading `text`. */
export function oneShotUnavailable(ctx: RunContext, job: Job, text: string): OneShotRow[] {
  return facesOf(job).map((f) => ({ target: targetName(ctx, job), ...f, unavailable: text }));
}

/**
 * One oneshot job on a started target: kdig series at its DoH and DoT faces (cached answers);
 * for the bridge also at the DoT face of a second bridge with --dot-server native.
 */
export async function runOneShotJob(
  ctx: RunContext,
  job: Job,
  target: Target,
): Promise<OneShotRow[]> {
  const { o, lab, log } = ctx;
  const series = async (
    f: { face: string; kind: OneShotKind },
    port: number | undefined,
    proc: Proc,
  ): Promise<OneShotRow> => {
    const row = { target: targetName(ctx, job), face: f.face, kind: f.kind };
    if (port === undefined) return { ...row, unavailable: "n/a (no DoH face)" };
    const what = `${who(job)} one-shot ${f.face}`;
    log(`${what}: ${o.oneshotRuns} queries`);
    const s = await oneShotSeries(
      { kind: f.kind, port, caPath: lab.pki.caPath, name: lab.names[1] },
      o.oneshotRuns,
      // Each thread of a bridge has its own cache, and the kernel picks the thread: with
      // 8 per thread, every one all but surely gets the name.
      job.threads > 1 ? 8 * job.threads : 1,
    );
    assertAlive(proc);
    ctx.commands.push(s.command.replace(`-p ${port}`, "-p PORT"));
    if (s.failed > 0) {
      ctx.notes.push(
        `${what}: ${s.failed} of ${o.oneshotRuns} queries got no good answer ` +
          `(${s.errors.join("; ")}).`,
      );
    }
    log(
      `${what}: median ${fmtMs(s.medianMs)} ms, p90 ${fmtMs(s.p90Ms)} ms, ` +
        `max ${fmtMs(s.maxMs)} ms${s.failed > 0 ? `, ${s.failed} failed` : ""}`,
    );
    return {
      ...row,
      runs: s.runs,
      failed: s.failed,
      medianMs: s.medianMs,
      p90Ms: s.p90Ms,
      maxMs: s.maxMs,
    };
  };
  const out = [
    await series(ONESHOT_FACE.doh, target.dohPort, target.proc),
    await series(ONESHOT_FACE.dot, target.port, target.proc),
  ];
  if (job.label === "bridge") {
    out.push(
      await onNativeBridge(
        ctx,
        job,
        "one-shot native DoT",
        (t) => series(ONESHOT_FACE.dotNative, t.port, t.proc),
        { target: targetName(ctx, job), ...ONESHOT_FACE.dotNative },
      ),
    );
  }
  return out;
}
