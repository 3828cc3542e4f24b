/**
 * `deno task bench`: dotbridge against dnsdist as a DoT→DoH bridge, side by side, on loopback.
 *
 * knotd (authoritative for bench.test.) behind dnsdist serving DoH with a packet cache is the
 * shared upstream; dnsperf drives DoT load at the bridge and at dnsdist configured as the same
 * bridge. Every program is started here and stopped at the end (also on error, SIGINT and the
 * overall deadline). `--help` lists the knobs; `--quick` is a smoke run of under a minute.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { h2loadUris } from "./bench/configs.ts";
import { type DnsperfOptions, runDnsperf } from "./bench/dnsperf.ts";
import { runH2load } from "./bench/h2load.ts";
import { Lab, type Target } from "./bench/lab.ts";
import { dnsperfRow, h2loadRow, machineFacts, measure } from "./bench/measure.ts";
import { capture, exitsWithin, type Proc, Supervisor } from "./bench/procs.ts";
import { profileBridge } from "./bench/profile_run.ts";
import { connectionScale } from "./bench/scale.ts";
import {
  type AddedLatency,
  type BenchReport,
  type BudgetRow,
  type FigureRow,
  ratioRow,
  renderReport,
  replaceReadmeBlock,
  type ScaleResult,
} from "./bench/table.ts";

const HELP = `Usage: deno task bench [options]

Benchmarks dotbridge against dnsdist (both as DoT->DoH bridges) on 127.0.0.1.
Needs knotd, dnsdist, dnsperf and h2load on PATH (perf optional, for --profile).

  --duration S          seconds per measured load run (default 15)
  --warmup S            unmeasured load before each target's runs (default 2)
  --quick               smoke run: --duration 3 --warmup 1 --idle-conns 1000
  --connections N       dnsperf -c for saturation runs (default 16)
  --outstanding N       dnsperf -q for saturation runs, in total (default 1000)
  --rate QPS            fixed-rate runs (default 1000)
  --rate-connections N  dnsperf -c for fixed-rate DoT runs (default 1)
  --names N             A records in the zone and queries in the list (default 3000)
  --ceiling-duration S  h2load run against the upstream alone (default min(duration, 10))
  --idle-conns N        idle DoT connections for the scale run (default 10000; 0 skips it)
  --idle-procs N        processes holding them (default 2)
  --scale-duration S    dnsperf run while they are open (default min(duration, 8))
  --targets LIST        bridge,peer (default both)
  --bridge-threads LIST run every bridge row once per thread count, e.g. 1,2 (default 1);
                        passes --threads N, rows read "dotbridge ×N threads" when N > 1
  --doh-names N         names the cached DoH face runs rotate through (default 300)
  --doh-duration S      seconds per cached DoH face run (default min(duration, 10))
  --doh-connections N   h2load -c for the DoH face at saturation (default 16)
  --doh-streams N       h2load -m (streams per connection) for it (default 10)
  --bridge-arg ARG      extra option for the bridge (repeat for several words)
  --bridge-cache-args "ARGS"  options that turn on the bridge's cache (default: found in
                        the bridge's --help; while there is none, its cached rows are n/a)
  --profile             then profile a fresh bridge (--cpu-prof, and perf when installed)
  --profile-load KIND   saturation (default) or rate
  --profile-duration S  (default 10)
  --out FILE            results markdown (default <work dir>/bench-results.md)
  --write-readme        replace the <!-- bench:start --> ... <!-- bench:end --> block of
                        README.md with the results
  --keep                keep the work directory (configs, logs, dnsperf outputs)
  --deadline S          hard limit for the whole run; then everything is stopped (default 295,
                        plus an estimate of the extra runs for each --bridge-threads count
                        past the first: ~2 min each at the default --duration). Runs that
                        would end too near it are skipped, and the report says which
  --help
`;

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

/** `--deadline` for the default run (one bridge thread count). */
const DEFAULT_DEADLINE_S = 295;

