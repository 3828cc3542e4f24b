/**
 * `deno task bench`'s command line: the help text, the options it parses into, which parts of
 * the run (modes) they select, and the time estimates that decide what still fits before the
 * deadline. Pure: nothing here starts a program or reads the machine.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { CERT_KINDS, type CertKind } from "./pki.ts";

export const HELP = `Usage: deno task bench [options]

Benchmarks dotbridge against dnsdist (both as DoT->DoH bridges) on 127.0.0.1.
Needs knotd, dnsdist, dnsperf, h2load and kdig on PATH (perf optional, for --profile).

  --modes LIST          what to run, of bridging,cached,doh,oneshot,handshake,
                        dns-bridging,dns-cached,scale,idle,alloc,blocklist (default all
                        but blocklist):
                        bridging, cached: DoT at saturation and at --rate (dnsperf);
                        dns-bridging, dns-cached: plain DNS over UDP (dnsperf), against
                        dnsdist's Do53 face, with a bare Deno UDP loop as the floor;
                        doh: the cached DoH face (h2load) at each --doh-streams shape and
                        at --rate; oneshot: one query per new connection (kdig), DoH and DoT;
                        handshake: new DoT connections per second, each a full TLS
                        handshake and one cached query;
                        scale: --idle-conns idle DoT connections under a load;
                        idle: memory with 0, --idle-conns/10 and --idle-conns idle DoT
                        connections on each listener (RSS, smaps, heap snapshots);
                        alloc: bytes allocated per query, bridging and cached (the
                        sampling heap profiler over the bridge's inspector, during
                        --alloc-duration of saturation), and CPU per query;
                        blocklist: a generated list of --blocklist-names domains: time
                        until in force, RSS added, lookup cost, cached DoT QPS with and
                        without it (interleaved), a reload at --rate (~2.5 min; with
                        --targets bridge it runs alone).
                        The upstream's ceiling and dnsperf baseline run with bridging
                        or cached, its h2load baseline with doh. E.g. --modes
                        doh,oneshot takes ~1.5 minutes
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
  --doh-duration S      seconds per cached DoH face run and for the upstream's h2load
                        baseline (default min(duration, 10))
  --doh-connections N   h2load -c for the DoH face at saturation (default 16)
  --doh-streams LIST    h2load -m (streams per connection), one saturation run each
                        (default 10,64)
  --oneshot-runs N      one-shot queries per face and target, after uncounted ones that
                        fill the cache (default 20)
  --handshake-duration S  seconds per handshake-rate run, after --warmup (default
                        min(duration, 10))
  --handshake-workers N connections at a time in the handshake-rate runs, in total
                        (default 32)
  --handshake-procs N   client processes they are spread over (default 2)
  --blocklist-names N   domains in the blocklist mode's list (default 1000000)
  --blocklist-rounds N  with/without pairs of the blocklist mode (default 2)
  --cert KIND           the certificate the targets (and the upstream) serve, of
                        ${Object.keys(CERT_KINDS).join(", ")}
                        (default ecdsa: a P-256 leaf and its root, like --dev-cert;
                        -leaf-only sends the leaf alone, -chain leaf + intermediate;
                        the others by openssl). For the handshake mode
  --bridge-arg ARG      extra option for the bridge (repeat for several words)
  --bridge-v8-flags F   V8 flags for the bridge after the shipped ones, comma-separated
                        (e.g. --max-semi-space-size=8: what a smaller young generation
                        costs and saves)
  --bridge-cache-args "ARGS"  options that turn on the bridge's cache (default: found in
                        the bridge's --help; while there is none, its cached rows are n/a)
  --alloc-duration S    seconds of each alloc-mode run (default min(duration, 5))
  --profile             then profile a fresh bridge (--cpu-prof, and perf when installed)
  --profile-load KIND   saturation (default) or rate
  --profile-duration S  (default 10)
  --out FILE            results markdown (default <work dir>/bench-results.md)
  --write-docs          replace the <!-- bench:start --> ... <!-- bench:end --> block of
                        docs/benchmarks.md with the results (and deno fmt it)
  --keep                keep the work directory (configs, logs, dnsperf outputs)
  --deadline S          hard limit for the whole run; then everything is stopped (default 600,
                        plus an estimate of the extra runs for each --bridge-threads count
                        past the first: ~2 min each at the default --duration, and of the
                        alloc and blocklist modes when asked for). Runs that
                        would end too near it are skipped, and the report says which
  --help
`;

/** `--deadline` for the default run (one bridge thread count). */
export const DEFAULT_DEADLINE_S = 600;

/**
 * The table's modes, in order: DoT without and with caches, the cached DoH face, one-shots,
 * the handshake rate, plain DNS over UDP without and with caches.
 */
