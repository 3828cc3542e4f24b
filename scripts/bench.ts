/**
 * `deno task bench`: dotbridge against dnsdist as a DoT→DoH bridge, side by side, on loopback.
 *
 * knotd (authoritative for bench.test.) behind dnsdist serving DoH with a packet cache is the
 * shared upstream; dnsperf drives DoT load at the bridge and at dnsdist configured as the same
 * bridge, h2load drives both cached DoH faces, and kdig times one-shot queries on new
 * connections. Every program is started here and stopped at the end (also on error, SIGINT and
 * the overall deadline). `--help` lists the knobs (scripts/bench/options.ts); `--quick` is a
 * smoke run of under a minute, `--modes` picks parts of the run.
 *
 * @module
 */
import { h2loadUris } from "./bench/configs.ts";
import { type DnsperfOptions, type DnsperfResult, runDnsperf } from "./bench/dnsperf.ts";
import { type H2loadResult, runH2load } from "./bench/h2load.ts";
import { runHandshakes } from "./bench/handshake.ts";
import { Lab, type Target } from "./bench/lab.ts";
import { dnsperfRow, h2loadRow, machineFacts, measure, type Measured } from "./bench/measure.ts";
import { type OneShotKind, oneShotSeries } from "./bench/oneshot.ts";
import {
  FINISH_S,
  HELP,
  idleEstimateS,
  isDot,
  JOB_OVERHEAD_S,
  jobLoadS,
  type Options,
  parseOptions,
  profileEstimateS,
  requiredTools,
  runsIdle,
  runsScale,
  scaleEstimateS,
  TABLE_MODES,
  type TableMode,
  tailEstimateS,
  THREADS_OVERHEAD_S,
} from "./bench/options.ts";
import { capture, exitsWithin, type Proc, REPO_DIR, Supervisor } from "./bench/procs.ts";
import { profileBridge } from "./bench/profile_run.ts";
import { connectionScale, type ScaleResult } from "./bench/scale.ts";
import { idleBridgeArgs, idleMemory, type IdleResult } from "./bench/idle_memory.ts";
import {
  type AddedLatency,
  type BenchReport,
  type BudgetRow,
  type FigureRow,
  fmtMs,
  type HandshakeRow,
  handshakeRows,
  modeRows,
  type OneShotRow,
  oneShotRows,
  renderReport,
  replaceReadmeBlock,
} from "./bench/table.ts";

const MODE_TITLE: Record<TableMode, string> = {
  bridging: "bridging",
  cached: "cached",
  doh: "cached DoH face",
  oneshot: "one-shot",
  handshake: "handshake rate",
};

/** The handshake-rate listeners: the bridge's default DoT server and its native one. */
const HANDSHAKE_LISTENER = {
  dot: "DoT",
  dotNative: "DoT, --dot-server native",
} as const;

/** The one-shot faces: the label in the table and the protocol kdig speaks. */
const ONESHOT_FACE = {
  doh: { face: "DoH (kdig +https)", kind: "doh" },
  dot: { face: "DoT (kdig +tls)", kind: "dot" },
  dotNative: { face: "DoT, --dot-server native (kdig +tls)", kind: "dot" },
} as const satisfies Record<string, { face: string; kind: OneShotKind }>;

/** One started target and what is measured on it in one mode. */
interface Job {
  label: "bridge" | "peer";
  mode: TableMode;
  /** The bridge's --threads (1 for the peer). */
  threads: number;
}

function jobKey(job: Job): string {
  return `${job.label}${job.threads > 1 ? `-t${job.threads}` : ""}-${job.mode}`;
}

function bridgeName(threads: number): string {
  return `dotbridge${threads > 1 ? ` ×${threads} threads` : ""} (Deno ${Deno.version.deno})`;
}

/**
 * Connections of the DoH cache fill: 16, and 8 per thread for more than two threads, so that
 * the kernel (SO_REUSEPORT) all but surely hands every thread of a bridge some of them.
 */
function dohFillConnections(threads: number): number {
  return Math.max(16, 8 * threads);
}