/** The table's modes, in order: DoT without and with caches, then the cached DoH faces. */
const MODES = ["bridging", "cached", "doh", "doh-native"] as const;
type Mode = typeof MODES[number];
const MODE_TITLE: Record<Mode, string> = {
  bridging: "bridging",
  cached: "cached",
  doh: "cached DoH face",
  "doh-native": "cached DoH face, --doh-server native",
};
/** Both DoH-face modes: the bridge's default server and its own HTTP/2 server (bridge only). */
const isDoh = (mode: Mode) => mode === "doh" || mode === "doh-native";

/** One started target and its two measured loads. */
interface Job {
  label: "bridge" | "peer";
  mode: Mode;
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

// Time estimates (seconds) for skipping runs near the deadline. A job's overhead (start,
// readiness probe, stop, cache fill beyond DOH_FILL_S) is re-estimated from the jobs run.
const JOB_OVERHEAD_S = 4;
const THREADS_OVERHEAD_S = 2;
const DOH_FILL_S = 3;
/** Rendering the report and stopping the upstream. */
const FINISH_S = 8;

/** The load seconds of one job: warm-up (or cache fill) and the two measured runs. */
function jobLoadS(o: Pick<Options, "duration" | "warmup" | "dohDuration">, mode: Mode): number {
  return isDoh(mode) ? DOH_FILL_S + 2 * o.dohDuration : o.warmup + 2 * o.duration;
}

/** What one more --bridge-threads count adds to a run. */
function extraThreadCountS(o: Pick<Options, "duration" | "warmup" | "dohDuration">): number {
  return MODES.reduce((a, m) => a + jobLoadS(o, m) + JOB_OVERHEAD_S + THREADS_OVERHEAD_S, 0);
}

/** The connection-scale run: a bridge, opening the idle connections, the load. */
function scaleEstimateS(o: Options): number {
  return 10 + o.scaleDuration + (o.idleConns / 1000) * 1.5;
}

/** The profiled run: a bridge, a warm-up, the profile, perf report. */
function profileEstimateS(o: Options): number {
  return o.profileDuration + 25;
}

/** Time kept back for the runs after the bridge and peer rows. */
function tailEstimateS(o: Options): number {
  const bridge = o.targets.has("bridge");
  return (bridge && o.idleConns > 0 ? scaleEstimateS(o) : 0) +
    (bridge && o.profile ? profileEstimateS(o) : 0);
}

interface Options {
  duration: number;
  warmup: number;
  connections: number;
  outstanding: number;
  rate: number;
  rateConnections: number;
  names: number;
  ceilingDuration: number;
  idleConns: number;
  idleProcs: number;
  scaleDuration: number;
  targets: Set<string>;
  bridgeThreads: number[];
  dohNames: number;
  dohDuration: number;
  dohConnections: number;
  dohStreams: number;
  bridgeArgs: string[];
  bridgeCacheArgs?: string[];
  profile: boolean;
  profileLoad: "saturation" | "rate";
  profileDuration: number;
  out?: string;
  writeReadme: boolean;
  keep: boolean;
  deadline: number;
}

function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    options: {
      duration: { type: "string" },
      warmup: { type: "string" },
      quick: { type: "boolean", default: false },
      connections: { type: "string", default: "16" },
      outstanding: { type: "string", default: "1000" },
      rate: { type: "string", default: "1000" },
      "rate-connections": { type: "string", default: "1" },
      names: { type: "string", default: "3000" },
      "ceiling-duration": { type: "string" },
      "idle-conns": { type: "string" },
      "idle-procs": { type: "string", default: "2" },
      "scale-duration": { type: "string" },
      targets: { type: "string", default: "bridge,peer" },
      "bridge-threads": { type: "string", default: "1" },
      "doh-names": { type: "string", default: "300" },
      "doh-duration": { type: "string" },
      "doh-connections": { type: "string", default: "16" },
      "doh-streams": { type: "string", default: "10" },
      "bridge-arg": { type: "string", multiple: true, default: [] },
      "bridge-cache-args": { type: "string" },
      profile: { type: "boolean", default: false },
      "profile-load": { type: "string", default: "saturation" },
      "profile-duration": { type: "string", default: "10" },
      out: { type: "string" },
      "write-readme": { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      deadline: { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) return undefined;
  const num = (v: string | undefined, fallback: number, what: string, min = 0) => {
    const x = v === undefined ? fallback : Number(v);
    if (!Number.isFinite(x) || x < min) throw new RangeError(`--${what}: expected >= ${min}: ${v}`);
    return x;
  };
  const quick = values.quick;
  const duration = num(values.duration, quick ? 3 : 15, "duration", 1);
  const targets = new Set(values.targets.split(",").map((s) => s.trim()).filter(Boolean));
  for (const t of targets) {
    if (t !== "bridge" && t !== "peer") throw new RangeError(`--targets: unknown "${t}"`);
  }
  const bridgeThreads = [
    ...new Set(values["bridge-threads"].split(",").map((s) => s.trim()).filter(Boolean)),
  ].map((t) => {
    const n = Number(t);
    if (!Number.isInteger(n) || n < 1) {
      throw new RangeError(`--bridge-threads: expected whole numbers >= 1: ${t}`);
    }
    return n;
  });
  if (bridgeThreads.length === 0) throw new RangeError("--bridge-threads: empty list");
  const profileLoad = values["profile-load"];
  if (profileLoad !== "saturation" && profileLoad !== "rate") {
    throw new RangeError(`--profile-load: saturation or rate, not "${profileLoad}"`);
  }
  const warmup = num(values.warmup, quick ? 1 : 2, "warmup");
  const dohDuration = num(values["doh-duration"], Math.min(duration, 10), "doh-duration", 1);
  const extraRunsS = targets.has("bridge")
    ? (bridgeThreads.length - 1) * extraThreadCountS({ duration, warmup, dohDuration })
    : 0;
  return {
    duration,
    warmup,
    connections: num(values.connections, 16, "connections", 1),
    outstanding: num(values.outstanding, 1000, "outstanding", 1),
    rate: num(values.rate, 1000, "rate", 1),
    rateConnections: num(values["rate-connections"], 1, "rate-connections", 1),
    names: num(values.names, 3000, "names", 2),
    ceilingDuration: num(values["ceiling-duration"], Math.min(duration, 10), "ceiling-duration", 1),
    idleConns: num(values["idle-conns"], quick ? 1000 : 10_000, "idle-conns"),
    idleProcs: num(values["idle-procs"], 2, "idle-procs", 1),
    scaleDuration: num(values["scale-duration"], Math.min(duration, 8), "scale-duration", 1),
    targets,
    bridgeThreads,
    dohNames: num(values["doh-names"], 300, "doh-names", 1),
    dohDuration,
    dohConnections: num(values["doh-connections"], 16, "doh-connections", 1),
    dohStreams: num(values["doh-streams"], 10, "doh-streams", 1),
    bridgeArgs: values["bridge-arg"],
    bridgeCacheArgs: values["bridge-cache-args"]?.split(/\s+/).filter(Boolean),
    profile: values.profile,
    profileLoad,
    profileDuration: num(values["profile-duration"], 10, "profile-duration", 1),
    out: values.out,
    writeReadme: values["write-readme"],
    keep: values.keep,
    deadline: num(values.deadline, Math.ceil(DEFAULT_DEADLINE_S + extraRunsS), "deadline", 10),
  };
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
  for (const tool of ["knotd", "dnsdist", "dnsperf", "h2load"]) {
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
      const readmePath = `${REPO}/README.md`;
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

  // 1. PKI, zone, and what the bridge supports.
  const lab = await Lab.create(sup, { repo: REPO, work, names: o.names, bridgeArgs: o.bridgeArgs });
  const cacheArgs = o.bridgeCacheArgs ?? lab.features.cacheOn;

  // 2. The upstream, its ceiling, and the direct-DoH baseline.
  const { knotPort, dohPort } = await lab.startUpstream();
  log(`upstream up: knotd :${knotPort}, dnsdist DoH :${dohPort}`);
  const upstreamName = "upstream: dnsdist DoH + knotd";
  const onUpstream = { target: lab.upstreamProc, upstream: lab.upstreamProcs };
  const urisPath = `${work}/uris.txt`;
  Deno.writeTextFileSync(urisPath, h2loadUris(lab.names, dohPort));

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
  const baseline = await measure(onUpstream, () =>
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

  log(`baseline: h2load --rps ${o.rate} on one connection, ${o.duration} s`);
  const baselineH2 = await measure(onUpstream, () =>
    runH2load(sup, "h2load-baseline", {
      urisPath,
      clients: 1,
      streams: 10,
      seconds: o.duration,
      logPath: `${work}/h2load-rate.log`,
      rps: o.rate,
    }));
  commands.push(baselineH2.result.command);
  rows.push(h2loadRow(upstreamName, `direct DoH, ${o.rate} req/s (h2load)`, baselineH2));
  budget.push({ run: `upstream direct DoH ${o.rate} req/s (h2load)`, ...baselineH2.budget });

  // 3-5. The bridge (once per thread count) and the peer: bridging and cached over DoT, at
  // saturation and at a fixed rate; then their cached DoH faces under h2load.
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
  const dohSatMode = `h2load GET ${o.dohConnections}×${o.dohStreams}`;
  const dohRateMode = `${o.rate} req/s (h2load)`;
  const peerName = /dnsdist [\d.]+/.exec(facts.tools)?.[0] ?? "dnsdist";
  const dohNames = lab.names.slice(0, o.dohNames);
  const avgMs = new Map<string, number>();
  const skipped: string[] = [];

  const who = (job: Job) =>
    job.label === "peer" ? "peer" : job.threads > 1 ? `bridge ×${job.threads} threads` : "bridge";
  const targetName = (job: Job) => job.label === "peer" ? peerName : bridgeName(job.threads);
  const modeNames = (mode: Mode) =>
    isDoh(mode)
      ? [`${MODE_TITLE[mode]}, ${dohSatMode}`, `${MODE_TITLE[mode]}, ${dohRateMode}`]
      : [`${mode}, ${satMode}`, `${mode}, ${rateMode}`];

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
   * `?dns=` over the names at saturation and at the fixed rate.
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
      streams: o.dohStreams,
      seconds: 30,
      requests: fillRequests,
      logPath: `${work}/h2load-fill-${slug}.log`,
    });
    assertAlive(target.proc);
    if (fill.succeeded < fill.total) {
      notes.push(
        `${label}: ${fill.total - fill.succeeded} of the cache-fill GETs got no 2xx answer.`,
      );
    }
    log(`${label}: ${dohSatMode}, ${o.dohDuration} s`);
    const sat = await measure(watched, () =>
      runH2load(sup, `doh-sat-${slug}`, {
        urisPath,
        clients: o.dohConnections,
        streams: o.dohStreams,
        seconds: o.dohDuration,
        warmUpSeconds: 0,
        logPath: `${work}/h2load-sat-${slug}.log`,
      }));
    assertAlive(target.proc);
    log(
      `${label}: ${sat.result.reqPerSec.toFixed(0)} req/s; now ${dohRateMode}, ${o.dohDuration} s`,
    );
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
    commands.push(fill.command, sat.result.command, fixed.result.command);
    avgMs.set(slug, fixed.result.avgMs);
    budget.push({ run: `${label}, ${dohSatMode}`, ...sat.budget });
    budget.push({ run: `${label}, ${dohRateMode}`, ...fixed.budget });
    for (const m of [sat, fixed]) {
      const r = m.result;
      if (r.succeeded < r.total) {
        notes.push(`${label}: ${r.total - r.succeeded} of ${r.total} GETs got no 2xx answer.`);
      }
    }
    const [satRow, rateRow] = modeNames(job.mode);
    return [
      h2loadRow(targetName(job), satRow, sat),
      h2loadRow(targetName(job), rateRow, fixed),
    ];
  };

  // What runs, most important first: the first thread count and the peer in every mode, then
  // the other thread counts. A run that would end too near the deadline is skipped.
  const jobs: Job[] = [];
  for (const mode of MODES) {
    if (o.targets.has("bridge")) jobs.push({ label: "bridge", mode, threads: o.bridgeThreads[0] });
    if (o.targets.has("peer") && mode !== "doh-native") {
      jobs.push({ label: "peer", mode, threads: 1 });
    }
  }
  if (o.targets.has("bridge")) {
    for (const threads of o.bridgeThreads.slice(1)) {
      for (const mode of MODES) jobs.push({ label: "bridge", mode, threads });
    }
  }
  const tailS = tailEstimateS(o);
  let overheadS = JOB_OVERHEAD_S;
  const results = new Map<string, FigureRow[]>();
  for (const job of jobs) {
    const key = jobKey(job);
    const rowsOf = (text: string) =>
      modeNames(job.mode).map((mode) => ({ target: targetName(job), mode, unavailable: text }));
    const cached = job.mode !== "bridging";
    if (job.label === "bridge") {
      if (cached && !cacheArgs) {
        results.set(key, rowsOf("n/a (no cache yet)"));
        continue;
      }
      if (isDoh(job.mode) && lab.features.httpOff.length === 0) {
        results.set(key, rowsOf("n/a (no DoH face)"));
        continue;
      }
      if (job.threads > 1 && !lab.features.threads) {
        results.set(key, rowsOf("n/a (no --threads)"));
        continue;
      }
    }
    const plannedS = jobLoadS(o, job.mode);
    const estimateS = plannedS + overheadS + (job.threads > 1 ? THREADS_OVERHEAD_S : 0);
    const leftS = o.deadline - elapsedS();
    if (estimateS + tailS + FINISH_S > leftS) {
      const what = `${who(job)} ${MODE_TITLE[job.mode]}`;
      log(
        `skipping ${what}: ~${estimateS.toFixed(0)} s (+${tailS.toFixed(0)} s reserved for ` +
          `later runs) does not fit in the ${leftS.toFixed(0)} s left before --deadline`,
      );
      skipped.push(what);
      results.set(key, rowsOf("skipped (deadline)"));
      continue;
    }
    const t0 = elapsedS();
    const bridgeArgs = () => [
      ...(cached ? cacheArgs! : lab.features.cacheOff),
      ...(lab.features.threads ? ["--threads", String(job.threads)] : []),
      ...(job.mode === "doh-native" ? ["--doh-server", "native"] : []),
    ];
    const faces = { doh: isDoh(job.mode) };
    results.set(
      key,
      await withRestarts(
        sup,
        `${who(job)} ${MODE_TITLE[job.mode]}`,
        () =>
          job.label === "bridge"
            ? lab.startBridge(bridgeArgs(), [], faces)
            : lab.startPeer(cached, faces),
        (target) => isDoh(job.mode) ? dohRuns(job, target) : dotRuns(job, target),
        notes,
        log,
      ),
    );
    overheadS = Math.max(
      overheadS,
      elapsedS() - t0 - plannedS - (job.threads > 1 ? THREADS_OVERHEAD_S : 0),
    );
  }

  // The table: per mode and load, every bridge row, the peer row, and a ratio row per bridge.
  const threadCounts = o.targets.has("bridge") ? o.bridgeThreads : [];
  for (const mode of MODES) {
    // The native DoH face is compared with the peer's DoH face.
    const peerMode = mode === "doh-native" ? "doh" : mode;
    const peer = results.get(jobKey({ label: "peer", mode: peerMode, threads: 1 }));
    const bridges = threadCounts.map((threads) => ({
      threads,
      rows: results.get(jobKey({ label: "bridge", mode, threads })),
    }));
    for (let i = 0; i < 2; i++) {
      for (const b of bridges) if (b.rows) rows.push(b.rows[i]);
      if (peer && mode !== "doh-native") rows.push(peer[i]);
      for (const b of bridges) {
        const label = b.threads > 1
          ? `ratio dotbridge ×${b.threads} threads / dnsdist`
          : "ratio dotbridge / dnsdist";
        const r = b.rows && peer ? ratioRow(b.rows[i], peer[i], label) : undefined;
        if (r) rows.push(r);
      }
    }
  }

  const added: AddedLatency[] = [];
  for (const mode of MODES) {
    const base = isDoh(mode) ? baselineH2.result : baseline.result;
    const keyed = [
      ...threadCounts.map((threads) => jobKey({ label: "bridge", mode, threads })),
      ...(mode === "doh-native" ? [] : [jobKey({ label: "peer", mode, threads: 1 })]),
    ];
    for (const key of keyed) {
      const row = results.get(key)?.[1];
      if (!row || row.unavailable) continue;
      added.push({
        target: `${row.target}, ${row.mode}`,
        p50Ms: row.p50Ms! - base.p50Ms,
        p99Ms: row.p99Ms! - base.p99Ms,
        avgMs: (avgMs.get(key) ?? NaN) - base.avgMs,
      });
    }
  }

  // 6. Connection scale.
  let scale: ScaleResult | undefined;
  if (o.idleConns > 0 && o.targets.has("bridge")) {
    const needS = scaleEstimateS(o) + (o.profile ? profileEstimateS(o) : 0) + FINISH_S;
    if (needS > o.deadline - elapsedS()) {
      log(`skipping the connection-scale run: ~${needS.toFixed(0)} s does not fit`);
      skipped.push(`connection scale (${o.idleConns} idle connections)`);
    } else {
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

  let profile: string | undefined;
  if (o.profile && o.targets.has("bridge")) {
    const load = o.profileLoad === "rate" ? rateLoad : satLoad;
    if (profileEstimateS(o) + FINISH_S > o.deadline - elapsedS()) {
      log(`skipping the profiled run: ~${profileEstimateS(o).toFixed(0)} s does not fit`);
      skipped.push("profiled run");
    } else {
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
    baselineQps: baseline.result.qps,
    peerRateP50: results.get(jobKey({ label: "peer", mode: "bridging", threads: 1 }))?.[1]?.p50Ms,
    peerName,
    budget,
    cacheArgs,
  }));

  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    machine: facts.machine,
    tools: facts.tools,
    settings: [
      `${o.duration} s per run after ${o.warmup} s warm-up`,
      `saturation: dnsperf -m dot -c ${o.connections} -q ${o.outstanding}`,
      `fixed rate: -c ${o.rateConnections} -q 100 -Q ${o.rate}`,
      `${o.names} names in bench.test.`,
      `cached DoH face: ${o.dohDuration} s per run, h2load GET ?dns= over ` +
      `${dohNames.length} names (-i), ` +
      `-c ${o.dohConnections} -m ${o.dohStreams} after a cache fill (each name once on each ` +
      `of max(16, 8 × threads) connections); fixed rate -c 1 -m 10 --rps ${o.rate}`,
      "peer: addTLSLocal maxInFlight=100 (and addDOHLocal for the DoH face), " +
      "DoH backend with validateCertificates=true",
      `bridge options: ${
        [...lab.features.httpOff, ...lab.features.always].join(" ") || "(none extra)"
      }; bridging: ${lab.features.cacheOff.join(" ") || "(none)"}; cached: ${
        cacheArgs?.join(" ") ?? "n/a"
      }; DoH face: --http-listen 127.0.0.1:PORT instead of off, cached`,
      `bridge threads: ${threadCounts.join(", ") || "–"} (--threads N; one process)`,
    ],
    rows,
    added,
    budget,
    scale,
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
    baselineQps: number;
    peerRateP50?: number;
    peerName: string;
    budget: BudgetRow[];
    cacheArgs?: string[];
  },
): string[] {
  const notes: string[] = [];
  notes.push(
    "The direct-DoH baseline (dnsperf row) uses one connection and one outstanding GET: " +
      "this dnsperf 2.10 loses most responses from dnsdist's DoH when more than one stream is " +
      "outstanding (HTTP/2 200s counted, queries reported lost), and its POST pays ~40 ms " +
      'per query (request in two writes: Nagle + delayed ACK). "Latency added" is relative ' +
      "to that row (same client as the DoT runs); the h2load row cross-checks it. The " +
      "ceiling's lost column counts non-2xx answers (dnsdist 5xx when overloaded).",
  );
  if (m.baselineQps < o.rate * 0.95) {
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
  notes.push(
    'The "cached DoH face" rows put h2load GETs (?dns=, ID 0) over the first ' +
      `${o.dohNames} names straight at each target's own DoH listener (the bridge's ` +
      "--http-listen, dnsdist's addDOHLocal), both with a cache filled first; the fixed-rate " +
      "row is one connection (h2load's --rps is per connection), like the upstream's h2load " +
      "row it is compared with.",
  );
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
