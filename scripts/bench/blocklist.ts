/**
 * The blocklist mode: a generated list of `--blocklist-names` domains (1 000 000 by default) and
 * what it costs the bridge, against the targets of issue #22:
 *
 * - in force after start: a fresh bridge with the list answers a listed name NXDOMAIN (the
 *   bridge opens its faces only once its lists are in force) after this long, against a fresh
 *   bridge without it answering at all;
 * - RSS added: the two bridges' RSS after a settle and after the load;
 * - a lookup: `FilterPolicy.check` in this process over the same list (half the probes under a
 *   listed name, half not), and the list's build time and bytes here;
 * - cached DoT QPS with and without it: dnsperf at saturation over the cached zone after an
 *   unmeasured warm-up, runs interleaved (without, with, with, without, ...), a fresh bridge
 *   each, and the bridge's CPU per answered query;
 * - a reload under load: dnsperf at `--rate` while the list file is replaced by another of the
 *   same size, against the same rate without a reload: lost queries and latency.
 *
 * @module
 */
import { generatedDomains, generatedList } from "./filter_list.ts";
import { FilterPolicy, NameHasher, parseList } from "../../src/filter/mod.ts";
import { encodeName } from "../../src/dns/name.ts";
import { type DnsperfResult, runDnsperf } from "./dnsperf.ts";
import type { Target } from "./lab.ts";
import { cpuSeconds, memoryKiB, sleep } from "./procs.ts";
import { dotQuery } from "./probe.ts";
import { fits, type RunContext } from "./run_context.ts";
import { blocklistEstimateS } from "./options.ts";
import { fmtMs, fmtNum, markdownTable } from "./markdown.ts";

/** One bridge's run in the interleaved series. */
export interface BlocklistRun {
  withList: boolean;
  /** From spawn to the first answer (with the list: a listed name's NXDOMAIN). */
  readyS: number;
  /** RSS 2 s after start, and after the load. */
  rssMb: number;
  rssAfterLoadMb: number;
  qps: number;
  p99Ms: number;
  /** The bridge's CPU (utime + stime) per answered query in the measured run, µs. */
  cpuUsPerQuery: number;
}

/** What the mode measured. */
export interface BlocklistResult {
  names: number;
  listMb: number;
  /** In this process: build ms, bytes of the set, ns per lookup (one entry per round). */
  buildMs: number[];
  setMb: number;
  lookupNs: number[];
  runs: BlocklistRun[];
  /** dnsperf at --rate: without a reload, then with the list replaced mid-run. */
  steady?: DnsperfResult;
  reload?: DnsperfResult;
  /** The replaced list was in force after the reload run. */
  reloaded?: boolean;
  rate: number;
}

/** A query for `name` is answered NXDOMAIN. */
async function blocked(port: number, caPem: string, name: string): Promise<boolean> {
  try {
    const answer = await dotQuery(port, caPem, name, 1000);
    return (answer[3] & 0x0f) === 3;
  } catch {
    return false;
  }
}

/** In this process: build the list's set and time lookups. */
function lookupCost(text: string, names: number): { buildMs: number; bytes: number; ns: number } {
  const hasher = new NameHasher();
  const started = performance.now();
  const { set } = parseList(text, hasher);
  const buildMs = performance.now() - started;
  const policy = new FilterPolicy({ hasher, blocklists: [{ name: "bench", set }] });
  // Half the probes are under a listed name (a hit two labels down), half are not listed.
  const listed = [...generatedDomains(Math.min(names, 100_000), 1)];
  const probes: Uint8Array[] = [];
  let i = 0;
  for (const other of generatedDomains(100_000, 99)) {
    probes.push(encodeName(i % 2 === 0 ? `cdn.x.${listed[i % listed.length]}` : `www.${other}`));
    i++;
  }
  // Packed into one buffer, as a query's bytes are hot when it is checked.
  const wire = new Uint8Array(probes.reduce((n, p) => n + p.length, 0));
  const offsets: number[] = [];
  let at = 0;
  for (const p of probes) {
    offsets.push(at);
    wire.set(p, at);
    at += p.length;
  }
  let hits = 0;
  for (const o of offsets) if (policy.check(wire, o)) hits++;
  const passes = 10;
  const t0 = performance.now();
  for (let r = 0; r < passes; r++) for (const o of offsets) if (policy.check(wire, o)) hits++;
  const ns = ((performance.now() - t0) * 1e6) / (passes * offsets.length);
  // The listed half is blocked; a probe of the other half may by chance be a listed name too.
  if (hits < ((passes + 1) * offsets.length) / 2) {
    throw new Error(`blocklist bench: ${hits} hits, expected at least half of the probes`);
  }
  return { buildMs, bytes: set.bytes, ns };
}