async function main(): Promise<number> {
  let o: Options | undefined;
  try {
    o = parseOptions(Deno.args);
  } catch (e) {
    console.error(`bench: ${(e as Error).message}`);
    return 2;
  }
  if (!o) {
    console.log(HELP);
    return 0;
  }
  for (const tool of requiredTools(o)) {
    if (!(await capture("bash", ["-c", `command -v ${tool}`])).trim().startsWith("/")) {
      console.error(`bench: ${tool} is not on PATH`);
      return 2;
    }
  }

  const work = await Deno.makeTempDir({ prefix: "dotbridge-bench-" });
  const logs = `${work}/logs`;
  Deno.mkdirSync(logs);
  const sup = new Supervisor(logs);
  const started = performance.now();
  const log = (msg: string) =>
    console.error(`[bench ${((performance.now() - started) / 1000).toFixed(1)}s] ${msg}`);

  let finishing = false;
  const abort = async (why: string, code: number) => {
    if (finishing) return;
    finishing = true;
    log(`${why}: stopping everything`);
    await sup.stopAll(2_000);
    log(`work directory kept: ${work}`);
    Deno.exit(code);
  };
  const onSigint = () => void abort("SIGINT", 130);
  const onSigterm = () => void abort("SIGTERM", 143);
  Deno.addSignalListener("SIGINT", onSigint);
  Deno.addSignalListener("SIGTERM", onSigterm);
  const deadline = setTimeout(() => void abort(`deadline of ${o.deadline} s`, 3), o.deadline * 1e3);
  globalThis.addEventListener("unload", () => sup.killAllNow());

  let failed = false;
  try {
    const report = await run(o, sup, work, log, () => (performance.now() - started) / 1000);
    const markdown = renderReport(report);
    console.log(markdown);
    const outPath = o.out ?? `${work}/bench-results.md`;
    Deno.writeTextFileSync(outPath, markdown);
    log(`results written to ${outPath}`);
    if (o.writeReadme) {
      const readmePath = `${REPO_DIR}/README.md`;
      const readme = Deno.readTextFileSync(readmePath);
      Deno.writeTextFileSync(readmePath, replaceReadmeBlock(readme, renderReport(report, true)));
      log(`README.md: bench block replaced`);
    }
  } catch (e) {
    failed = true;
    log(`failed: ${(e as Error).stack ?? e}`);
  } finally {
    finishing = true;
    clearTimeout(deadline);
    await sup.stopAll();
    Deno.removeSignalListener("SIGINT", onSigint);
    Deno.removeSignalListener("SIGTERM", onSigterm);
    if (o.keep || failed) {
      log(`work directory kept: ${work}`);
    } else {
      // Keep only the results and the profile.
      for (const entry of Deno.readDirSync(work)) {
        if (entry.name !== "bench-results.md" && entry.name !== "profile") {
          Deno.removeSync(`${work}/${entry.name}`, { recursive: true });
        }
      }
    }
  }
  return failed ? 1 : 0;
}

