/**
 * The alloc mode (`--modes alloc`): bytes the bridge's JavaScript allocates per query, bridging
 * (cache off) and cached, from V8's sampling heap profiler over the bridge's inspector, with
 * objects the young and old collections freed counted too (so the figure is the allocation rate,
 * not what survives). The profile is taken during one dnsperf load at saturation; a second run of
 * the same load with the profiler off gives the CPU per query. Allocation per query varies little
 * with the machine's other load (the same code runs the same way), so it is the figure to compare
 * code versions by on a busy machine; CPU per query is the noisier one.
 *
 * @module
 */
import { runDnsperf } from "./dnsperf.ts";
import { Inspector } from "./heap.ts";
import { markdownTable } from "./markdown.ts";
import { measure } from "./measure.ts";
import { shortUrl } from "./profile.ts";
import { allocEstimateS, runsAlloc } from "./options.ts";
import { freePort } from "./procs.ts";
import { assertAlive, fits, type RunContext, withRestarts } from "./run_context.ts";

/** One node of a V8 sampling heap profile (`HeapProfiler.SamplingHeapProfileNode`). */
interface HeapProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number };
  /** Bytes allocated by this frame itself, scaled from the samples to an estimate of all. */
  selfSize: number;
  children: HeapProfileNode[];
}

/** Bytes allocated by one function or file. */
export interface AllocSite {
  name: string;
  bytes: number;
}

/** A sampling heap profile summed up. */
export interface AllocSummary {
  /** All bytes allocated while sampling (an estimate from the samples). */
  bytes: number;
  /** By the allocating function (builtins are charged to their JS caller), largest first. */
  functions: AllocSite[];
  /** By that function's file, largest first. */
  files: AllocSite[];
}

/** Sums a sampling heap profile's nodes by function and by file. */
export function summarizeAllocations(head: HeapProfileNode): AllocSummary {
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  let bytes = 0;
  const stack = [head];
  while (stack.length > 0) {
    const node = stack.pop()!;
    stack.push(...node.children);
    if (node.selfSize === 0) continue;
    bytes += node.selfSize;
    const f = node.callFrame;
    const file = shortUrl(f.url);
    const fn = `${f.functionName || "(anonymous)"}${file ? ` ${file}:${f.lineNumber + 1}` : ""}`;
    fns.set(fn, (fns.get(fn) ?? 0) + node.selfSize);
    const fileKey = file || f.functionName || "(unknown)";
    files.set(fileKey, (files.get(fileKey) ?? 0) + node.selfSize);
  }
  const sorted = (m: Map<string, number>) =>
    [...m].map(([name, b]) => ({ name, bytes: b })).sort((a, b) => b.bytes - a.bytes);
  return { bytes, functions: sorted(fns), files: sorted(files) };
}

/**
 * Runs `run` while the process whose inspector listens on `port` samples its allocations, every
 * `intervalBytes` on average, freed objects included; returns `run`'s result and the summary.
 * With `savePath`, the raw profile is written there too (Chrome DevTools opens a
 * `.heapprofile`).
 */
export async function sampleAllocations<T>(
  port: number,
  run: () => Promise<T>,
  intervalBytes = 1024,
  savePath?: string,
): Promise<{ result: T; summary: AllocSummary }> {
  const inspector = await Inspector.open(port);
  try {
    await inspector.call("HeapProfiler.enable");
    // A full collection first, so garbage of before is not charged to the run.
    await inspector.call("HeapProfiler.collectGarbage");
    await inspector.call("HeapProfiler.startSampling", {
      samplingInterval: intervalBytes,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    });
    const result = await run();
    const { profile } = await inspector.call("HeapProfiler.stopSampling") as {
      profile: { head: HeapProfileNode };
    };
    await inspector.call("HeapProfiler.disable");
    if (savePath) await Deno.writeTextFile(savePath, JSON.stringify(profile));
    return { result, summary: summarizeAllocations(profile.head) };
  } finally {
    inspector.close();
  }
}

/** One target of the alloc mode. */
export interface AllocResult {
  /** `bridging` or `cached`. */
  mode: string;
  /** Queries answered during the sampled run. */
  queries: number;
  /** Bytes allocated per answered query. */
  bytesPerQuery: number;
  /** From the run with the profiler off: QPS and the bridge's CPU per answered query. */
  qps: number;
  cpuUsPerQuery: number;
  /** The largest allocators, bytes per query. */
  functions: AllocSite[];
  files: AllocSite[];
}