export const TABLE_MODES = [
  "bridging",
  "cached",
  "doh",
  "oneshot",
  "handshake",
  "dns-bridging",
  "dns-cached",
] as const;
/** One mode of the tables. */
export type TableMode = typeof TABLE_MODES[number];
/** Everything `--modes` can name: the table's modes and the connection-scale run. */
export const MODES = [...TABLE_MODES, "scale", "idle", "alloc", "blocklist"] as const;
/** What runs without `--modes`: all but the blocklist mode. */
export const DEFAULT_MODES: readonly Mode[] = MODES.filter((m) => m !== "blocklist");
/** One part of the run `--modes` selects. */
export type Mode = typeof MODES[number];

/** True for the modes measured with dnsperf over DoT. */
export const isDot = (mode: Mode): boolean => mode === "bridging" || mode === "cached";

/** True for the modes measured with dnsperf over plain DNS (UDP). */
export const isPlain = (mode: Mode): boolean => mode === "dns-bridging" || mode === "dns-cached";

/** The parsed command line. */
export interface Options {
  /** The parts that run, in {@linkcode MODES} order. */
  modes: Set<Mode>;
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
  /** One saturation run per entry (h2load -m). */
  dohStreams: number[];
  oneshotRuns: number;
  /** Seconds of each measured handshake-rate run. */
  handshakeDuration: number;
  /** Connections at a time in a handshake-rate run, over all its client processes. */
  handshakeWorkers: number;
  /** Client processes of a handshake-rate run. */
  handshakeProcs: number;
  /** `--cert`: the certificate every server of the run presents. */
  cert: CertKind;
  bridgeArgs: string[];
  /** `--bridge-v8-flags`, split at commas. */
  bridgeV8Flags: string[];
  bridgeCacheArgs?: string[];
  /** Domains in the blocklist mode's generated list. */
  blocklistNames: number;
  /** With/without pairs of bridges in the blocklist mode. */
  blocklistRounds: number;
  /** Seconds of each alloc-mode run (sampled, then with the profiler off). */
  allocDuration: number;
  profile: boolean;
  profileLoad: "saturation" | "rate";
  profileDuration: number;
  out?: string;
  writeDocs: boolean;
  keep: boolean;
  deadline: number;
}

// Time estimates (seconds) for skipping runs near the deadline. A job's overhead (start,
// readiness probe, stop, cache fill beyond DOH_FILL_S) is re-estimated from the jobs run.
export const JOB_OVERHEAD_S = 4;
export const THREADS_OVERHEAD_S = 2;
export const DOH_FILL_S = 3;
/** One kdig one-shot: a process, a TLS handshake, maybe a ~40 ms stall (~0.05 s seen). */
export const ONESHOT_QUERY_S = 0.1;
/** Starting the handshake clients (Deno processes) for a warm-up or a measured run. */
export const HANDSHAKE_CLIENT_START_S = 0.5;
/** Rendering the report and stopping the upstream. */
export const FINISH_S = 8;

/** The faces a target's one-shot job measures: DoH, DoT, and (bridge) native DoT. */
export function oneShotFaces(label: "bridge" | "peer"): number {
  return label === "bridge" ? 3 : 2;
}

type LoadKnobs = Pick<
  Options,
  "duration" | "warmup" | "dohDuration" | "dohStreams" | "oneshotRuns" | "handshakeDuration"
>;

/**
 * The seconds of one job past its start: warm-up (or cache fill) and the measured runs; for
 * the bridge's one-shots and handshakes also the second bridge (native DoT) they start.
 */
export function jobLoadS(o: LoadKnobs, mode: TableMode, label: "bridge" | "peer"): number {
  switch (mode) {
    case "doh":
      return DOH_FILL_S + (o.dohStreams.length + 1) * o.dohDuration;
    case "oneshot":
      return oneShotFaces(label) * (o.oneshotRuns + 1) * ONESHOT_QUERY_S +
        (label === "bridge" ? JOB_OVERHEAD_S : 0);
    case "handshake": {
      const face = o.warmup + o.handshakeDuration + 2 * HANDSHAKE_CLIENT_START_S;
      return label === "bridge" ? 2 * face + JOB_OVERHEAD_S : face;
    }
    default:
      return o.warmup + 2 * o.duration;
  }
}

/** What one more --bridge-threads count adds to a run of these modes. */
export function extraThreadCountS(o: LoadKnobs, modes: Iterable<Mode>): number {
  let s = 0;
  for (const m of modes) {
    if (m !== "scale" && m !== "idle" && m !== "alloc" && m !== "blocklist") {
      s += jobLoadS(o, m, "bridge") + JOB_OVERHEAD_S + THREADS_OVERHEAD_S;
    }
  }
  return s;
}

