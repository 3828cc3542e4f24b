/**
 * The table's jobs: the bridge (once per `--bridge-threads` count) and the peer in each table
 * mode, most important first, each on a fresh target of its own (started again if it dies
 * mid-run), skipped with an n/a row when the target cannot run the mode or the job would end
 * too near `--deadline`; then the tables made from what they measured.
 *
 * @module
 */
import type { Baselines } from "./baseline.ts";
import { runDohJob } from "./doh_face.ts";
import { runDotJob } from "./dot_modes.ts";
import { type HandshakeRow, handshakeUnavailable, runHandshakeJob } from "./handshake.ts";
import type { FigureResult, FigureRow } from "./measure.ts";
import { type OneShotRow, oneShotUnavailable, runOneShotJob } from "./oneshot.ts";
import {
  FINISH_S,
  isDot,
  isPlain,
  JOB_OVERHEAD_S,
  jobLoadS,
  TABLE_MODES,
  type TableMode,
  tailEstimateS,
  THREADS_OVERHEAD_S,
} from "./options.ts";
import {
  bridgeArgs,
  type Job,
  jobKey,
  MODE_TITLE,
  modeNames,
  type RunContext,
  targetName,
  who,
  withRestarts,
} from "./run_context.ts";
import {
  type AddedLatency,
  handshakeRows,
  modeRows,
  oneShotRows,
  ratioRow,
  type TargetRows,
} from "./table.ts";

/** What the jobs measured, by {@linkcode jobKey}. */
export interface JobResults {
  /** The main table's rows of the DoT and DoH-face jobs. */
  figures: Map<string, FigureRow[]>;
  /** Their fixed-rate runs' mean latency, ms. */
  fixedAvgMs: Map<string, number>;
  oneShots: Map<string, OneShotRow[]>;
  handshakes: Map<string, HandshakeRow[]>;
}

/** The table modes that run, in table order. */
function tableModes(ctx: RunContext): TableMode[] {
  return TABLE_MODES.filter((m) => ctx.o.modes.has(m));
}

/** The bridge's thread counts that run (none without the bridge). */
function threadCounts(ctx: RunContext): number[] {
  return ctx.o.targets.has("bridge") ? ctx.o.bridgeThreads : [];
}

/**
 * What runs, most important first: the first thread count and the peer in every mode, then
 * the other thread counts.
 */
function jobsOf(ctx: RunContext): Job[] {
  const { o } = ctx;
  const jobs: Job[] = [];
  for (const mode of tableModes(ctx)) {
    if (o.targets.has("bridge")) jobs.push({ label: "bridge", mode, threads: o.bridgeThreads[0] });
    if (o.targets.has("peer")) jobs.push({ label: "peer", mode, threads: 1 });
  }
  if (o.targets.has("bridge")) {
    for (const threads of o.bridgeThreads.slice(1)) {
      for (const mode of tableModes(ctx)) jobs.push({ label: "bridge", mode, threads });
    }
  }
  return jobs;
}

/** Runs every job in turn; a job that does not fit or cannot run gets rows saying why. */
export async function runJobs(ctx: RunContext): Promise<JobResults> {
  const { o, lab, log } = ctx;
  const out: JobResults = {
    figures: new Map(),
    fixedAvgMs: new Map(),
    oneShots: new Map(),
    handshakes: new Map(),
  };
  const tailS = tailEstimateS(o);
  let overheadS = JOB_OVERHEAD_S;
  for (const job of jobsOf(ctx)) {
    const key = jobKey(job);
    const unavailable = (text: string) => {
      if (job.mode === "oneshot") {
        out.oneShots.set(key, oneShotUnavailable(ctx, job, text));
      } else if (job.mode === "handshake") {
        out.handshakes.set(key, handshakeUnavailable(ctx, job, text));
      } else {
        out.figures.set(
          key,
          modeNames(ctx, job.mode).map((mode) => ({
            target: targetName(ctx, job),
            mode,
            unavailable: text,
          })),
        );
      }
    };
    const cached = job.mode !== "bridging" && job.mode !== "dns-bridging";
    const hasDohFace = job.label === "peer" || lab.features.httpOff.length > 0;
    const plain = isPlain(job.mode);
    if (job.label === "bridge") {
      if (cached && !ctx.cacheArgs) {
        unavailable("n/a (no cache yet)");
        continue;
      }
      if (job.mode === "doh" && !hasDohFace) {
        unavailable("n/a (no DoH face)");
        continue;
      }
      if (plain && !lab.features.dnsListen) {
        unavailable("n/a (no plain DNS face)");
        continue;
      }
      if (job.threads > 1 && !lab.features.threads) {
        unavailable("n/a (no --threads)");
        continue;
      }
    }
    const plannedS = jobLoadS(o, job.mode, job.label);
    const estimateS = plannedS + overheadS + (job.threads > 1 ? THREADS_OVERHEAD_S : 0);
    const leftS = o.deadline - ctx.elapsedS();
    const what = `${who(job)} ${MODE_TITLE[job.mode]}`;
    if (estimateS + tailS + FINISH_S > leftS) {
      log(
        `skipping ${what}: ~${estimateS.toFixed(0)} s (+${tailS.toFixed(0)} s reserved for ` +
          `later runs) does not fit in the ${leftS.toFixed(0)} s left before --deadline`,
      );
      ctx.skipped.push(what);
      unavailable("skipped (deadline)");
      continue;
    }
    const t0 = ctx.elapsedS();
    const faces = {
      doh: (job.mode === "doh" || job.mode === "oneshot") && hasDohFace,
      dns: plain,
    };
    const start = () =>
      job.label === "bridge"
        ? lab.startBridge(bridgeArgs(ctx, job), [], faces)
        : lab.startPeer(cached, faces);
    if (job.mode === "oneshot") {
      out.oneShots.set(
        key,
        await withRestarts(ctx, what, start, (t) => runOneShotJob(ctx, job, t)),
      );
    } else if (job.mode === "handshake") {
      out.handshakes.set(
        key,
        await withRestarts(ctx, what, start, (t) => runHandshakeJob(ctx, job, t)),
      );
    } else {
      const body = job.mode === "doh" ? runDohJob : runDotJob;
      const r: FigureResult = await withRestarts(ctx, what, start, (t) => body(ctx, job, t));
      out.figures.set(key, r.rows);
      out.fixedAvgMs.set(key, r.fixedAvgMs);
    }
    overheadS = Math.max(
      overheadS,
      ctx.elapsedS() - t0 - plannedS - (job.threads > 1 ? THREADS_OVERHEAD_S : 0),
    );
  }
  return out;
}

