/**
 * The scale mode: many idle DoT connections held open to a fresh bridge (from
 * `idle_clients.ts` child processes), the bridge's memory and descriptors with them open, and
 * the throughput a fresh dnsperf client gets meanwhile.
 *
 * @module
 */
import { type DnsperfOptions, runDnsperf } from "./dnsperf.ts";
import type { Lab } from "./lab.ts";
import { runsScale, scaleEstimateS } from "./options.ts";
import { cpuSeconds, memoryKiB, openFds, type Proc, resetPeakRss, sleep } from "./procs.ts";
import { fits, type RunContext } from "./run_context.ts";

/** Settings of {@linkcode connectionScale}. */
export interface ScaleOptions {
  /** Idle connections to open. */
  connections: number;
  /** Processes sharing them. */
  processes: number;
  /** The dnsperf load run while they are open (its `seconds` included). */
  load: Omit<DnsperfOptions, "port">;
  /** Give up on opening after this long. Default 120 s. */
  openTimeoutMs?: number;
  log?: (message: string) => void;
}

interface HolderReport {
  open: number;
  failed: number;
  errors: Record<string, number>;
}

async function readLines(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    rest += chunk;
    let nl;
    while ((nl = rest.indexOf("\n")) >= 0) {
      onLine(rest.slice(0, nl));
      rest = rest.slice(nl + 1);
    }
  }
}

/** Resolves with the holder's "ready" report; rejects if it ends without one. */
export function holderReady(proc: Proc): Promise<HolderReport> {
  return new Promise((resolve, reject) => {
    let done = false;
    readLines(proc.stdout!, (line) => {
      if (done || !line.startsWith("{")) return;
      const event = JSON.parse(line);
      if (event.event === "ready") {
        done = true;
        resolve(event);
      }
    }).catch(() => {}).finally(() => {
      if (!done) {
        reject(new Error(`${proc.name} ended before it was ready; see ${proc.stderrPath}`));
      }
    });
  });
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

/**
 * Starts a bridge (cache off) that keeps idle connections (10 min idle timeout, no per-client
 * limit, connection cap above the test's count), opens the connections, measures, loads it,
 * and stops everything it started.
 */
export async function connectionScale(lab: Lab, o: ScaleOptions): Promise<ScaleResult> {
  const bridge = await lab.startBridge([
    ...lab.features.cacheOff,
    ...lab.features.unlimitedConnections,
    "--idle-timeout",
    "10m",
    "--max-connections",
    String(o.connections + 1000),
  ]);
  const holders: Proc[] = [];
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await sleep(500);
    const rssBefore = memoryKiB(bridge.proc.pid).rss / 1024;
    const fdsBefore = openFds(bridge.proc.pid);
    resetPeakRss(bridge.proc.pid);
    o.log?.(`scale: opening ${o.connections} idle DoT connections from ${o.processes} processes`);
    const per = Math.ceil(o.connections / o.processes);
    const t0 = performance.now();
    const reports: Promise<HolderReport>[] = [];
    for (let i = 0; i < o.processes; i++) {
      const count = Math.min(per, o.connections - i * per);
      if (count <= 0) break;
      const proc = lab.sup.spawn(`idle-clients-${i}`, Deno.execPath(), [
        "run",
        "-A",
        "scripts/bench/idle_clients.ts",
        "--port",
        String(bridge.port),
        "--ca",
        lab.pki.caPath,
        "--count",
        String(count),
        "--hold",
        String(Math.ceil(o.load.seconds + 150)),
      ], { cwd: lab.options.repo, stdout: "piped" });
      holders.push(proc);
      reports.push(holderReady(proc));
    }
    const openTimeoutMs = o.openTimeoutMs ?? 120_000;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`idle connections not open after ${openTimeoutMs} ms`)),
        openTimeoutMs,
      );
    });
    const ready = await Promise.race([Promise.all(reports), timeout]);
    clearTimeout(timer);
    const openSeconds = (performance.now() - t0) / 1000;
    const errors: Record<string, number> = {};
    for (const r of ready) {
      for (const [k, v] of Object.entries(r.errors)) errors[k] = (errors[k] ?? 0) + v;
    }
    const open = ready.reduce((a, r) => a + r.open, 0);
    const failed = ready.reduce((a, r) => a + r.failed, 0);
    const idle0 = cpuSeconds(bridge.proc.pid);
    await sleep(2000);
    const idleCpuPerS = (cpuSeconds(bridge.proc.pid) - idle0) / 2;
    const rssWith = memoryKiB(bridge.proc.pid).rss / 1024;
    const fds = openFds(bridge.proc.pid);
    o.log?.(`scale: ${open} open (${failed} failed), bridge RSS ${rssWith.toFixed(0)} MB; load`);
    const load = await runDnsperf(lab.sup, "scale-dnsperf", { ...o.load, port: bridge.port });
    const mem = memoryKiB(bridge.proc.pid);
    const fdsAfter = openFds(bridge.proc.pid);
    return {
      requested: o.connections,
      open,
      failed,
      errors,
      openSeconds,
      idleCpuPerS,
      rssBeforeMb: rssBefore,
      rssWithConnsMb: rssWith,
      rssAfterLoadMb: mem.rss / 1024,
      peakRssMb: mem.hwm / 1024,
      fds: fds - fdsBefore,
      fdsAfterLoad: fdsAfter - fdsBefore,
      qps: load.qps,
      p50Ms: load.p50Ms,
      p99Ms: load.p99Ms,
      lost: load.lost,
      seconds: o.load.seconds,
      command: load.command,
    };
  } finally {
    clearTimeout(timer);
    await Promise.all(holders.map((p) => p.stop(1_000)));
    await bridge.proc.stop();
  }
}

/**
 * The scale mode when it was asked for and fits before the deadline, keeping `laterS` for the
 * runs after it; undefined when it did not run or failed (the notes say which).
 */
export async function runScaleMode(
  ctx: RunContext,
  laterS: number,
): Promise<ScaleResult | undefined> {
  const { o, log } = ctx;
  if (!runsScale(o)) return undefined;
  const what = `connection scale (${o.idleConns} idle connections)`;
  if (!fits(ctx, what, scaleEstimateS(o), laterS)) return undefined;
  try {
    const scale = await connectionScale(ctx.lab, {
      connections: o.idleConns,
      processes: o.idleProcs,
      load: { ...ctx.loads.sat, seconds: o.scaleDuration },
      log,
    });
    if (scale.command) ctx.commands.push(scale.command);
    return scale;
  } catch (e) {
    log(`scale run failed: ${(e as Error).message}`);
    ctx.notes.push(`The connection-scale run failed: ${(e as Error).message}`);
    return undefined;
  }
}