/**
 * Runs the mode when asked for and when it fits before the deadline (keeping `laterS` for the
 * runs after it).
 */
export async function runBlocklistMode(
  ctx: RunContext,
  laterS: number,
): Promise<BlocklistResult | undefined> {
  const { o, lab, log, work } = ctx;
  if (!o.modes.has("blocklist")) return undefined;
  const rounds = o.blocklistRounds;
  if (!fits(ctx, "blocklist", blocklistEstimateS(o), laterS)) return undefined;
  const path = `${work}/blocklist.txt`;
  log(`blocklist: generating ${o.blocklistNames} domains`);
  const text = generatedList(o.blocklistNames);
  Deno.writeTextFileSync(path, text);
  const firstListed = generatedDomains(1, 1).next().value as string;
  const result: BlocklistResult = {
    names: o.blocklistNames,
    listMb: text.length / 1048576,
    buildMs: [],
    setMb: 0,
    lookupNs: [],
    runs: [],
    rate: o.rate,
  };
  for (let r = 0; r < 2; r++) {
    const cost = lookupCost(text, o.blocklistNames);
    result.buildMs.push(cost.buildMs);
    result.lookupNs.push(cost.ns);
    result.setMb = cost.bytes / 1048576;
    log(
      `blocklist: in-process build ${cost.buildMs.toFixed(0)} ms, lookup ${cost.ns.toFixed(0)} ns`,
    );
  }

  const listArgs = ["--blocklist", path, "--state-dir", `${work}/blocklist-state`];
  const start = async (withList: boolean): Promise<{ target: Target; readyS: number }> => {
    const t0 = performance.now();
    const target = await lab.startBridge(
      [...ctx.cacheArgs!, ...(withList ? listArgs : [])],
      [],
      { readyPollMs: 20 },
    );
    let readyS = (performance.now() - t0) / 1000;
    if (withList) {
      if (!await blocked(target.port, lab.pki.caPem, firstListed)) {
        await target.proc.stop();
        throw new Error("blocklist bench: the list is not in force once the bridge answers");
      }
      readyS = (performance.now() - t0) / 1000;
    }
    return { target, readyS };
  };

  for (let round = 0; round < rounds; round++) {
    // Which goes first alternates, so a drift of the machine's load over time favours neither.
    for (const withList of round % 2 === 0 ? [false, true] : [true, false]) {
      const what = `blocklist round ${round + 1}, ${withList ? "with" : "without"} the list`;
      log(`${what}: starting a cached bridge`);
      const { target, readyS } = await start(withList);
      try {
        await sleep(2_000);
        const rssMb = memoryKiB(target.proc.pid).rss / 1024;
        await runDnsperf(ctx.sup, `dnsperf-blocklist-warmup-${round}-${withList}`, {
          ...ctx.loads.sat,
          seconds: Math.max(1, o.warmup),
          port: target.port,
        });
        const cpu0 = cpuSeconds(target.proc.pid);
        const run = await runDnsperf(ctx.sup, `dnsperf-blocklist-${round}-${withList}`, {
          ...ctx.loads.sat,
          port: target.port,
        });
        const cpuS = cpuSeconds(target.proc.pid) - cpu0;
        ctx.commands.push(run.command);
        const entry: BlocklistRun = {
          withList,
          readyS,
          rssMb,
          rssAfterLoadMb: memoryKiB(target.proc.pid).rss / 1024,
          qps: run.qps,
          p99Ms: run.p99Ms,
          cpuUsPerQuery: (cpuS * 1e6) / Math.max(1, run.completed),
        };
        result.runs.push(entry);
        log(
          `${what}: ready ${readyS.toFixed(2)} s, RSS ${rssMb.toFixed(1)} MB, ` +
            `${run.qps.toFixed(0)} QPS, ${entry.cpuUsPerQuery.toFixed(2)} CPU µs/q`,
        );
      } finally {
        await target.proc.stop();
      }
    }
  }

  log(`blocklist: a reload under ${o.rate} QPS`);
  const { target } = await start(true);
  try {
    const load = {
      ...ctx.loads.rate,
      port: target.port,
    };
    result.steady = await runDnsperf(ctx.sup, "dnsperf-blocklist-steady", load);
    const replaced = generatedList(o.blocklistNames, "plain", 2);
    const newListed = generatedDomains(1, 2).next().value as string;
    const during = runDnsperf(ctx.sup, "dnsperf-blocklist-reload", load);
    await sleep((o.duration * 1000) / 3);
    Deno.writeTextFileSync(path, replaced);
    result.reload = await during;
    result.reloaded = await blocked(target.port, lab.pki.caPem, newListed) &&
      !await blocked(target.port, lab.pki.caPem, firstListed);
    ctx.commands.push(result.reload.command);
  } finally {
    await target.proc.stop();
  }
  return result;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const range = (xs: number[], digits: number, unit = "") =>
  xs.length === 0
    ? "–"
    : `${fmtNum(Math.min(...xs), digits)}–${fmtNum(Math.max(...xs), digits)}${unit}`;

/** The mode's report: one table of the runs, then the figures against the targets. */
export function renderBlocklist(r: BlocklistResult): string[] {
  const out: string[] = [];
  const without = r.runs.filter((x) => !x.withList);
  const withList = r.runs.filter((x) => x.withList);
  out.push(
    `Blocklist: a generated list of ${r.names} domains (${r.listMb.toFixed(1)} MB of text), ` +
      "cached DoT, a fresh bridge per run, runs interleaved:",
    "",
    markdownTable(
      ["run", "list", "ready s", "RSS MB", "RSS after load MB", "QPS", "p99 ms", "CPU µs/q"],
      r.runs.map((x, i) => [
        String(Math.floor(i / 2) + 1),
        x.withList ? "with" : "without",
        fmtNum(x.readyS, 2),
        fmtNum(x.rssMb, 1),
        fmtNum(x.rssAfterLoadMb, 1),
        fmtNum(x.qps),
        fmtMs(x.p99Ms),
        fmtNum(x.cpuUsPerQuery, 2),
      ]),
    ),
    "",
  );
  const ready = withList.map((x, i) => x.readyS - (without[i]?.readyS ?? NaN));
  const rss = withList.map((x, i) => x.rssMb - (without[i]?.rssMb ?? NaN));
  const rssLoad = withList.map((x, i) => x.rssAfterLoadMb - (without[i]?.rssAfterLoadMb ?? NaN));
  const ratios = withList.map((x, i) => x.qps / (without[i]?.qps ?? NaN));
  const cpuRatios = withList.map((x, i) => x.cpuUsPerQuery / (without[i]?.cpuUsPerQuery ?? NaN));
  out.push(
    markdownTable(["figure", "target", "measured"], [
      [
        "in force after start",
        "≤ 2 s",
        `${range(withList.map((x) => x.readyS), 2, " s")} (a bridge without the list answers ` +
        `after ${range(without.map((x) => x.readyS), 2, " s")}; the list adds ` +
        `${range(ready, 2, " s")})`,
      ],
      [
        "RSS added",
        "≤ 40 MB",
        `${range(rss, 1, " MB")} settled, ${range(rssLoad, 1, " MB")} after the load (the set ` +
        `itself: ${r.setMb.toFixed(1)} MB)`,
      ],
      [
        "a lookup",
        "< 1 µs",
        `${range(r.lookupNs, 0, " ns")} (build in-process ${range(r.buildMs, 0, " ms")})`,
      ],
      [
        "cached DoT QPS, with / without",
        "≥ 0.95",
        `${range(ratios, 3)} per pair, ${
          fmtNum(median(withList.map((x) => x.qps)) / median(without.map((x) => x.qps)), 3)
        } of medians`,
      ],
      [
        "bridge CPU per cached query, with / without",
        "≤ 1.05",
        `${range(cpuRatios, 3)} per pair, ${
          fmtNum(
            median(withList.map((x) => x.cpuUsPerQuery)) /
              median(without.map((x) => x.cpuUsPerQuery)),
            3,
          )
        } of medians (the QPS ratio's inverse when the bridge is the bottleneck, and less ` +
        "swayed by other work on the machine)",
      ],
      ...(r.steady && r.reload
        ? [[
          `a reload at ${r.rate} QPS`,
          "no pause",
          `lost ${r.reload.lost} of ${r.reload.sent}, p99 ${fmtMs(r.reload.p99Ms)} ms, max ` +
          `${fmtMs(r.reload.maxMs)} ms (without a reload: lost ${r.steady.lost}, p99 ` +
          `${fmtMs(r.steady.p99Ms)} ms, max ${fmtMs(r.steady.maxMs)} ms); new list in force: ` +
          `${r.reloaded ? "yes" : "no"}`,
        ]]
        : []),
    ]),
    "",
  );
  return out;
}
