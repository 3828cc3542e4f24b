/**
 * The benchmark report as data, and its markdown form: the main figures table with bridge/peer
 * ratio rows, the latency the bridge adds over the upstream, the per-run CPU budget, the
 * connection-scale result, machine facts and notes. Also the README block replacement.
 *
 * @module
 */

/** One line of the main table. A row with `unavailable` set prints that text instead of data. */
export interface FigureRow {
  target: string;
  mode: string;
  qps?: number;
  p50Ms?: number;
  p99Ms?: number;
  lost?: number;
  cpuS?: number;
  peakRssMb?: number;
  /** CPU microseconds per answered query. */
  cpuUsPerQuery?: number;
  /** E.g. "n/a (no cache yet)". */
  unavailable?: string;
  /** Ratio rows are printed in italics with × values. */
  ratio?: boolean;
}

/** How the machine's CPU was spent during one measured run. */
export interface BudgetRow {
  run: string;
  wallS: number;
  targetCpuS: number;
  upstreamCpuS: number;
  loadgenCpuS: number;
  /** Busy CPU on the machine not accounted to the above or the harness: other users' noise. */
  otherCpuS: number;
  /** Machine busy share over all cores, 0..1. */
  machineBusy: number;
}

/** Latency the bridge (or the peer) adds over querying the DoH upstream directly. */
export interface AddedLatency {
  target: string;
  p50Ms: number;
  p99Ms: number;
  avgMs: number;
}

/** The connection-scale run. */
export interface ScaleResult {
  requested: number;
  open: number;
  failed: number;
  errors: Record<string, number>;
  openSeconds: number;
  /** Bridge CPU (cores) while the connections sit idle. */
  idleCpuPerS: number;
  rssBeforeMb: number;
  rssWithConnsMb: number;
  rssAfterLoadMb: number;
  peakRssMb: number;
  /** Descriptors the bridge holds beyond its idle count, with the connections open. */
  fds: number;
  /** The same after the load run. */
  fdsAfterLoad: number;
  qps: number;
  p50Ms: number;
  p99Ms: number;
  lost: number;
  seconds: number;
  /** The dnsperf command line. */
  command?: string;
  note?: string;
}

/** Everything the report prints. */
export interface BenchReport {
  date: string;
  machine: string;
  tools: string;
  settings: string[];
  rows: FigureRow[];
  added: AddedLatency[];
  budget: BudgetRow[];
  scale?: ScaleResult;
  notes: string[];
  commands: string[];
  profile?: string;
}

/** A markdown table; the first `leftColumns` columns align left, the rest right. */
export function markdownTable(headers: string[], rows: string[][], leftColumns = 1): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    line(headers),
    line(headers.map((_, i) => (i < leftColumns ? "---" : "---:"))),
    ...rows.map(line),
  ].join("\n");
}

/** A duration in ms with sensible precision. */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (Math.abs(ms) < 1) return ms.toFixed(3);
  if (Math.abs(ms) < 10) return ms.toFixed(2);
  return ms.toFixed(1);
}

function fmtNum(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  return n.toFixed(digits);
}

function fmtRatio(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  return `${n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`;
}

/** `a / b` for a ratio row; undefined when either side is missing or b is 0. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b)) {
    return undefined;
  }
  return b === 0 ? undefined : a / b;
}

/**
 * The ratio row bridge/peer for two measured rows (undefined when either row is n/a).
 *
 * @param label the row's target column; default "ratio dotbridge / dnsdist"
 */
export function ratioRow(
  bridge: FigureRow,
  peer: FigureRow,
  label = "ratio dotbridge / dnsdist",
): FigureRow | undefined {
  if (bridge.unavailable || peer.unavailable) return undefined;
  return {
    target: label,
    mode: bridge.mode,
    qps: ratio(bridge.qps, peer.qps),
    p50Ms: ratio(bridge.p50Ms, peer.p50Ms),
    p99Ms: ratio(bridge.p99Ms, peer.p99Ms),
    cpuS: ratio(bridge.cpuS, peer.cpuS),
    peakRssMb: ratio(bridge.peakRssMb, peer.peakRssMb),
    cpuUsPerQuery: ratio(bridge.cpuUsPerQuery, peer.cpuUsPerQuery),
    ratio: true,
  };
}

function figureCells(r: FigureRow): string[] {
  if (r.unavailable) {
    return [r.target, r.mode, r.unavailable, "", "", "", "", "", ""];
  }
  if (r.ratio) {
    return [
      `*${r.target}*`,
      `*${r.mode}*`,
      fmtRatio(r.qps),
      fmtRatio(r.p50Ms),
      fmtRatio(r.p99Ms),
      "",
      fmtRatio(r.cpuS),
      fmtRatio(r.peakRssMb),
      fmtRatio(r.cpuUsPerQuery),
    ];
  }
  return [
    r.target,
    r.mode,
    fmtNum(r.qps),
    fmtMs(r.p50Ms),
    fmtMs(r.p99Ms),
    fmtNum(r.lost),
    fmtNum(r.cpuS, 2),
    fmtNum(r.peakRssMb, 1),
    fmtNum(r.cpuUsPerQuery, 1),
  ];
}