/**
 * The alloc mode: a fresh bridge per cache setting with its inspector on, a warm-up (which also
 * fills the cache), the sampled saturation run, then the same run with the profiler off.
 */
export async function runAllocMode(
  ctx: RunContext,
  laterS: number,
): Promise<AllocResult[] | undefined> {
  const { o, lab, log, loads } = ctx;
  if (!runsAlloc(o)) return undefined;
  if (!fits(ctx, "alloc run", allocEstimateS(o), laterS)) return undefined;
  const out: AllocResult[] = [];
  const settings = [
    { mode: "bridging", args: lab.features.cacheOff },
    ...(ctx.cacheArgs ? [{ mode: "cached", args: ctx.cacheArgs }] : []),
  ];
  for (const { mode, args } of settings) {
    const inspectPort = await freePort();
    const load = { ...loads.sat, seconds: o.allocDuration, verbose: false };
    const result = await withRestarts(
      ctx,
      `bridge alloc ${mode}`,
      () => lab.startBridge(args, [`--inspect=127.0.0.1:${inspectPort}`]),
      async (target) => {
        await runDnsperf(ctx.sup, `alloc-warmup-${mode}`, {
          ...load,
          port: target.port,
          seconds: Math.max(1, o.warmup),
        });
        log(`bridge alloc ${mode}: ${loads.satMode}, ${o.allocDuration} s, allocations sampled`);
        const sampled = await sampleAllocations(
          inspectPort,
          () => runDnsperf(ctx.sup, `alloc-${mode}`, { ...load, port: target.port }),
          1024,
          `${ctx.work}/alloc-${mode}.heapprofile`,
        );
        assertAlive(target.proc);
        const plain = await measure(
          { target: target.proc, upstream: lab.upstreamProcs },
          () => runDnsperf(ctx.sup, `alloc-cpu-${mode}`, { ...load, port: target.port }),
        );
        assertAlive(target.proc);
        ctx.commands.push(plain.result.command);
        const queries = sampled.result.completed;
        const perQuery = (s: AllocSite) => ({ name: s.name, bytes: s.bytes / queries });
        return {
          mode,
          queries,
          bytesPerQuery: sampled.summary.bytes / queries,
          qps: plain.result.qps,
          cpuUsPerQuery: plain.cpuS / plain.result.completed * 1e6,
          functions: sampled.summary.functions.slice(0, 25).map(perQuery),
          files: sampled.summary.files.slice(0, 15).map(perQuery),
        };
      },
    );
    log(
      `bridge alloc ${mode}: ${result.bytesPerQuery.toFixed(0)} B per query, ` +
        `${result.cpuUsPerQuery.toFixed(1)} CPU µs per query at ${result.qps.toFixed(0)} QPS`,
    );
    out.push(result);
  }
  return out;
}

/**
 * The alloc mode's table, and with `detail` the largest allocators of each target.
 */
export function renderAlloc(results: AllocResult[], satMode: string, detail: boolean): string[] {
  const out = [
    `Allocation per query: bytes the bridge's JavaScript allocated per answered query during one ` +
    `dnsperf run (${satMode}), from V8's sampling heap profiler over the bridge's inspector ` +
    "(every 1 KiB on average, objects already collected included); QPS and CPU from a second " +
    "run of the same load with the profiler off:",
    "",
    markdownTable(
      ["target", "mode", "queries sampled", "KB allocated/q", "QPS", "CPU µs/q"],
      results.map((r) => [
        `dotbridge (Deno ${Deno.version.deno})`,
        r.mode,
        String(r.queries),
        (r.bytesPerQuery / 1000).toFixed(2),
        r.qps.toFixed(0),
        r.cpuUsPerQuery.toFixed(1),
      ]),
      2,
    ),
  ];
  if (detail) {
    for (const r of results) {
      out.push(
        "",
        `Largest allocators, ${r.mode} (bytes per query, by function):`,
        "",
        markdownTable(
          ["function", "B/q"],
          r.functions.map((s) => [s.name.replace(/\|/g, "\\|"), s.bytes.toFixed(0)]),
        ),
      );
    }
  }
  return out;
}
