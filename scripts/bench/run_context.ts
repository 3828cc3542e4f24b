/**
 * What every part of one benchmark run shares: the options, the supervisor and the lab, the
 * loads and their labels, the lists the report collects along the way (load commands, notes,
 * the CPU budget, skipped runs), and the helpers around a target: which job it is and what its
 * rows are called, restarting a target that died mid-run, the second bridge with
 * `--dot-server native`, and whether a run still fits before `--deadline`.
 *
 * @module
 */
import type { DnsperfOptions } from "./dnsperf.ts";
import type { Lab, Target } from "./lab.ts";
import type { BudgetRow } from "./measure.ts";
import { FINISH_S, type Options, type TableMode } from "./options.ts";
import { exitsWithin, type Proc, type Supervisor } from "./procs.ts";

/** The loads of the table's modes, and the words their rows are labelled with. */
export interface Loads {
  /** dnsperf over DoT at saturation (`--connections` × `--outstanding`). */
  sat: Omit<DnsperfOptions, "port">;
  /** dnsperf over DoT at the fixed `--rate`. */
  rate: Omit<DnsperfOptions, "port">;
  /** The same two loads over plain DNS (UDP), for the plain DNS modes. */
  udpSat: Omit<DnsperfOptions, "port">;
  udpRate: Omit<DnsperfOptions, "port">;
  /** E.g. "saturation 16c×1000q". */
  satMode: string;
  /** E.g. "1000 QPS". */
  rateMode: string;
  /** One per `--doh-streams` shape, e.g. "h2load GET 16×10". */
  dohSatModes: string[];
  /** E.g. "1000 req/s (h2load)". */
  dohRateMode: string;
  /** The names the cached DoH face runs rotate through (`--doh-names`). */
  dohNames: string[];
}

/** The loads for `o` over the lab's zone. */
export function loadsOf(o: Options, lab: Lab): Loads {
  const sat: Omit<DnsperfOptions, "port"> = {
    mode: "dot",
    queriesPath: lab.queriesPath,
    clients: o.connections,
    outstanding: o.outstanding,
    seconds: o.duration,
  };
  const rate = { ...sat, clients: o.rateConnections, outstanding: 100, qps: o.rate };
  return {
    sat,
    rate,
    udpSat: { ...sat, mode: "udp" },
    udpRate: { ...rate, mode: "udp" },
    satMode: `saturation ${o.connections}c×${o.outstanding}q`,
    rateMode: `${o.rate} QPS`,
    dohSatModes: o.dohStreams.map((m) => `h2load GET ${o.dohConnections}×${m}`),
    dohRateMode: `${o.rate} req/s (h2load)`,
    dohNames: lab.names.slice(0, o.dohNames),
  };
}

/** One benchmark run in progress. */
export interface RunContext {
  readonly o: Options;
  readonly sup: Supervisor;
  readonly lab: Lab;
  /** The work directory (configs, logs, load outputs). */
  readonly work: string;
  readonly log: (msg: string) => void;
  /** Seconds since the run started. */
  readonly elapsedS: () => number;
  /** The options that turn the bridge's cache on; undefined while it has none. */
  readonly cacheArgs?: string[];
  /** The peer's name and version, e.g. "dnsdist 1.7.3". */
  readonly peerName: string;
  readonly loads: Loads;
  /** Every load command run, for the report (duplicates are dropped there). */
  readonly commands: string[];
  /** The notes under the tables. */
  readonly notes: string[];
  /** Where the machine's CPU went in each measured run. */
  readonly budget: BudgetRow[];
  /** Runs left out to stay inside `--deadline`. */
  readonly skipped: string[];
}

/** How each table mode is named in log lines and notes. */
export const MODE_TITLE: Record<TableMode, string> = {
  bridging: "bridging",
  cached: "cached",
  doh: "cached DoH face",
  oneshot: "one-shot",
  handshake: "handshake rate",
  "dns-bridging": "plain DNS bridging",
  "dns-cached": "plain DNS cached",
};

/** One started target and what is measured on it in one mode. */
export interface Job {
  label: "bridge" | "peer";
  mode: TableMode;
  /** The bridge's --threads (1 for the peer). */
  threads: number;
}

/** The job's key in the result maps, and the slug of its file names. */
export function jobKey(job: Job): string {
  return `${job.label}${job.threads > 1 ? `-t${job.threads}` : ""}-${job.mode}`;
}