/** The main figures table. */
export function figuresTable(rows: FigureRow[]): string {
  return markdownTable(
    ["target", "mode", "QPS", "p50 ms", "p99 ms", "lost", "CPU s", "peak RSS MB", "CPU µs/q"],
    rows.map(figureCells),
    2,
  );
}

/** The whole report as markdown. `brief` leaves out the CPU budget, commands and profile. */
export function renderReport(r: BenchReport, brief = false): string {
  const out: string[] = [];
  out.push(`### dotbridge vs dnsdist as a DoT→DoH bridge (${r.date})`, "");
  out.push(`Machine: ${r.machine}  `, `Tools: ${r.tools}  `, `Settings: ${r.settings.join("; ")}`);
  out.push("", figuresTable(r.rows), "");
  if (r.added.length > 0) {
    out.push(
      "Latency added over querying the DoH upstream directly (same rate; DoT rows against " +
        "the dnsperf baseline, DoH-face rows against the h2load one):",
      "",
    );
    out.push(markdownTable(
      ["target", "Δ p50 ms", "Δ p99 ms", "Δ avg ms"],
      r.added.map((a) => [a.target, fmtMs(a.p50Ms), fmtMs(a.p99Ms), fmtMs(a.avgMs)]),
    ));
    out.push("");
  }
  if (r.scale) {
    const s = r.scale;
    const perConn = s.open > 0 ? ((s.rssWithConnsMb - s.rssBeforeMb) * 1024) / s.open : NaN;
    out.push(
      `Connection scale: ${s.open} of ${s.requested} idle DoT connections open ` +
        `(${s.failed} failed) in ${s.openSeconds.toFixed(1)} s; bridge RSS ` +
        `${s.rssBeforeMb.toFixed(1)} MB before → ${s.rssWithConnsMb.toFixed(1)} MB with them ` +
        `(${fmtNum(perConn, 1)} KiB per connection) using ${(s.idleCpuPerS * 100).toFixed(1)}% ` +
        `of a core while they idle; ${s.rssAfterLoadMb.toFixed(1)} MB after ` +
        `the load (peak ${s.peakRssMb.toFixed(1)} MB); the bridge held ${s.fds} more ` +
        `descriptors with them open, ${s.fdsAfterLoad} after the load. A fresh dnsperf ` +
        `meanwhile (${s.seconds} s): ${fmtNum(s.qps)} QPS, ` +
        `p50 ${fmtMs(s.p50Ms)} ms, p99 ${fmtMs(s.p99Ms)} ms, lost ${s.lost}.`,
    );
    const errs = Object.entries(s.errors);
    if (errs.length > 0) {
      out.push(`  Connection errors: ${errs.map(([m, n]) => `${n}× ${m}`).join("; ")}`);
    }
    if (s.note) out.push(`  ${s.note}`);
    out.push("");
  }
  if (!brief && r.budget.length > 0) {
    out.push("Where the machine's CPU went during each measured run (CPU seconds):", "");
    out.push(markdownTable(
      ["run", "wall s", "target", "upstream (dnsdist+knotd)", "load generator", "other", "busy"],
      r.budget.map((b) => [
        b.run,
        fmtNum(b.wallS, 1),
        fmtNum(b.targetCpuS, 2),
        fmtNum(b.upstreamCpuS, 2),
        fmtNum(b.loadgenCpuS, 2),
        fmtNum(b.otherCpuS, 2),
        `${(b.machineBusy * 100).toFixed(0)}%`,
      ]),
    ));
    out.push("");
  }
  if (r.notes.length > 0) {
    out.push("Notes:", "", ...r.notes.map((n) => `- ${n}`), "");
  }
  if (!brief && r.commands.length > 0) {
    out.push("Load commands:", "", "```", ...r.commands, "```", "");
  }
  if (!brief && r.profile) out.push(r.profile, "");
  return out.join("\n");
}

/** Start and end markers of the README block `--write-readme` replaces. */
export const README_START = "<!-- bench:start -->";
export const README_END = "<!-- bench:end -->";

/**
 * `readme` with the text between the markers replaced by `block`.
 *
 * @throws {Error} when the markers are missing or out of order
 */
export function replaceReadmeBlock(readme: string, block: string): string {
  const start = readme.indexOf(README_START);
  const end = readme.indexOf(README_END);
  if (start < 0 || end < 0 || end < start) {
    throw new Error(`README.md needs "${README_START}" followed by "${README_END}"`);
  }
  return readme.slice(0, start + README_START.length) + "\n" + block.trim() + "\n" +
    readme.slice(end);
}