/** The connection-scale run: a bridge, opening the idle connections, the load. */
export function scaleEstimateS(o: Pick<Options, "scaleDuration" | "idleConns">): number {
  return 10 + o.scaleDuration + (o.idleConns / 1000) * 1.5;
}

/**
 * The blocklist mode: the list built twice here, `rounds` pairs of fresh cached bridges each
 * with a saturation run, and two fixed-rate runs around a reload.
 */
export function blocklistEstimateS(o: Pick<Options, "duration" | "blocklistRounds">): number {
  return 25 + o.blocklistRounds * 2 * (o.duration + 15) + 2 * o.duration + 10;
}

/** The profiled run: a bridge, a warm-up, the profile, perf report. */
export function profileEstimateS(o: Pick<Options, "profileDuration">): number {
  return o.profileDuration + 25;
}

/** The alloc mode: per cache setting a bridge, a warm-up and two runs. */
export function allocEstimateS(o: Pick<Options, "warmup" | "allocDuration">): number {
  return 2 * (6 + o.warmup + 2 * o.allocDuration);
}

/** True when the alloc mode is asked for (and a bridge to run it on). */
export function runsAlloc(o: Pick<Options, "modes" | "targets">): boolean {
  return o.modes.has("alloc") && o.targets.has("bridge");
}

/** True when the connection-scale run is asked for (a bridge, the mode, some connections). */
export function runsScale(o: Pick<Options, "modes" | "targets" | "idleConns">): boolean {
  return o.modes.has("scale") && o.targets.has("bridge") && o.idleConns > 0;
}

/** True when the idle-memory run is asked for (a bridge, the mode, some connections). */
export function runsIdle(o: Pick<Options, "modes" | "targets" | "idleConns">): boolean {
  return o.modes.has("idle") && o.targets.has("bridge") && o.idleConns > 0;
}

/**
 * The idle-memory run: per listener (two), a bridge with the connections opened in steps, then
 * a second bridge for the heap snapshots (with none and with up to 2 000 connections).
 */
export function idleEstimateS(o: Pick<Options, "idleConns">): number {
  return 2 * (20 + (o.idleConns / 1000) * 2.5);
}

/** Time kept back for the runs after the bridge and peer rows. */
export function tailEstimateS(o: Options): number {
  return (runsScale(o) ? scaleEstimateS(o) : 0) + (runsIdle(o) ? idleEstimateS(o) : 0) +
    (runsAlloc(o) ? allocEstimateS(o) : 0) +
    (o.targets.has("bridge") && o.modes.has("blocklist") ? blocklistEstimateS(o) : 0) +
    (o.targets.has("bridge") && o.profile ? profileEstimateS(o) : 0);
}

/** A comma-separated list: trimmed, empty entries dropped, duplicates removed, order kept. */
function list(value: string): string[] {
  return [...new Set(value.split(",").map((s) => s.trim()).filter(Boolean))];
}

/** Whole numbers >= `min` from a comma-separated list. */
function wholeNumbers(value: string, what: string, min: number): number[] {
  const out = list(value).map((t) => {
    const n = Number(t);
    if (!Number.isInteger(n) || n < min) {
      throw new RangeError(`--${what}: expected whole numbers >= ${min}: ${t}`);
    }
    return n;
  });
  if (out.length === 0) throw new RangeError(`--${what}: empty list`);
  return out;
}

/**
 * Parses the command line.
 *
 * @returns undefined for `--help`
 * @throws {RangeError} on a value out of range or an unknown list entry
 * @example
 * ```ts
 * parseOptions(["--modes", "doh,oneshot"])!.modes; // Set { "doh", "oneshot" }
 * ```
 */