async function run(
  o: Options,
  sup: Supervisor,
  work: string,
  log: (msg: string) => void,
  elapsedS: () => number,
): Promise<BenchReport> {
  const facts = await machineFacts();
  const notes: string[] = [];
  const commands: string[] = [];
  const rows: FigureRow[] = [];
  const budget: BudgetRow[] = [];
  const dot = [...o.modes].some(isDot);
  const tableModes = TABLE_MODES.filter((m) => o.modes.has(m));

  // 1. PKI, zone, and what the bridge supports.
  const lab = await Lab.create(sup, {
    repo: REPO_DIR,
    work,
    names: o.names,
    bridgeArgs: o.bridgeArgs,
  });
  const cacheArgs = o.bridgeCacheArgs ?? lab.features.cacheOn;

  // 2. The upstream; its ceiling and dnsperf baseline for the DoT modes, its h2load baseline
  // for the DoH face.
  const { knotPort, dohPort } = await lab.startUpstream();
  log(`upstream up: knotd :${knotPort}, dnsdist DoH :${dohPort}`);
  const upstreamName = "upstream: dnsdist DoH + knotd";
  const onUpstream = { target: lab.upstreamProc, upstream: lab.upstreamProcs };
  const urisPath = `${work}/uris.txt`;
  Deno.writeTextFileSync(urisPath, h2loadUris(lab.names, dohPort));

  let baseline: Measured<DnsperfResult> | undefined;
  if (dot) {
    log(`ceiling: h2load 16 connections × 100 streams, ${o.ceilingDuration} s`);
    const ceiling = await measure(onUpstream, () =>
      runH2load(sup, "h2load-ceiling", {
        urisPath,
        clients: 16,
        streams: 100,
        seconds: o.ceilingDuration,
        logPath: `${work}/h2load-ceiling.log`,
      }));
    commands.push(ceiling.result.command);
    rows.push(h2loadRow(upstreamName, "ceiling, h2load GET 16×100", ceiling));
    budget.push({ run: "upstream ceiling (h2load)", ...ceiling.budget });

    log(`baseline: dnsperf -m doh at ${o.rate} QPS, ${o.duration} s`);
    baseline = await measure(onUpstream, () =>
      runDnsperf(sup, "dnsperf-doh-baseline", {
        mode: "doh",
        port: dohPort,
        queriesPath: lab.queriesPath,
        clients: 1,
        outstanding: 1,
        seconds: o.duration,
        qps: o.rate,
        dohMethod: "GET",
      }));
    commands.push(baseline.result.command);
    rows.push(dnsperfRow(upstreamName, `direct DoH, ${o.rate} QPS (dnsperf)`, baseline));
    budget.push({ run: `upstream direct DoH ${o.rate} QPS (dnsperf)`, ...baseline.budget });
  }

  let baselineH2: Measured<H2loadResult> | undefined;
  if (o.modes.has("doh")) {
    // As long as the DoH face's fixed-rate runs it is compared with.
    log(`baseline: h2load --rps ${o.rate} on one connection, ${o.dohDuration} s`);
    baselineH2 = await measure(onUpstream, () =>
      runH2load(sup, "h2load-baseline", {
        urisPath,
        clients: 1,
        streams: 10,
        seconds: o.dohDuration,
        logPath: `${work}/h2load-rate.log`,
        rps: o.rate,
      }));
    commands.push(baselineH2.result.command);
    rows.push(h2loadRow(upstreamName, `direct DoH, ${o.rate} req/s (h2load)`, baselineH2));
    budget.push({ run: `upstream direct DoH ${o.rate} req/s (h2load)`, ...baselineH2.budget });
  }

  // 3-5. The bridge (once per thread count) and the peer: bridging and cached over DoT, at
  // saturation and at a fixed rate; their cached DoH faces under h2load; one-shots by kdig.
  const satLoad: Omit<DnsperfOptions, "port"> = {
    mode: "dot",
    queriesPath: lab.queriesPath,
    clients: o.connections,
    outstanding: o.outstanding,
    seconds: o.duration,
  };
  const rateLoad: Omit<DnsperfOptions, "port"> = {
    ...satLoad,
    clients: o.rateConnections,
    outstanding: 100,
    qps: o.rate,
  };
  const satMode = `saturation ${o.connections}c×${o.outstanding}q`;
  const rateMode = `${o.rate} QPS`;
  const dohSatModes = o.dohStreams.map((m) => `h2load GET ${o.dohConnections}×${m}`);
  const dohRateMode = `${o.rate} req/s (h2load)`;
  const peerName = /dnsdist [\d.]+/.exec(facts.tools)?.[0] ?? "dnsdist";
  const dohNames = lab.names.slice(0, o.dohNames);
  const avgMs = new Map<string, number>();
  const skipped: string[] = [];

  const who = (job: Job) =>
    job.label === "peer" ? "peer" : job.threads > 1 ? `bridge ×${job.threads} threads` : "bridge";
  const targetName = (job: Job) => job.label === "peer" ? peerName : bridgeName(job.threads);
  const modeNames = (mode: TableMode) =>
    mode === "doh"
      ? [...dohSatModes, dohRateMode].map((load) => `${MODE_TITLE.doh}, ${load}`)
      : [`${mode}, ${satMode}`, `${mode}, ${rateMode}`];
  const oneShotFaces = (job: Job) =>
    job.label === "bridge"
      ? [ONESHOT_FACE.doh, ONESHOT_FACE.dot, ONESHOT_FACE.dotNative]
      : [ONESHOT_FACE.doh, ONESHOT_FACE.dot];
  /** The bridge's options for a job: its cache (or none), threads, then `extra`. */
  const bridgeArgs = (job: Job, extra: string[] = []) => [
    ...(job.mode === "bridging" ? lab.features.cacheOff : cacheArgs!),
    ...(lab.features.threads ? ["--threads", String(job.threads)] : []),
    ...extra,
  ];

  /** DoT: a warm-up, then dnsperf at saturation and at the fixed rate. */
  const dotRuns = async (job: Job, target: Target): Promise<FigureRow[]> => {
    const { mode } = job;
    const label = who(job);
    const slug = jobKey(job);
    const watched = { target: target.proc, upstream: lab.upstreamProcs };
    if (o.warmup > 0) {
      await runDnsperf(sup, `warmup-${slug}`, {
        ...satLoad,
        port: target.port,
        outstanding: Math.min(o.outstanding, 200),
        seconds: o.warmup,
        verbose: false,
      });
    }
    log(`${label} ${mode}: ${satMode}, ${o.duration} s`);
    const sat = await measure(
      watched,
      () => runDnsperf(sup, `sat-${slug}`, { ...satLoad, port: target.port }),
    );
    assertAlive(target.proc);
    log(`${label} ${mode}: ${sat.result.qps.toFixed(0)} QPS; now ${rateMode}, ${o.duration} s`);
    const fixed = await measure(
      watched,
      () => runDnsperf(sup, `rate-${slug}`, { ...rateLoad, port: target.port }),
    );
    assertAlive(target.proc);
    commands.push(sat.result.command, fixed.result.command);
    avgMs.set(slug, fixed.result.avgMs);
    budget.push({ run: `${label} ${mode}, ${satMode}`, ...sat.budget });
    budget.push({ run: `${label} ${mode}, ${rateMode}`, ...fixed.budget });
    for (const m of [sat, fixed]) {
      const bad = m.result.completed - (m.result.rcodes.NOERROR ?? 0);
      if (bad > 0) {
        notes.push(
          `${label} ${mode}: ${bad} answers not NOERROR: ${JSON.stringify(m.result.rcodes)}`,
        );
      }
    }
    const [satRow, rateRow] = modeNames(mode);
    return [
      dnsperfRow(targetName(job), satRow, sat),
      dnsperfRow(targetName(job), rateRow, fixed),
    ];
  };

  /**
   * The cached DoH face: fill the cache (every name on each of `dohFillConnections`
   * connections, so every thread of a threaded bridge sees every name), then h2load GET
   * `?dns=` over the names at the fixed rate, then at saturation once per --doh-streams shape
   * (rows in table order: the shapes, then the fixed rate).
   */
  const dohRuns = async (job: Job, target: Target): Promise<FigureRow[]> => {
    const label = `${who(job)} ${MODE_TITLE.doh}`;
    const slug = jobKey(job);
    const watched = { target: target.proc, upstream: lab.upstreamProcs };
    const urisPath = `${work}/uris-${slug}.txt`;
    Deno.writeTextFileSync(urisPath, h2loadUris(dohNames, target.dohPort!));
    const fillConnections = dohFillConnections(job.threads);
    const fillRequests = fillConnections * dohNames.length;
    log(`${label}: cache fill, ${fillRequests} GETs on ${fillConnections} connections`);
    const fill = await runH2load(sup, `fill-${slug}`, {
      urisPath,
      clients: fillConnections,
      streams: o.dohStreams[0],
      seconds: 30,
      requests: fillRequests,
      logPath: `${work}/h2load-fill-${slug}.log`,
    });
    assertAlive(target.proc);
    commands.push(fill.command);
    if (fill.succeeded < fill.total) {
      notes.push(
        `${label}: ${fill.total - fill.succeeded} of the cache-fill GETs got no 2xx answer.`,
      );
    }
    // The fixed rate first: right after a saturation run a server may still be working off
    // its backlog (or collecting garbage), which would show in the quiet run.
    log(`${label}: ${dohRateMode}, ${o.dohDuration} s`);
    const fixed = await measure(watched, () =>
      runH2load(sup, `doh-rate-${slug}`, {
        urisPath,
        clients: 1,
        streams: 10,
        seconds: o.dohDuration,
        rps: o.rate,
        warmUpSeconds: 0,
        logPath: `${work}/h2load-rate-${slug}.log`,
      }));
    assertAlive(target.proc);
    avgMs.set(slug, fixed.result.avgMs);
    const runs: { load: string; m: Measured<H2loadResult> }[] = [];
    for (const [i, streams] of o.dohStreams.entries()) {
      const load = dohSatModes[i];
      log(`${label}: ${load}, ${o.dohDuration} s`);
      const sat = await measure(watched, () =>
        runH2load(sup, `doh-sat-${slug}-m${streams}`, {
          urisPath,
          clients: o.dohConnections,
          streams,
          seconds: o.dohDuration,
          warmUpSeconds: 0,
          logPath: `${work}/h2load-sat-${slug}-m${streams}.log`,
        }));
      assertAlive(target.proc);
      log(`${label}: ${load}: ${sat.result.reqPerSec.toFixed(0)} req/s`);
      runs.push({ load, m: sat });
    }
    runs.push({ load: dohRateMode, m: fixed });
    const names = modeNames("doh");
    for (const { load, m } of runs) {
      const r = m.result;
      commands.push(r.command);
      budget.push({ run: `${label}, ${load}`, ...m.budget });
      if (r.succeeded < r.total) {
        notes.push(
          `${label}, ${load}: ${r.total - r.succeeded} of ${r.total} GETs got no 2xx answer.`,
        );
      }
    }
    return runs.map(({ m }, i) => h2loadRow(targetName(job), names[i], m));
  };

  /**
   * Runs `measure` on a second bridge of this job with `--dot-server native` (restarted when it
   * dies), or makes `row` an n/a row when the bridge has no such listener.
   */
  const onNativeBridge = async <R extends { unavailable?: string }>(
    job: Job,
    what: string,
    measure: (t: Target) => Promise<R>,
    row: Omit<R, "unavailable">,
  ): Promise<R> => {
    const native = lab.features.dotServerNative;
    if (!native) return { ...row, unavailable: "n/a (no --dot-server native)" } as R;
    return await withRestarts(
      sup,
      `${who(job)} ${what}`,
      () => lab.startBridge(bridgeArgs(job, native)),
      measure,
      notes,
      log,
    );
  };

  /**
   * One-shots: kdig series at the target's DoH and DoT faces (cached answers); for the bridge
   * also at the DoT face of a second bridge with --dot-server native.
   */
  const oneShotRuns = async (job: Job, target: Target): Promise<OneShotRow[]> => {
    const series = async (
      f: { face: string; kind: OneShotKind },
      port: number | undefined,
      proc: Proc,
    ): Promise<OneShotRow> => {
      const row = { target: targetName(job), face: f.face, kind: f.kind };
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
      commands.push(s.command.replace(`-p ${port}`, "-p PORT"));
      if (s.failed > 0) {
        notes.push(
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
          job,
          "one-shot native DoT",
          (t) => series(ONESHOT_FACE.dotNative, t.port, t.proc),
          { target: targetName(job), ...ONESHOT_FACE.dotNative },
        ),
      );
    }
    return out;
  };

  /**
   * Handshake rate at the target's DoT listener (the name is cached: the readiness probe asked
   * it): a warm-up, then the measured run; for the bridge also at a second bridge with
   * --dot-server native.
   */
  const handshakeRuns = async (job: Job, target: Target): Promise<HandshakeRow[]> => {
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
      commands.push(r.command);
      budget.push({ run: what, ...m.budget });
      if (r.failed > 0) {
        notes.push(
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
        target: targetName(job),
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
          job,
          "handshake rate, native DoT",
          (t) => series(HANDSHAKE_LISTENER.dotNative, t),
          { target: targetName(job), listener: HANDSHAKE_LISTENER.dotNative },
        ),
      );
    }
    return out;
  };

  // What runs, most important first: the first thread count and the peer in every mode, then
  // the other thread counts. A run that would end too near the deadline is skipped.
  const jobs: Job[] = [];
  for (const mode of tableModes) {
    if (o.targets.has("bridge")) jobs.push({ label: "bridge", mode, threads: o.bridgeThreads[0] });
    if (o.targets.has("peer")) jobs.push({ label: "peer", mode, threads: 1 });
  }
  if (o.targets.has("bridge")) {
    for (const threads of o.bridgeThreads.slice(1)) {
      for (const mode of tableModes) jobs.push({ label: "bridge", mode, threads });
    }
  }
  const tailS = tailEstimateS(o);
  let overheadS = JOB_OVERHEAD_S;
  const results = new Map<string, FigureRow[]>();
  const oneShots = new Map<string, OneShotRow[]>();
  const handshakes = new Map<string, HandshakeRow[]>();
  for (const job of jobs) {
    const key = jobKey(job);
    const unavailable = (text: string) => {
      if (job.mode === "oneshot") {
        oneShots.set(
          key,
          oneShotFaces(job).map((f) => ({ target: targetName(job), ...f, unavailable: text })),
        );
      } else if (job.mode === "handshake") {
        handshakes.set(
          key,
          (job.label === "bridge"
            ? [HANDSHAKE_LISTENER.dot, HANDSHAKE_LISTENER.dotNative]
            : [HANDSHAKE_LISTENER.dot]).map((listener) => ({
              target: targetName(job),
              listener,
              unavailable: text,
            })),
        );
      } else {
        results.set(
          key,
          modeNames(job.mode).map((mode) => ({ target: targetName(job), mode, unavailable: text })),
        );
      }
    };
    const cached = job.mode !== "bridging";
    const hasDohFace = job.label === "peer" || lab.features.httpOff.length > 0;
    if (job.label === "bridge") {
      if (cached && !cacheArgs) {
        unavailable("n/a (no cache yet)");
        continue;
      }
      if (job.mode === "doh" && !hasDohFace) {
        unavailable("n/a (no DoH face)");
        continue;
      }
      if (job.threads > 1 && !lab.features.threads) {
        unavailable("n/a (no --threads)");
        continue;
      }
    }
    const plannedS = jobLoadS(o, job.mode, job.label);
    const estimateS = plannedS + overheadS + (job.threads > 1 ? THREADS_OVERHEAD_S : 0);
    const leftS = o.deadline - elapsedS();
    const what = `${who(job)} ${MODE_TITLE[job.mode]}`;
    if (estimateS + tailS + FINISH_S > leftS) {
      log(
        `skipping ${what}: ~${estimateS.toFixed(0)} s (+${tailS.toFixed(0)} s reserved for ` +
          `later runs) does not fit in the ${leftS.toFixed(0)} s left before --deadline`,
      );
      skipped.push(what);
      unavailable("skipped (deadline)");
      continue;
    }
    const t0 = elapsedS();
    const faces = { doh: (job.mode === "doh" || job.mode === "oneshot") && hasDohFace };
    const start = () =>
      job.label === "bridge"
        ? lab.startBridge(bridgeArgs(job), [], faces)
        : lab.startPeer(cached, faces);
    if (job.mode === "oneshot") {
      oneShots.set(
        key,
        await withRestarts(sup, what, start, (t) => oneShotRuns(job, t), notes, log),
      );
    } else if (job.mode === "handshake") {
      handshakes.set(
        key,
        await withRestarts(sup, what, start, (t) => handshakeRuns(job, t), notes, log),
      );
    } else {
      const body = job.mode === "doh" ? dohRuns : dotRuns;
      results.set(key, await withRestarts(sup, what, start, (t) => body(job, t), notes, log));
    }
    overheadS = Math.max(
      overheadS,
      elapsedS() - t0 - plannedS - (job.threads > 1 ? THREADS_OVERHEAD_S : 0),
    );
  }

  // The tables: per mode and load, every bridge row, the peer row, and a ratio row per bridge.
  const threadCounts = o.targets.has("bridge") ? o.bridgeThreads : [];
  const bridgesIn = <R>(mode: TableMode, from: Map<string, R[]>) =>
    threadCounts.map((threads) => ({
      threads,
      rows: from.get(jobKey({ label: "bridge", mode, threads })),
    }));
  const peerIn = <R>(mode: TableMode, from: Map<string, R[]>) =>
    from.get(jobKey({ label: "peer", mode, threads: 1 }));
  for (const mode of tableModes) {
    if (mode !== "oneshot" && mode !== "handshake") {
      rows.push(...modeRows(bridgesIn(mode, results), peerIn(mode, results)));
    }
  }
  const oneShot = o.modes.has("oneshot")
    ? oneShotRows(bridgesIn("oneshot", oneShots), peerIn("oneshot", oneShots))
    : [];
  const handshakeTable = o.modes.has("handshake")
    ? handshakeRows(bridgesIn("handshake", handshakes), peerIn("handshake", handshakes))
    : [];

  // Latency added at the fixed rate (each mode's last row) over the upstream's baseline.
  const added: AddedLatency[] = [];
  for (const mode of tableModes) {
    const base = mode === "doh" ? baselineH2?.result : isDot(mode) ? baseline?.result : undefined;
    if (!base) continue;
    const keyed = [
      ...threadCounts.map((threads) => jobKey({ label: "bridge", mode, threads })),
      jobKey({ label: "peer", mode, threads: 1 }),
    ];
    for (const key of keyed) {
      const row = results.get(key)?.at(-1);
      if (!row || row.unavailable) continue;
      added.push({
        target: `${row.target}, ${row.mode}`,
        p50Ms: row.p50Ms! - base.p50Ms,
        p99Ms: row.p99Ms! - base.p99Ms,
        avgMs: (avgMs.get(key) ?? NaN) - base.avgMs,
      });
    }
  }

  // The runs after the table's, in order; each keeps the time of those after it.
  const profileS = o.profile && o.targets.has("bridge") ? profileEstimateS(o) : 0;
  const idleS = runsIdle(o) ? idleEstimateS(o) : 0;
  /** True when a run of ~`needS`, and then `laterS` of later runs, fit before --deadline. */
  const fits = (what: string, needS: number, laterS: number): boolean => {
    if (needS + laterS + FINISH_S <= o.deadline - elapsedS()) return true;
    log(`skipping ${what}: ~${needS.toFixed(0)} s does not fit`);
    skipped.push(what);
    return false;
  };

  // 6. Connection scale.
  let scale: ScaleResult | undefined;
  if (runsScale(o)) {
    if (
      fits(
        `connection scale (${o.idleConns} idle connections)`,
        scaleEstimateS(o),
        idleS + profileS,
      )
    ) {
      try {
        scale = await connectionScale(lab, {
          connections: o.idleConns,
          processes: o.idleProcs,
          load: { ...satLoad, seconds: o.scaleDuration },
          log,
        });
        if (scale.command) commands.push(scale.command);
      } catch (e) {
        log(`scale run failed: ${(e as Error).message}`);
        notes.push(`The connection-scale run failed: ${(e as Error).message}`);
      }
    }
  }

  // 7. Idle memory per listener.
  let idle: IdleResult[] | undefined;
  if (runsIdle(o)) {
    if (fits(`idle memory (${o.idleConns} idle connections)`, idleS, profileS)) {
      const counts = [0, Math.round(o.idleConns / 10), o.idleConns];
      const listener = (label: string, args: string[]) => ({
        label,
        heap: true,
        start: (most: number, inspectPort?: number) =>
          lab.startBridge(
            [...idleBridgeArgs(lab, most), ...args],
            inspectPort === undefined ? [] : [`--inspect=127.0.0.1:${inspectPort}`],
          ),
      });
      try {
        idle = await idleMemory(
          lab,
          [
            listener(`${bridgeName(1)}, default DoT listener (node:tls)`, []),
            listener(`${bridgeName(1)}, --dot-server native`, ["--dot-server", "native"]),
          ],
          counts,
          { processes: o.idleProcs, heapConnections: Math.min(2000, o.idleConns), log },
        );
      } catch (e) {
        log(`idle-memory run failed: ${(e as Error).message}`);
        notes.push(`The idle-memory run failed: ${(e as Error).message}`);
      }
    }
  }

  let profile: string | undefined;
  if (o.profile && o.targets.has("bridge")) {
    const load = o.profileLoad === "rate" ? rateLoad : satLoad;
    if (fits("profiled run", profileS, 0)) {
      try {
        profile = await profileBridge(lab, {
          dir: `${work}/profile`,
          load: { ...load, seconds: o.profileDuration, verbose: o.profileLoad === "rate" },
          label: o.profileLoad === "rate" ? rateMode : satMode,
          log,
        });
      } catch (e) {
        log(`profile run failed: ${(e as Error).message}`);
        notes.push(`The profiled run failed: ${(e as Error).message}`);
      }
    }
  }
  if (skipped.length > 0) {
    log(`skipped to stay inside --deadline ${o.deadline} s: ${skipped.join("; ")}`);
    notes.push(
      `Skipped because they would have ended too near the --deadline of ${o.deadline} s: ` +
        `${skipped.join("; ")}.`,
    );
  }

  notes.push(...explain(o, {
    baselineQps: baseline?.result.qps,
    peerRateP50: results.get(jobKey({ label: "peer", mode: "bridging", threads: 1 }))?.[1]?.p50Ms,
    peerName,
    budget,
    cacheArgs,
  }));

  const allModes = o.modes.size === TABLE_MODES.length + 1;
  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    machine: facts.machine,
    tools: facts.tools,
    settings: [
      ...(allModes ? [] : [`modes: ${[...o.modes].join(", ")} (--modes)`]),
      ...(dot
        ? [
          `${o.duration} s per run after ${o.warmup} s warm-up`,
          `saturation: dnsperf -m dot -c ${o.connections} -q ${o.outstanding}`,
          `fixed rate: -c ${o.rateConnections} -q 100 -Q ${o.rate}`,
          `${o.names} names in bench.test.`,
        ]
        : []),
      ...(o.modes.has("doh")
        ? [
          `cached DoH face: ${o.dohDuration} s per run, h2load GET ?dns= over ` +
          `${dohNames.length} names (-i), -c ${o.dohConnections} -m ` +
          `${o.dohStreams.join(" and -m ")} after a cache fill (each name once on each of ` +
          `max(16, 8 × threads) connections); fixed rate -c 1 -m 10 --rps ${o.rate}, ` +
          "like the upstream's h2load baseline",
        ]
        : []),
      ...(o.modes.has("oneshot")
        ? [
          `one-shot: ${o.oneshotRuns} kdig queries per face after a cache fill (one query, ` +
          "8 × threads for a threaded bridge), each a new process and connection " +
          "(+https=/dns-query, HTTP/2 POST; +tls)",
        ]
        : []),
      ...(o.modes.has("handshake")
        ? [
          `handshake rate: ${o.handshakeDuration} s per listener after ${o.warmup} s ` +
          `warm-up, ${o.handshakeWorkers} connections at a time from ${o.handshakeProcs} ` +
          "client processes (scripts/bench/handshake_client.ts, Deno.startTls), one query each",
        ]
        : []),
      "peer: addTLSLocal maxInFlight=100 (and addDOHLocal for the DoH face), " +
      "DoH backend with validateCertificates=true",
      `bridge options: ${
        [...lab.features.httpOff, ...lab.features.always].join(" ") || "(none extra)"
      }; bridging: ${lab.features.cacheOff.join(" ") || "(none)"}; cached: ${
        cacheArgs?.join(" ") ?? "n/a"
      }; DoH face: --http-listen 127.0.0.1:PORT instead of off, cached` +
      (o.modes.has("oneshot")
        ? `; one-shot native DoT: ${lab.features.dotServerNative?.join(" ") ?? "n/a"}, cached`
        : "") +
      (o.modes.has("handshake")
        ? `; handshake rate: cached, native DoT: ${
          lab.features.dotServerNative?.join(" ") ?? "n/a"
        }`
        : ""),
      `bridge threads: ${threadCounts.join(", ") || "–"} (--threads N; one process)`,
    ],
    rows,
    oneShot,
    handshakes: handshakeTable,
    added,
    budget,
    scale,
    idle,
    notes,
    commands: [...new Set(commands)],
    profile,
  };
}