/** The bridge's name in the tables, e.g. "dotbridge ×2 threads (Deno 2.9.6)". */
export function bridgeName(threads: number): string {
  return `dotbridge${threads > 1 ? ` ×${threads} threads` : ""} (Deno ${Deno.version.deno})`;
}

/** Who runs the job, in log lines and notes: "bridge", "bridge ×2 threads" or "peer". */
export function who(job: Job): string {
  return job.label === "peer"
    ? "peer"
    : job.threads > 1
    ? `bridge ×${job.threads} threads`
    : "bridge";
}

/** The target column of the job's rows. */
export function targetName(ctx: RunContext, job: Job): string {
  return job.label === "peer" ? ctx.peerName : bridgeName(job.threads);
}

/** The mode column of a DoT or DoH-face job's rows, in the order the job returns them. */
export function modeNames(ctx: RunContext, mode: TableMode): string[] {
  const { loads } = ctx;
  if (mode === "doh") {
    return [...loads.dohSatModes, loads.dohRateMode].map((load) => `${MODE_TITLE.doh}, ${load}`);
  }
  const title = mode === "dns-bridging" || mode === "dns-cached" ? MODE_TITLE[mode] : mode;
  return [`${title}, ${loads.satMode}`, `${title}, ${loads.rateMode}`];
}

/** The bridge's options for a job: its cache (or none), threads, then `extra`. */
export function bridgeArgs(ctx: RunContext, job: Job, extra: string[] = []): string[] {
  const { features } = ctx.lab;
  return [
    ...(job.mode === "bridging" || job.mode === "dns-bridging"
      ? features.cacheOff
      : ctx.cacheArgs!),
    ...(features.threads ? ["--threads", String(job.threads)] : []),
    ...extra,
  ];
}

/** Thrown when a target process ended during its runs (e.g. someone else's `pkill`). */
export class TargetExited extends Error {}

/** @throws {TargetExited} when `proc` has exited */
export function assertAlive(proc: Proc): void {
  if (proc.exited) throw new TargetExited(`${proc.name} exited during the run`);
}

function lastLine(path: string): string {
  try {
    return (Deno.readTextFileSync(path).trim().split("\n").pop() ?? "").slice(0, 200);
  } catch {
    return "";
  }
}

/**
 * Starts a target and runs `body` on it, always stopping it after. If the target process
 * ends mid-run (other people's tests on this machine may kill processes by name), starts a
 * fresh one and runs again, at most twice, and says so in the notes.
 */
export async function withRestarts<T>(
  ctx: RunContext,
  what: string,
  start: () => Promise<Target>,
  body: (target: Target) => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    const target = await start();
    try {
      return await body(target);
    } catch (e) {
      if (ctx.sup.stopping || attempt >= 3 || !(await exitsWithin(target.proc, 1_000))) throw e;
      const status = await target.proc.status;
      const why = `${status.signal ?? `exit ${status.code}`}; its last words: "${
        lastLine(target.proc.stderrPath)
      }"`;
      ctx.log(`${what}: target exited mid-run (${why}); starting it again`);
      ctx.notes.push(`${what}: the target process ended mid-run (${why}), so it was run again.`);
    } finally {
      await target.proc.stop();
    }
  }
}

/**
 * Runs `measure` on a second bridge of this job with `--dot-server native` (restarted when it
 * dies), or makes `row` an n/a row when the bridge has no such listener.
 */
export async function onNativeBridge<R extends { unavailable?: string }>(
  ctx: RunContext,
  job: Job,
  what: string,
  measure: (t: Target) => Promise<R>,
  row: Omit<R, "unavailable">,
): Promise<R> {
  const native = ctx.lab.features.dotServerNative;
  if (!native) return { ...row, unavailable: "n/a (no --dot-server native)" } as R;
  return await withRestarts(
    ctx,
    `${who(job)} ${what}`,
    () => ctx.lab.startBridge(bridgeArgs(ctx, job, native)),
    measure,
  );
}

/**
 * True when a run of ~`needS`, and then `laterS` of later runs, fit before `--deadline`;
 * otherwise logs and records `what` as skipped.
 */
export function fits(ctx: RunContext, what: string, needS: number, laterS: number): boolean {
  if (needS + laterS + FINISH_S <= ctx.o.deadline - ctx.elapsedS()) return true;
  ctx.log(`skipping ${what}: ~${needS.toFixed(0)} s does not fit`);
  ctx.skipped.push(what);
  return false;
}
