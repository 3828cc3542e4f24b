/**
 * The benchmark report as data, and its markdown form: the main figures table with bridge/peer
 * ratio rows, the one-shot latency and handshake-rate tables, the latency the bridge adds over
 * the upstream, the per-run CPU budget, the connection-scale and idle-memory results, machine
 * facts and notes. The rows themselves are made beside the modes that measure them.
 *
 * @module
 */
import type { HandshakeRow } from "./handshake.ts";
import type { IdleResult } from "./idle_memory.ts";
import { fmtMs, fmtNum, fmtRatio, markdownTable } from "./markdown.ts";
import type { BudgetRow, FigureRow } from "./measure.ts";
import type { OneShotRow } from "./oneshot.ts";
import type { ScaleResult } from "./scale.ts";
import { type BlocklistResult, renderBlocklist } from "./blocklist.ts";
import { type AllocResult, renderAlloc } from "./alloc.ts";

/** Latency the bridge (or the peer) adds over querying the DoH upstream directly. */
export interface AddedLatency {
  target: string;
  p50Ms: number;
  p99Ms: number;
  avgMs: number;
}

/** Everything the report prints. */
export interface BenchReport {
  date: string;
  machine: string;
  tools: string;
  settings: string[];
  rows: FigureRow[];
  oneShot: OneShotRow[];
  handshakes: HandshakeRow[];
  added: AddedLatency[];
  budget: BudgetRow[];
  scale?: ScaleResult;
  /** The idle-memory run, one entry per listener. */
  idle?: IdleResult[];
  /** The blocklist mode's run. */
  blocklist?: BlocklistResult;
  /** The alloc mode's targets, and the load they ran under (e.g. "saturation 16c×1000q"). */
  alloc?: { results: AllocResult[]; load: string };
  notes: string[];
  commands: string[];
  profile?: string;
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

/** The target column of a ratio row for a bridge with `threads` threads. */
export function ratioLabel(threads: number): string {
  return threads > 1
    ? `ratio dotbridge ×${threads} threads / dnsdist`
    : "ratio dotbridge / dnsdist";
}

/** The ratio row bridge/peer of two one-shot series (undefined when either is n/a). */
export function oneShotRatioRow(
  bridge: OneShotRow,
  peer: OneShotRow,
  label = ratioLabel(1),
): OneShotRow | undefined {
  if (bridge.unavailable || peer.unavailable) return undefined;
  return {
    target: label,
    face: bridge.face,
    kind: bridge.kind,
    medianMs: ratio(bridge.medianMs, peer.medianMs),
    p90Ms: ratio(bridge.p90Ms, peer.p90Ms),
    maxMs: ratio(bridge.maxMs, peer.maxMs),
    ratio: true,
  };
}

/** The ratio row bridge/peer of two handshake-rate rows (undefined when either is n/a). */
export function handshakeRatioRow(
  bridge: HandshakeRow,
  peer: HandshakeRow,
  label = ratioLabel(1),
): HandshakeRow | undefined {
  if (bridge.unavailable || peer.unavailable) return undefined;
  return {
    target: label,
    listener: bridge.listener,
    connPerSec: ratio(bridge.connPerSec, peer.connPerSec),
    p50Ms: ratio(bridge.p50Ms, peer.p50Ms),
    p99Ms: ratio(bridge.p99Ms, peer.p99Ms),
    cpuS: ratio(bridge.cpuS, peer.cpuS),
    cpuUsPerConn: ratio(bridge.cpuUsPerConn, peer.cpuUsPerConn),
    ratio: true,
  };
}

/** Rows compared with one peer row: the bridge's (per thread count or variant) and the peer's. */
export interface SideBySide<R> {
  bridges: { row: R; ratioLabel: string }[];
  peer?: R;
}

/**
 * Each group in order: its bridge rows, its peer row, then one ratio row per bridge row
 * (where `ratioOf` gives one: both measured).
 *
 * @example
 * ```ts
 * sideBySide([{ bridges: [{ row: b, ratioLabel: ratioLabel(1) }], peer: p }], ratioRow);
 * // [b, p, ratio b/p]
 * ```
 */
export function sideBySide<R>(
  groups: SideBySide<R>[],
  ratioOf: (bridge: R, peer: R, label: string) => R | undefined,
): R[] {
  const out: R[] = [];
  for (const g of groups) {
    for (const b of g.bridges) out.push(b.row);
    if (g.peer === undefined) continue;
    out.push(g.peer);
    for (const b of g.bridges) {
      const r = ratioOf(b.row, g.peer, b.ratioLabel);
      if (r) out.push(r);
    }
  }
  return out;
}

/** The measured rows of one target: the bridge's at a thread count, or the peer's. */
export interface TargetRows<R> {
  /** The bridge's --threads (ratio rows name it when > 1). */
  threads: number;
  /** Undefined when this target was not run. */
  rows?: R[];
}

/**
 * One mode of the main table: for each load (row index), every bridge's row, the peer's row,
 * and a ratio row per bridge.
 */
export function modeRows(bridges: TargetRows<FigureRow>[], peer?: FigureRow[]): FigureRow[] {
  const count = Math.max(peer?.length ?? 0, ...bridges.map((b) => b.rows?.length ?? 0));
  const groups: SideBySide<FigureRow>[] = [];
  for (let i = 0; i < count; i++) {
    groups.push({
      bridges: bridges.flatMap((b) =>
        b.rows?.[i] ? [{ row: b.rows[i], ratioLabel: ratioLabel(b.threads) }] : []
      ),
      peer: peer?.[i],
    });
  }
  return sideBySide(groups, ratioRow);
}

/**
 * The one-shot table: per protocol (in order of first appearance), every bridge row of it (the
 * bridge may have several, e.g. DoT on two servers), the peer's row, and a ratio row per
 * bridge row.
 */
export function oneShotRows(bridges: TargetRows<OneShotRow>[], peer?: OneShotRow[]): OneShotRow[] {
  const all = [...bridges.flatMap((b) => b.rows ?? []), ...(peer ?? [])];
  const kinds = [...new Set(all.map((r) => r.kind))];
  return sideBySide(
    kinds.map((kind) => ({
      bridges: bridges.flatMap((b) =>
        (b.rows ?? []).filter((r) => r.kind === kind).map((row) => ({
          row,
          ratioLabel: ratioLabel(b.threads),
        }))
      ),
      peer: peer?.find((r) => r.kind === kind),
    })),
    oneShotRatioRow,
  );
}

/**
 * The handshake-rate table: every bridge row (each listener, each thread count), the peer's
 * row, and a ratio row per bridge row.
 */
export function handshakeRows(
  bridges: TargetRows<HandshakeRow>[],
  peer?: HandshakeRow[],
): HandshakeRow[] {
  return sideBySide([{
    bridges: bridges.flatMap((b) =>
      (b.rows ?? []).map((row) => ({ row, ratioLabel: ratioLabel(b.threads) }))
    ),
    peer: peer?.[0],
  }], handshakeRatioRow);
}

function handshakeCells(r: HandshakeRow): string[] {
  if (r.unavailable) return [r.target, r.listener, r.unavailable, "", "", "", "", ""];
  if (r.ratio) {
    return [
      `*${r.target}*`,
      `*${r.listener}*`,
      fmtRatio(r.connPerSec),
      fmtRatio(r.p50Ms),
      fmtRatio(r.p99Ms),
      "",
      fmtRatio(r.cpuS),
      fmtRatio(r.cpuUsPerConn),
    ];
  }
  return [
    r.target,
    r.listener,
    fmtNum(r.connPerSec),
    fmtMs(r.p50Ms),
    fmtMs(r.p99Ms),
    fmtNum(r.failed),
    fmtNum(r.cpuS, 2),
    fmtNum(r.cpuUsPerConn, 0),
  ];
}

/** The handshake-rate table. */
export function handshakeTable(rows: HandshakeRow[]): string {
  return markdownTable(
    ["target", "listener", "conn/s", "p50 ms", "p99 ms", "failed", "CPU s", "CPU µs/conn"],
    rows.map(handshakeCells),
    2,
  );
}

function oneShotCells(r: OneShotRow): string[] {
  if (r.unavailable) return [r.target, r.face, r.unavailable, "", "", "", ""];
  if (r.ratio) {
    return [
      `*${r.target}*`,
      `*${r.face}*`,
      "",
      fmtRatio(r.medianMs),
      fmtRatio(r.p90Ms),
      fmtRatio(r.maxMs),
      "",
    ];
  }
  return [
    r.target,
    r.face,
    fmtNum(r.runs),
    fmtMs(r.medianMs),
    fmtMs(r.p90Ms),
    fmtMs(r.maxMs),
    fmtNum(r.failed),
  ];
}

/** The one-shot latency table. */
export function oneShotTable(rows: OneShotRow[]): string {
  return markdownTable(
    ["target", "face", "runs", "median ms", "p90 ms", "max ms", "failed"],
    rows.map(oneShotCells),
    2,
  );
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
  out.push("");
  if (r.rows.length > 0) out.push(figuresTable(r.rows), "");
  if (r.oneShot.length > 0) {
    out.push(
      "One-shot latency: each query on a new connection from a new kdig process, timed by " +
        "kdig (connect, TLS handshake, query, answer), cached answers:",
      "",
      oneShotTable(r.oneShot),
      "",
    );
  }
  if (r.handshakes.length > 0) {
    out.push(
      "Handshake rate: new DoT connections per second, each a TCP connect, a full TLS " +
        "handshake (no resumption), one query for a cached name and its answer, then a close " +
        "(p50/p99 of the whole connection; CPU is the target's):",
      "",
      handshakeTable(r.handshakes),
      "",
    );
  }
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
  if (r.idle && r.idle.length > 0) out.push(...renderIdle(r.idle), "");
  if (r.alloc && r.alloc.results.length > 0) {
    out.push(...renderAlloc(r.alloc.results, r.alloc.load, !brief), "");
  }
  if (r.blocklist) out.push(...renderBlocklist(r.blocklist));
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

/**
 * The idle-memory tables: RSS at each step per listener with the cost per connection, then where
 * one connection's JS heap goes (heap snapshots with and without connections, per connection).
 */
export function renderIdle(results: IdleResult[]): string[] {
  const counts = [...new Set(results.flatMap((r) => r.steps.map((s) => s.connections)))]
    .sort((a, b) => a - b);
  const out = [
    "Idle DoT connections: whole-process RSS after each step, and per connection from the " +
    "first step to the last; the JS heap and ArrayBuffers per connection come from a second " +
    "bridge with its inspector on (`Deno.memoryUsage()` after a full GC, with and without " +
    "connections); the rest is native (rustls, Deno's TLS and socket state):",
    "",
  ];
  out.push(markdownTable(
    [
      "target",
      ...counts.map((c) => `RSS MB, ${fmtNum(c)} conns`),
      "KiB/conn",
      "JS heap KiB/conn",
      "ArrayBuffers KiB/conn",
      "native KiB/conn",
    ],
    results.map((r) => {
      const first = r.steps[0];
      const last = r.steps[r.steps.length - 1];
      const n = last.open - first.open;
      const rss = n > 0 ? ((last.rssMb - first.rssMb) * 1024) / n : NaN;
      const js = r.heap ? r.heap.heapBytes / 1024 : NaN;
      const ext = r.heap ? r.heap.externalBytes / 1024 : NaN;
      return [
        r.label,
        ...counts.map((c) => {
          const s = r.steps.find((x) => x.connections === c);
          return s ? s.rssMb.toFixed(1) : "n/a";
        }),
        fmtNum(rss, 1),
        fmtNum(js, 1),
        fmtNum(ext, 1),
        fmtNum(rss - js - ext, 1),
      ];
    }),
    1,
  ));
  for (const r of results) {
    if (!r.heap) continue;
    const grown = r.heap.top.filter(([, , bytes]) => bytes >= 32).slice(0, 12);
    out.push(
      "",
      `${r.label}, JS heap per connection (heap snapshots, ${fmtNum(r.heap.connections)} ` +
        `connections against none): ` +
        grown.map(([name, objects, bytes]) =>
          `${name} ${fmtNum(objects, 1)}× ${bytes.toFixed(0)} B`
        )
          .join("; "),
    );
  }
  return out;
}
