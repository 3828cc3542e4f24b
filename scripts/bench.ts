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
  --deadline S          hard limit for the whole run; then everything is stopped (default 295)
  --help
`;

const REPO = new URL("..", import.meta.url).pathname.replace(/\/$/, "");

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
      "bridge-arg": { type: "string", multiple: true, default: [] },
      "bridge-cache-args": { type: "string" },
      profile: { type: "boolean", default: false },
      "profile-load": { type: "string", default: "saturation" },
      "profile-duration": { type: "string", default: "10" },
      out: { type: "string" },
      "write-readme": { type: "boolean", default: false },
      keep: { type: "boolean", default: false },
      deadline: { type: "string", default: "295" },
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
  const profileLoad = values["profile-load"];
  if (profileLoad !== "saturation" && profileLoad !== "rate") {
    throw new RangeError(`--profile-load: saturation or rate, not "${profileLoad}"`);
  }
  return {
    duration,
    warmup: num(values.warmup, quick ? 1 : 2, "warmup"),
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
    bridgeArgs: values["bridge-arg"],
    bridgeCacheArgs: values["bridge-cache-args"]?.split(/\s+/).filter(Boolean),
    profile: values.profile,
    profileLoad,
    profileDuration: num(values["profile-duration"], 10, "profile-duration", 1),
    out: values.out,
    writeReadme: values["write-readme"],
    keep: values.keep,
    deadline: num(values.deadline, 295, "deadline", 10),
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
    const report = await run(o, sup, work, log);
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

  // 3-5. The bridge and the peer, bridging and cached, at saturation and at a fixed rate.
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
  const bridgeName = `dotbridge (Deno ${Deno.version.deno})`;
  const peerName = /dnsdist [\d.]+/.exec(facts.tools)?.[0] ?? "dnsdist";
  const rateAvgMs = new Map<string, number>();

  const runsFor = async (label: string, mode: string, target: Target): Promise<FigureRow[]> => {
    const watched = { target: target.proc, upstream: lab.upstreamProcs };
    if (o.warmup > 0) {
      await runDnsperf(sup, `warmup-${label}-${mode}`, {
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
      () => runDnsperf(sup, `sat-${label}-${mode}`, { ...satLoad, port: target.port }),
    );
    assertAlive(target.proc);
    log(`${label} ${mode}: ${sat.result.qps.toFixed(0)} QPS; now ${rateMode}, ${o.duration} s`);
    const fixed = await measure(
      watched,
      () => runDnsperf(sup, `rate-${label}-${mode}`, { ...rateLoad, port: target.port }),
    );
    assertAlive(target.proc);
    commands.push(sat.result.command, fixed.result.command);
    rateAvgMs.set(`${label}-${mode}`, fixed.result.avgMs);
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
    const name = label === "bridge" ? bridgeName : peerName;
    return [
      dnsperfRow(name, `${mode}, ${satMode}`, sat),
      dnsperfRow(name, `${mode}, ${rateMode}`, fixed),
    ];
  };

  const results: Record<string, FigureRow[]> = {};
  for (const mode of ["bridging", "cached"] as const) {
    for (const label of ["bridge", "peer"] as const) {
      if (!o.targets.has(label)) continue;
      const key = `${label}-${mode}`;
      if (label === "bridge" && mode === "cached" && !cacheArgs) {
        results[key] = [satMode, rateMode].map((m) => ({
          target: bridgeName,
          mode: `${mode}, ${m}`,
          unavailable: "n/a (no cache yet)",
        }));
        continue;
      }
      results[key] = await withRestarts(
        sup,
        `${label} ${mode}`,
        () =>
          label === "bridge"
            ? lab.startBridge(mode === "cached" ? cacheArgs : lab.features.cacheOff)
            : lab.startPeer(mode === "cached"),
        (target) => runsFor(label, mode, target),
        notes,
        log,
      );
    }
    const b = results[`bridge-${mode}`];
    const p = results[`peer-${mode}`];
    for (let i = 0; i < 2; i++) {
      if (b) rows.push(b[i]);
      if (p) rows.push(p[i]);
      const r = b && p ? ratioRow(b[i], p[i]) : undefined;
      if (r) rows.push(r);
    }
  }

  const added: AddedLatency[] = [];
  for (const key of ["bridge-bridging", "peer-bridging", "bridge-cached", "peer-cached"]) {
    const row = results[key]?.[1];
    if (!row || row.unavailable) continue;
    added.push({
      target: `${row.target}, ${row.mode}`,
      p50Ms: row.p50Ms! - baseline.result.p50Ms,
      p99Ms: row.p99Ms! - baseline.result.p99Ms,
      avgMs: (rateAvgMs.get(key) ?? NaN) - baseline.result.avgMs,
    });
  }

  // 6. Connection scale.
  let scale: ScaleResult | undefined;
  if (o.idleConns > 0 && o.targets.has("bridge")) {
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

  let profile: string | undefined;
  if (o.profile && o.targets.has("bridge")) {
    const load = o.profileLoad === "rate" ? rateLoad : satLoad;
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

  notes.push(...explain(o, {
    baselineQps: baseline.result.qps,
    peerRateP50: results["peer-bridging"]?.[1]?.p50Ms,
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
      "peer: addTLSLocal maxInFlight=100, DoH backend with validateCertificates=true",
      `bridge options: ${
        [...lab.features.httpOff, ...lab.features.always].join(" ") || "(none extra)"
      }; bridging: ${lab.features.cacheOff.join(" ") || "(none)"}; cached: ${
        cacheArgs?.join(" ") ?? "n/a"
      }`,
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
      "/ answered queries.",
  );
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