export function parseOptions(args: string[]): Options | undefined {
  const { values } = parseArgs({
    args,
    options: {
      modes: { type: "string", default: DEFAULT_MODES.join(",") },
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
      "doh-streams": { type: "string", default: "10,64" },
      "oneshot-runs": { type: "string", default: "20" },
      "handshake-duration": { type: "string" },
      "handshake-workers": { type: "string", default: "32" },
      "handshake-procs": { type: "string", default: "2" },
      cert: { type: "string", default: "ecdsa" },
      "bridge-arg": { type: "string", multiple: true, default: [] },
      "bridge-v8-flags": { type: "string", default: "" },
      "blocklist-names": { type: "string", default: "1000000" },
      "blocklist-rounds": { type: "string", default: "2" },
      "bridge-cache-args": { type: "string" },
      "alloc-duration": { type: "string" },
      profile: { type: "boolean", default: false },
      "profile-load": { type: "string", default: "saturation" },
      "profile-duration": { type: "string", default: "10" },
      out: { type: "string" },
      "write-docs": { type: "boolean", default: false },
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
  const asked = list(values.modes);
  for (const m of asked) {
    if (!(MODES as readonly string[]).includes(m)) {
      throw new RangeError(`--modes: unknown "${m}" (one of ${MODES.join(", ")})`);
    }
  }
  if (asked.length === 0) throw new RangeError("--modes: empty list");
  const modes = new Set(MODES.filter((m) => asked.includes(m)));
  const quick = values.quick;
  const duration = num(values.duration, quick ? 3 : 15, "duration", 1);
  const targets = new Set(list(values.targets));
  for (const t of targets) {
    if (t !== "bridge" && t !== "peer") throw new RangeError(`--targets: unknown "${t}"`);
  }
  const bridgeThreads = wholeNumbers(values["bridge-threads"], "bridge-threads", 1);
  const profileLoad = values["profile-load"];
  if (profileLoad !== "saturation" && profileLoad !== "rate") {
    throw new RangeError(`--profile-load: saturation or rate, not "${profileLoad}"`);
  }
  const warmup = num(values.warmup, quick ? 1 : 2, "warmup");
  const dohDuration = num(values["doh-duration"], Math.min(duration, 10), "doh-duration", 1);
  const dohStreams = wholeNumbers(values["doh-streams"], "doh-streams", 1);
  const oneshotRuns = num(values["oneshot-runs"], 20, "oneshot-runs", 1);
  if (!Number.isInteger(oneshotRuns)) {
    throw new RangeError(`--oneshot-runs: expected a whole number: ${oneshotRuns}`);
  }
  const handshakeDuration = num(
    values["handshake-duration"],
    Math.min(duration, 10),
    "handshake-duration",
    1,
  );
  const handshakeProcs = num(values["handshake-procs"], 2, "handshake-procs", 1);
  const handshakeWorkers = num(values["handshake-workers"], 32, "handshake-workers", 1);
  if (!Number.isInteger(handshakeProcs) || !Number.isInteger(handshakeWorkers)) {
    throw new RangeError("--handshake-procs, --handshake-workers: expected whole numbers");
  }
  if (handshakeWorkers < handshakeProcs) {
    throw new RangeError("--handshake-workers: at least one per --handshake-procs");
  }
  const cert = values.cert;
  if (!Object.hasOwn(CERT_KINDS, cert)) {
    throw new RangeError(
      `--cert: unknown "${cert}" (one of ${Object.keys(CERT_KINDS).join(", ")})`,
    );
  }
  const knobs = { duration, warmup, dohDuration, dohStreams, oneshotRuns, handshakeDuration };
  const blocklistRounds = num(values["blocklist-rounds"], 2, "blocklist-rounds", 1);
  const allocDuration = num(values["alloc-duration"], Math.min(duration, 5), "alloc-duration", 1);
  const extraRunsS = targets.has("bridge")
    ? (bridgeThreads.length - 1) * extraThreadCountS(knobs, modes) +
      (modes.has("blocklist") ? blocklistEstimateS({ duration, blocklistRounds }) : 0) +
      (modes.has("alloc") ? allocEstimateS({ warmup, allocDuration }) : 0)
    : 0;
  return {
    modes,
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
    dohStreams,
    oneshotRuns,
    handshakeDuration,
    handshakeWorkers,
    handshakeProcs,
    cert: cert as CertKind,
    bridgeArgs: values["bridge-arg"],
    bridgeV8Flags: values["bridge-v8-flags"].split(",").filter(Boolean),
    blocklistNames: num(values["blocklist-names"], 1_000_000, "blocklist-names", 1),
    blocklistRounds,
    bridgeCacheArgs: values["bridge-cache-args"]?.split(/\s+/).filter(Boolean),
    allocDuration,
    profile: values.profile,
    profileLoad,
    profileDuration: num(values["profile-duration"], 10, "profile-duration", 1),
    out: values.out,
    writeDocs: values["write-docs"],
    keep: values.keep,
    deadline: num(values.deadline, Math.ceil(DEFAULT_DEADLINE_S + extraRunsS), "deadline", 10),
  };
}

/** The programs a run of these options starts (kdig only for the one-shots, and so on). */
export function requiredTools(o: Pick<Options, "modes" | "profile">): string[] {
  const dot = [...o.modes].some(isDot);
  const plain = [...o.modes].some(isPlain);
  return [
    "knotd",
    "dnsdist",
    ...(dot || plain || o.modes.has("scale") || o.modes.has("alloc") || o.modes.has("blocklist") ||
        o.profile
      ? ["dnsperf"]
      : []),
    ...(dot || o.modes.has("doh") ? ["h2load"] : []),
    ...(o.modes.has("oneshot") ? ["kdig"] : []),
  ];
}
