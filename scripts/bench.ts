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
import { runAllocMode } from "./bench/alloc.ts";
import { runBaselines } from "./bench/baseline.ts";
import { runIdleMode } from "./bench/idle_memory.ts";
import { runBlocklistMode } from "./bench/blocklist.ts";
import { runJobs, tablesOf, threadCountsText } from "./bench/jobs.ts";
import { Lab } from "./bench/lab.ts";
import { machineFacts } from "./bench/measure.ts";
import { explain, settingsOf } from "./bench/notes.ts";
import {
  allocEstimateS,
  blocklistEstimateS,
  HELP,
  idleEstimateS,
  type Options,
  parseOptions,
  profileEstimateS,
  requiredTools,
  runsAlloc,
  runsIdle,
} from "./bench/options.ts";
import { capture, REPO_DIR, Supervisor } from "./bench/procs.ts";
import { runProfileMode } from "./bench/profile_run.ts";
import { jobKey, loadsOf, type RunContext } from "./bench/run_context.ts";
import { runScaleMode } from "./bench/scale.ts";
import { type BenchReport, renderReport } from "./bench/table.ts";
import { BENCH_BLOCK, writeBlock } from "./doc_block.ts";

/** Where `--write-docs` puts the results. */
const DOCS_PATH = `${REPO_DIR}/docs/benchmarks.md`;

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
    if (o.writeDocs) {
      await writeBlock(DOCS_PATH, BENCH_BLOCK, renderReport(report, true), true);
      log(`docs/benchmarks.md: bench block replaced`);
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
      // Keep only the results and the profiles.
      for (const entry of Deno.readDirSync(work)) {
        const kept = entry.name === "bench-results.md" || entry.name === "profile" ||
          entry.name.endsWith(".heapprofile");
        if (!kept) {
          Deno.removeSync(`${work}/${entry.name}`, { recursive: true });
        }
      }
    }
  }
  return failed ? 1 : 0;
}

/**
 * One whole run: the machine's facts, the lab, the upstream alone, the table's jobs, then the
 * scale, idle-memory and profiled runs as far as they fit, and the report's words.
 */
async function run(
  o: Options,
  sup: Supervisor,
  work: string,
  log: (msg: string) => void,
  elapsedS: () => number,
): Promise<BenchReport> {
  const facts = await machineFacts();
  // PKI, zone, and what the bridge supports.
  const lab = await Lab.create(sup, {
    repo: REPO_DIR,
    work,
    names: o.names,
    bridgeArgs: o.bridgeArgs,
    bridgeV8Flags: o.bridgeV8Flags,
    cert: o.cert,
  });
  const ctx: RunContext = {
    o,
    sup,
    lab,
    work,
    log,
    elapsedS,
    cacheArgs: o.bridgeCacheArgs ?? lab.features.cacheOn,
    peerName: /dnsdist [\d.]+/.exec(facts.tools)?.[0] ?? "dnsdist",
    loads: loadsOf(o, lab),
    commands: [],
    notes: [],
    budget: [],
    skipped: [],
  };

  const baselines = await runBaselines(ctx);
  const results = await runJobs(ctx);
  const tables = tablesOf(ctx, results, baselines);

  // The runs after the table's, in order; each keeps the time of those after it.
  const profileS = o.profile && o.targets.has("bridge") ? profileEstimateS(o) : 0;
  const idleS = runsIdle(o) ? idleEstimateS(o) : 0;
  const blocklistS = o.modes.has("blocklist") ? blocklistEstimateS(o) : 0;
  const allocS = runsAlloc(o) ? allocEstimateS(o) : 0;
  const scale = await runScaleMode(ctx, idleS + allocS + blocklistS + profileS);
  const idle = await runIdleMode(ctx, allocS + blocklistS + profileS);
  const alloc = await runAllocMode(ctx, blocklistS + profileS);
  const blocklist = await runBlocklistMode(ctx, profileS);
  const profile = await runProfileMode(ctx);
  if (ctx.skipped.length > 0) {
    log(`skipped to stay inside --deadline ${o.deadline} s: ${ctx.skipped.join("; ")}`);
    ctx.notes.push(
      `Skipped because they would have ended too near the --deadline of ${o.deadline} s: ` +
        `${ctx.skipped.join("; ")}.`,
    );
  }

  const peerBridging = results.figures.get(jobKey({ label: "peer", mode: "bridging", threads: 1 }));
  ctx.notes.push(...explain(o, {
    baselineQps: baselines.dnsperf?.result.qps,
    peerRateP50: peerBridging?.[1]?.p50Ms,
    peerName: ctx.peerName,
    budget: ctx.budget,
    cacheArgs: ctx.cacheArgs,
  }));

  return {
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    machine: facts.machine,
    tools: facts.tools,
    settings: settingsOf(ctx, threadCountsText(ctx)),
    rows: [...baselines.rows, ...tables.rows],
    oneShot: tables.oneShot,
    handshakes: tables.handshakes,
    added: tables.added,
    budget: ctx.budget,
    scale,
    idle,
    blocklist,
    alloc: alloc && { results: alloc, load: ctx.loads.satMode },
    notes: ctx.notes,
    commands: [...new Set(ctx.commands)],
    profile,
  };
}

if (import.meta.main) {
  Deno.exit(await main());
}
