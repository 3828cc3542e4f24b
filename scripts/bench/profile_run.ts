/**
 * The profile mode (`--profile`), the optional profiled run: a fresh bridge (cache off) under `deno run --cpu-prof` (V8's view of the JS
 * thread) and, when `perf` is installed, `perf record` on the whole process (all threads,
 * native code included), during one dnsperf load. Returns a markdown summary.
 *
 * @module
 */
import { type DnsperfOptions, runDnsperf } from "./dnsperf.ts";
import type { Lab } from "./lab.ts";
import { markdownTable } from "./markdown.ts";
import { profileEstimateS } from "./options.ts";
import { capture, type Proc } from "./procs.ts";
import { parsePerfReport, renderCpuProfile } from "./profile.ts";
import { fits, type RunContext } from "./run_context.ts";

/** Settings of {@linkcode profileBridge}. */
export interface ProfileOptions {
  /** Where the .cpuprofile, perf.data and summaries go. */
  dir: string;
  /** The measured load (its `seconds` is the profiled span). */
  load: Omit<DnsperfOptions, "port">;
  /** Words for the heading, e.g. "saturation". */
  label: string;
  log?: (message: string) => void;
}

async function perfReport(data: string, sort: string, limit: number) {
  return parsePerfReport(
    await capture("perf", [
      "report",
      "-i",
      data,
      "--stdio",
      "--no-children",
      "-g",
      "none",
      "--sort",
      sort,
      "--percent-limit",
      String(limit),
    ]),
  );
}

/** Profiles a fresh bridge during `o.load` and summarizes where its time went. */
export async function profileBridge(lab: Lab, o: ProfileOptions): Promise<string> {
  Deno.mkdirSync(o.dir, { recursive: true });
  const bridge = await lab.startBridge(lab.features.cacheOff, [
    "--cpu-prof",
    `--cpu-prof-dir=${o.dir}`,
    // JIT code names for perf (in /tmp/perf-PID.map); keep V8's log out of the repository.
    `--v8-flags=--perf-basic-prof,--no-logfile-per-isolate,--logfile=${o.dir}/v8.log`,
  ]);
  const parts = [`#### Where the bridge's time goes (${o.label}, profiled run)`, ""];
  const hasPerf = (await capture("bash", ["-c", "command -v perf"])).trim().startsWith("/");
  let perf: Proc | undefined;
  try {
    await runDnsperf(lab.sup, "profile-warmup", {
      ...o.load,
      port: bridge.port,
      seconds: 2,
      verbose: false,
    });
    if (hasPerf) {
      perf = lab.sup.spawn("perf", "perf", [
        "record",
        "-F",
        "499",
        "-g",
        "-p",
        String(bridge.proc.pid),
        "-o",
        `${o.dir}/perf.data`,
        "--",
        "sleep",
        String(o.load.seconds),
      ]);
    }
    o.log?.(`profile: ${o.label} ${o.load.seconds} s under --cpu-prof${perf ? " and perf" : ""}`);
    const res = await runDnsperf(lab.sup, "profile-load", { ...o.load, port: bridge.port });
    parts.push(
      `Profiled run: ${res.qps.toFixed(0)} QPS, average latency ${res.avgMs.toFixed(2)} ms ` +
        "(profilers on, so slower than the table).",
      "",
    );
    if (perf) await perf.status;
  } finally {
    await bridge.proc.stop(10_000);
    try {
      Deno.removeSync(`/tmp/perf-${bridge.proc.pid}.map`);
    } catch {
      // not written
    }
  }

  const cpuprofile = [...Deno.readDirSync(o.dir)].find((e) => e.name.endsWith(".cpuprofile"));
  parts.push(
    cpuprofile
      ? renderCpuProfile(JSON.parse(Deno.readTextFileSync(`${o.dir}/${cpuprofile.name}`)))
      : "(no .cpuprofile was written)",
    "",
  );
  if (perf) {
    const data = `${o.dir}/perf.data`;
    const byThread = await perfReport(data, "comm", 1);
    const byDso = await perfReport(data, "comm,dso", 1);
    const bySym = await perfReport(data, "dso,sym", 0.4);
    const esc = (s: string) => s.replace(/\|/g, "\\|");
    parts.push(
      "perf, all threads of the bridge process (% of its samples), by thread:",
      "",
      markdownTable(
        ["thread", "%"],
        byThread.slice(0, 8).map((r) => [r.keys[0], r.pct.toFixed(1)]),
      ),
      "",
      "by thread and binary:",
      "",
      markdownTable(
        ["thread", "binary", "%"],
        byDso.slice(0, 12).map((r) => [r.keys[0], r.keys[1] ?? "", r.pct.toFixed(1)]),
      ),
      "",
      "top symbols (the deno binary is stripped: its own code shows as addresses):",
      "",
      markdownTable(
        ["binary", "symbol", "%"],
        bySym.slice(0, 20).map((r) => [r.keys[0], esc(r.keys[1] ?? ""), r.pct.toFixed(1)]),
      ),
      "",
    );
    Deno.writeTextFileSync(
      `${o.dir}/perf-summary.json`,
      JSON.stringify({ byThread, byDso, bySym }, null, 2),
    );
  }
  Deno.writeTextFileSync(`${o.dir}/summary.md`, parts.join("\n"));
  return parts.join("\n");
}

/**
 * The profiled run when `--profile` asks for it and it fits before the deadline: the markdown
 * summary, or undefined when it did not run or failed (the notes say which).
 */
export async function runProfileMode(ctx: RunContext): Promise<string | undefined> {
  const { o, log, loads } = ctx;
  if (!o.profile || !o.targets.has("bridge")) return undefined;
  const load = o.profileLoad === "rate" ? loads.rate : loads.sat;
  if (!fits(ctx, "profiled run", profileEstimateS(o), 0)) return undefined;
  try {
    return await profileBridge(ctx.lab, {
      dir: `${ctx.work}/profile`,
      load: { ...load, seconds: o.profileDuration, verbose: o.profileLoad === "rate" },
      label: o.profileLoad === "rate" ? loads.rateMode : loads.satMode,
      log,
    });
  } catch (e) {
    log(`profile run failed: ${(e as Error).message}`);
    ctx.notes.push(`The profiled run failed: ${(e as Error).message}`);
    return undefined;
  }
}