/** The tables of the report made from the jobs' results. */
export interface JobTables {
  /** The main table's rows of the table modes (after the upstream's own). */
  rows: FigureRow[];
  oneShot: OneShotRow[];
  handshakes: HandshakeRow[];
  /** Latency added at the fixed rate over the upstream's baseline. */
  added: AddedLatency[];
}

/**
 * The tables: per mode and load, every bridge row, the peer row, and a ratio row per bridge;
 * and the latency each target adds at the fixed rate (each mode's last row) over the upstream's
 * baseline of the same client.
 */
export function tablesOf(ctx: RunContext, r: JobResults, baselines: Baselines): JobTables {
  const { o } = ctx;
  const counts = threadCounts(ctx);
  const bridgesIn = <R>(mode: TableMode, from: Map<string, R[]>): TargetRows<R>[] =>
    counts.map((threads) => ({
      threads,
      rows: from.get(jobKey({ label: "bridge", mode, threads })),
    }));
  const peerIn = <R>(mode: TableMode, from: Map<string, R[]>) =>
    from.get(jobKey({ label: "peer", mode, threads: 1 }));
  const rows: FigureRow[] = [];
  for (const mode of tableModes(ctx)) {
    if (mode !== "oneshot" && mode !== "handshake") {
      rows.push(...modeRows(bridgesIn(mode, r.figures), peerIn(mode, r.figures)));
    }
    // Plain DNS: the bridge's saturation row against the runtime's floor (a bare UDP loop).
    const floor = baselines.udpFloor;
    if (isPlain(mode) && floor) {
      for (const threads of counts) {
        const sat = r.figures.get(jobKey({ label: "bridge", mode, threads }))?.[0];
        const label = `ratio dotbridge${threads > 1 ? ` ×${threads} threads` : ""} / ` +
          "bare Deno UDP loop";
        const row = sat && ratioRow(sat, floor, label);
        if (row) rows.push(row);
      }
    }
  }
  const oneShot = o.modes.has("oneshot")
    ? oneShotRows(bridgesIn("oneshot", r.oneShots), peerIn("oneshot", r.oneShots))
    : [];
  const handshakes = o.modes.has("handshake")
    ? handshakeRows(bridgesIn("handshake", r.handshakes), peerIn("handshake", r.handshakes))
    : [];

  const added: AddedLatency[] = [];
  for (const mode of tableModes(ctx)) {
    const base = mode === "doh"
      ? baselines.h2load?.result
      : isDot(mode)
      ? baselines.dnsperf?.result
      : undefined;
    if (!base) continue;
    const keyed = [
      ...counts.map((threads) => jobKey({ label: "bridge", mode, threads })),
      jobKey({ label: "peer", mode, threads: 1 }),
    ];
    for (const key of keyed) {
      const row = r.figures.get(key)?.at(-1);
      if (!row || row.unavailable) continue;
      added.push({
        target: `${row.target}, ${row.mode}`,
        p50Ms: row.p50Ms! - base.p50Ms,
        p99Ms: row.p99Ms! - base.p99Ms,
        avgMs: (r.fixedAvgMs.get(key) ?? NaN) - base.avgMs,
      });
    }
  }
  return { rows, oneShot, handshakes, added };
}

/** The bridge's thread counts in the report's settings line, e.g. "1, 2" ("–" for none). */
export function threadCountsText(ctx: RunContext): string {
  return threadCounts(ctx).join(", ") || "–";
}