/** Thrown when a target process ended during its runs (e.g. someone else's `pkill`). */
class TargetExited extends Error {}

function assertAlive(proc: Proc): void {
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
async function withRestarts<T>(
  sup: Supervisor,
  what: string,
  start: () => Promise<Target>,
  body: (target: Target) => Promise<T>,
  notes: string[],
  log: (msg: string) => void,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    const target = await start();
    try {
      return await body(target);
    } catch (e) {
      if (sup.stopping || attempt >= 3 || !(await exitsWithin(target.proc, 1_000))) throw e;
      const status = await target.proc.status;
      const why = `${status.signal ?? `exit ${status.code}`}; its last words: "${
        lastLine(target.proc.stderrPath)
      }"`;
      log(`${what}: target exited mid-run (${why}); starting it again`);
      notes.push(`${what}: the target process ended mid-run (${why}), so it was run again.`);
    } finally {
      await target.proc.stop();
    }
  }
}

/** The notes under the table: caveats that depend on what was measured. */
function explain(
  o: Options,
  m: {
    /** The dnsperf baseline's QPS; undefined when it did not run (no DoT mode). */
    baselineQps?: number;
    peerRateP50?: number;
    peerName: string;
    budget: BudgetRow[];
    cacheArgs?: string[];
  },
): string[] {
  const notes: string[] = [];
  const dot = [...o.modes].some(isDot);
  if (dot) {
    notes.push(
      "The direct-DoH baseline (dnsperf row) uses one connection and one outstanding GET: " +
        "this dnsperf 2.10 loses most responses from dnsdist's DoH when more than one stream is " +
        "outstanding (HTTP/2 200s counted, queries reported lost), and its POST pays ~40 ms " +
        'per query (request in two writes: Nagle + delayed ACK). "Latency added" is relative ' +
        "to that row (same client as the DoT runs); the h2load row cross-checks it. The " +
        "ceiling's lost column counts non-2xx answers (dnsdist 5xx when overloaded).",
    );
  }
  if (m.baselineQps !== undefined && m.baselineQps < o.rate * 0.95) {
    notes.push(
      `dnsperf -m doh reached ${m.baselineQps.toFixed(0)} of ${o.rate} QPS in the baseline ` +
        '(with one outstanding query its DoH sender stalls on "socket not ready"); its ' +
        "latencies are still the upstream's.",
    );
  }
  if (m.peerRateP50 !== undefined && m.peerRateP50 > 20) {
    notes.push(
      `${m.peerName} as a DoT→DoH bridge answers in ~${m.peerRateP50.toFixed(0)} ms at ` +
        `${o.rate} QPS although the upstream answers in under 1 ms: its outgoing DoH writes ` +
        "each HTTP/2 request in two small writes without TCP_NODELAY (Nagle + delayed ACK, " +
        "see PLATFORM-NOTES.md), and this version has no setting for it. Under saturation " +
        "the writes coalesce and it stops mattering.",
    );
  }
  const noisy = m.budget.filter((b) => b.otherCpuS / b.wallS > 0.25);
  if (noisy.length > 0) {
    notes.push(
      "Noise: other processes used more than a quarter of a core during " +
        noisy.map((b) => `${b.run} (${(b.otherCpuS / b.wallS).toFixed(2)} cores)`).join("; ") +
        ".",
    );
  }
  notes.push(
    `Everything shares ${navigator.hardwareConcurrency} cores: target, upstream and load ` +
      'generator; "other" in the CPU table is busy time of everyone else on the machine. ' +
      "Expect 10–20% run-to-run variation, more on the noisy rows.",
    "CPU s is the target process's utime+stime (/proc/PID/stat, all threads) over the run; " +
      "peak RSS is its VmHWM, reset before each run (clear_refs). Percentiles come from " +
      "dnsperf -v per-query latencies (h2load --log-file for h2load rows). CPU µs/q = CPU s " +
      "/ answered queries. QPS in dnsperf rows counts NOERROR answers only (a target that " +
      "fails fast must not look fast); other rcodes are listed in these notes.",
  );
  if (o.modes.has("doh")) {
    notes.push(
      'The "cached DoH face" rows put h2load GETs (?dns=, ID 0) over the first ' +
        `${o.dohNames} names straight at each target's own DoH listener (the bridge's ` +
        "--http-listen, dnsdist's addDOHLocal), both with a cache filled first; the " +
        "fixed-rate row is one connection (h2load's --rps is per connection), like the " +
        "upstream's h2load row it is compared with.",
    );
  }
  if (o.modes.has("oneshot")) {
    notes.push(
      'One-shot rows: kdig\'s own figure (";; From 127.0.0.1@PORT(TCP) in X ms": TCP ' +
        "connect, TLS handshake, the query and its answer; not the process start), one " +
        `query per kdig process, ${o.oneshotRuns} in a row per face after a cache fill ` +
        "(uncounted). DoH is kdig's HTTP/2 POST. A server that leaves a small write behind " +
        "another without TCP_NODELAY shows ~40 ms here (Nagle + the client's delayed ACK); " +
        "without the stall a one-shot takes a few ms. The bridge's native DoT row is a " +
        "second bridge with --dot-server native.",
    );
  }
  if (o.modes.has("handshake")) {
    notes.push(
      "Handshake-rate rows: each connection is a TCP connect, a full TLS handshake (the " +
        "client never offers a session to resume), one query for a cached name, its answer " +
        "and a close; conn/s counts connections answered NOERROR inside the run, p50/p99 are " +
        "of whole connections. A TLS handshake costs the client about as much CPU as the " +
        "server (~0.6–0.9 ms each way measured on the 2-core machine), so the client " +
        "processes take about half of the machine: compare the ratio and CPU µs/conn more " +
        "than the absolute rates. The bridge's native row is a second bridge with " +
        "--dot-server native.",
    );
  }
  if (o.targets.has("bridge") && o.bridgeThreads.some((n) => n > 1)) {
    notes.push(
      '"×N threads" rows: the bridge with --threads N, one Deno process with N serving ' +
        "workers on the same ports (SO_REUSEPORT), each with its own cache; CPU s and peak RSS " +
        "are that one process's, all threads. Their ratio rows compare with the same peer " +
        `row. With ${navigator.hardwareConcurrency} cores shared with the load generator and ` +
        "the upstream, extra threads can cost more than they bring.",
    );
  }
  if (!m.cacheArgs) {
    notes.push(
      "The bridge has no answer cache yet (no cache option in its --help): its cached rows " +
        "read n/a and fill in once the option exists (or with --bridge-cache-args).",
    );
  }
  return notes;
}

if (import.meta.main) {
  Deno.exit(await main());
}
