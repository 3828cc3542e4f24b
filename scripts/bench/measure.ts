/**
 * Measuring one load run: the target's CPU seconds and peak RSS, and where the rest of the
 * machine's CPU went (upstream, load generator, everyone else), plus machine facts; and the
 * main table's row made from a measured dnsperf or h2load run.
 *
 * @module
 */
import type { DnsperfResult } from "./dnsperf.ts";
import type { H2loadResult } from "./h2load.ts";
import {
  capture,
  childrenCpuSeconds,
  cpuSeconds,
  machineCpu,
  memoryKiB,
  type Proc,
  resetPeakRss,
  sleep,
} from "./procs.ts";

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

/** What a DoT or DoH-face job measured: its rows of the main table, and one figure more. */
export interface FigureResult {
  /** The rows, one per load, the fixed-rate run last. */
  rows: FigureRow[];
  /** The mean latency of the fixed-rate run, ms (for the latency added over the upstream). */
  fixedAvgMs: number;
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

/** A run's result with the target's CPU and memory and the machine's CPU budget. */
export interface Measured<T> {
  result: T;
  cpuS: number;
  peakRssMb: number;
  budget: Omit<BudgetRow, "run">;
}

/** Whose CPU to account: the target, and the upstream's processes (may include the target). */
export interface Watched {
  target: Proc;
  upstream: Proc[];
}

/**
 * Runs `run` (a load generator that is a direct child of this process, so its CPU shows in our
 * children's counters once reaped) and measures around it. The target's peak RSS is reset
 * first, so the figure is this run's peak.
 */
export async function measure<T>(w: Watched, run: () => Promise<T>): Promise<Measured<T>> {
  const upCpu = () => w.upstream.reduce((a, p) => a + cpuSeconds(p.pid), 0);
  const targetIsUpstream = w.upstream.includes(w.target);
  resetPeakRss(w.target.pid);
  const t0 = performance.now();
  const target0 = cpuSeconds(w.target.pid);
  const up0 = upCpu();
  const kids0 = childrenCpuSeconds();
  const self0 = cpuSeconds(Deno.pid);
  const m0 = machineCpu();
  const result = await run();
  const m1 = machineCpu();
  const self1 = cpuSeconds(Deno.pid);
  const kids1 = childrenCpuSeconds();
  const up1 = upCpu();
  const target1 = cpuSeconds(w.target.pid);
  const wallS = (performance.now() - t0) / 1000;
  const targetCpuS = target1 - target0;
  const upstreamCpuS = targetIsUpstream ? up1 - up0 - targetCpuS : up1 - up0;
  const loadgenCpuS = kids1 - kids0;
  const busy = m1.busy - m0.busy;
  return {
    result,
    cpuS: targetCpuS,
    peakRssMb: memoryKiB(w.target.pid).hwm / 1024,
    budget: {
      wallS,
      targetCpuS,
      upstreamCpuS,
      loadgenCpuS,
      otherCpuS: Math.max(0, busy - targetCpuS - upstreamCpuS - loadgenCpuS - (self1 - self0)),
      machineBusy: busy / Math.max(1e-9, m1.total - m0.total),
    },
  };
}

/** A table row from a measured dnsperf run; its QPS counts NOERROR answers only. */
export function dnsperfRow(target: string, mode: string, m: Measured<DnsperfResult>): FigureRow {
  const r = m.result;
  // Only NOERROR answers count: a target that fails fast (SERVFAIL) must not look fast.
  const good = r.completed > 0 ? (r.rcodes.NOERROR ?? 0) / r.completed : 0;
  return {
    target,
    mode,
    qps: r.qps * good,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    lost: r.lost,
    cpuS: m.cpuS,
    peakRssMb: m.peakRssMb,
    cpuUsPerQuery: r.completed > 0 ? (m.cpuS / r.completed) * 1e6 : undefined,
  };
}

/**
 * A table row from a measured h2load run; "lost" counts requests without a 2xx answer. It
 * uses h2load's "succeeded" (2xx answers to requests of the measured phase), not its "status
 * codes" line, which also counts answers that arrive after the phase ends (so can exceed the
 * total when there is no `--warm-up-time`).
 */
export function h2loadRow(target: string, mode: string, m: Measured<H2loadResult>): FigureRow {
  const r = m.result;
  return {
    target,
    mode,
    qps: r.reqPerSec,
    p50Ms: r.p50Ms,
    p99Ms: r.p99Ms,
    lost: Math.max(0, r.total - r.succeeded),
    cpuS: m.cpuS,
    peakRssMb: m.peakRssMb,
    cpuUsPerQuery: r.succeeded > 0 ? (m.cpuS / r.succeeded) * 1e6 : undefined,
  };
}

/** Machine size, tool versions, and how busy the machine was in the second before the run. */
export async function machineFacts(): Promise<{ machine: string; tools: string }> {
  const mem = Number(/MemTotal:\s+(\d+)/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]);
  const model = /model name\s*:\s*(.*)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1] ?? "?";
  const m0 = machineCpu();
  await sleep(1000);
  const m1 = machineCpu();
  const busy = (m1.busy - m0.busy) / Math.max(1e-9, m1.total - m0.total);
  const [dnsdistV, knotV, dnsperfV, h2loadV, kdigV] = await Promise.all([
    capture("dnsdist", ["--version"]),
    capture("knotd", ["--version"]),
    capture("dnsperf", ["-h"]),
    capture("h2load", ["--version"]),
    capture("kdig", ["--version"]),
  ]);
  const first = (s: string, re: RegExp) => re.exec(s)?.[0] ?? "?";
  const load = Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
  return {
    machine: `${navigator.hardwareConcurrency} CPUs (${model.trim()}), ` +
      `${(mem / 1024 / 1024).toFixed(1)} GiB RAM, Linux ${Deno.osRelease()}; ` +
      `load average ${load} at start, ${(busy * 100).toFixed(0)}% CPU busy in the second before`,
    tools: [
      `Deno ${Deno.version.deno}`,
      first(dnsdistV, /dnsdist [\d.]+/),
      first(knotV, /version \S+/).replace("version", "knotd"),
      first(dnsperfV, /Version \S+/).replace("Version", "dnsperf"),
      first(h2loadV, /nghttp2\/\S+/).replace("nghttp2/", "h2load "),
      first(kdigV, /version \S+/).replace("version", "kdig"),
    ].join(", "),
  };
}
