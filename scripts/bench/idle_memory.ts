/**
 * The idle mode: one fresh bridge per DoT listener, idle connections opened in steps
 * (e.g. 0, 1 000, 10 000) from `idle_clients.ts` child processes, and at each step the whole
 * process's RSS and where it lives (`/proc/PID/smaps`); then a second bridge with its inspector
 * on for the JavaScript heap per connection (`Deno.memoryUsage()` and heap snapshots summed by
 * constructor, with and without connections).
 *
 * @module
 */
import { readHeap } from "./heap.ts";
import type { Lab, Target } from "./lab.ts";
import { idleEstimateS, runsIdle } from "./options.ts";
import { freePort, memoryKiB, type Proc, sleep, type Supervisor } from "./procs.ts";
import { bridgeName, fits, type RunContext } from "./run_context.ts";
import { holderReady } from "./scale.ts";

/** One target of {@linkcode idleMemory}: a bridge with one of its DoT listeners. */
export interface IdleListener {
  /** Row label, e.g. `dotbridge, default listener (node:tls)`. */
  label: string;
  /**
   * Starts the target ready to hold `most` idle connections (idle timeout and caps above it),
   * with its inspector on `inspectPort` when given.
   */
  start: (most: number, inspectPort?: number) => Promise<Target>;
  /** Also read the JS heap per connection, from a second target with its inspector on. */
  heap: boolean;
}

/** Bridge options for holding `most` idle connections: cache off, 10 min idle, no caps. */
export function idleBridgeArgs(lab: Lab, most: number): string[] {
  return [
    ...lab.features.cacheOff,
    ...lab.features.unlimitedConnections,
    "--idle-timeout",
    "10m",
    "--max-connections",
    String(most + 1000),
  ];
}

/** Where a process's resident memory lives, MiB, from `/proc/PID/smaps`. */
export interface SmapsSummary {
  /** Anonymous mappings and the brk heap (malloc, V8's heap, Rust's buffers). */
  anon: number;
  /** The deno binary and shared libraries. */
  file: number;
  /** Thread stacks. */
  stack: number;
}

/** One step of {@linkcode idleMemory}. */
export interface IdleStep {
  connections: number;
  /** Of them, opened successfully (the rest failed). */
  open: number;
  rssMb: number;
  smaps: SmapsSummary;
}

/** Where one idle connection's JS memory goes, from a separate run with the inspector on. */
export interface IdleHeap {
  /** Connections held for it (against none). */
  connections: number;
  /** JS heap in use per connection, after a full GC, bytes. */
  heapBytes: number;
  /** ArrayBuffer (external) memory per connection, bytes. */
  externalBytes: number;
  /** The heap snapshot's classes that grew, per connection: [name, objects, bytes]. */
  top: [string, number, number][];
}

/** One target's whole run. */
export interface IdleResult {
  label: string;
  steps: IdleStep[];
  heap?: IdleHeap;
}

/** Sums `/proc/PID/smaps` Rss by kind of mapping. */
export function smapsSummary(pid: number): SmapsSummary {
  const text = Deno.readTextFileSync(`/proc/${pid}/smaps`);
  const out = { anon: 0, file: 0, stack: 0 };
  let kind: keyof SmapsSummary = "anon";
  for (const line of text.split("\n")) {
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      const path = line.split(/\s+/)[5] ?? "";
      kind = path.startsWith("/") ? "file" : path.startsWith("[stack") ? "stack" : "anon";
    } else if (line.startsWith("Rss:")) {
      out[kind] += Number(line.split(/\s+/)[1]) / 1024;
    }
  }
  return out;
}

/** Where {@linkcode openIdle} starts its holder processes and what they trust. */
export interface IdleHolders {
  sup: Supervisor;
  /** The CA of the server's certificate. */
  caPath: string;
  /** The repository root (`scripts/bench/idle_clients.ts` is run from there). */
  repo: string;
  /** Every holder started, for the caller to stop. */
  procs: Proc[];
}

/**
 * Opens `count` idle connections to `port` from `processes` `idle_clients.ts` holders (each
 * connection: a full handshake, one query and its answer); resolves with how many opened.
 */
export async function openIdle(
  h: IdleHolders,
  port: number,
  count: number,
  processes: number,
): Promise<number> {
  const per = Math.ceil(count / processes);
  const reports = [];
  for (let i = 0; i * per < count; i++) {
    const proc = h.sup.spawn(`idle-${h.procs.length}`, Deno.execPath(), [
      "run",
      "-A",
      "scripts/bench/idle_clients.ts",
      "--port",
      String(port),
      "--ca",
      h.caPath,
      "--count",
      String(Math.min(per, count - i * per)),
      "--hold",
      "600",
    ], { cwd: h.repo, stdout: "piped" });
    h.procs.push(proc);
    reports.push(holderReady(proc));
  }
  return (await Promise.all(reports)).reduce((n, r) => n + r.open, 0);
}

/**
 * Starts each target, opens idle connections up to each count in turn and reads the RSS; then,
 * for targets with `heap`, a second fresh target with its inspector on, heap snapshots with none
 * and with `heapConnections` (kept apart because a snapshot leaves the process's RSS inflated).
 */
export async function idleMemory(
  lab: Lab,
  listeners: IdleListener[],
  counts: number[],
  o: { processes: number; heapConnections: number; log?: (m: string) => void },
): Promise<IdleResult[]> {
  const results: IdleResult[] = [];
  const most = Math.max(...counts, o.heapConnections);
  for (const listener of listeners) {
    const steps: IdleStep[] = [];
    await withTarget(listener.start(most), async (target, holders) => {
      let open = 0;
      let asked = 0;
      for (const count of [...counts].sort((a, b) => a - b)) {
        if (count > asked) {
          o.log?.(`idle memory (${listener.label}): opening ${count - asked} more connections`);
          open += await openIdle(holdersOf(lab, holders), target.port, count - asked, o.processes);
          asked = count;
        }
        await sleep(1500);
        const rssMb = memoryKiB(target.proc.pid).rss / 1024;
        steps.push({ connections: count, open, rssMb, smaps: smapsSummary(target.proc.pid) });
        o.log?.(`idle memory (${listener.label}): ${open} open, RSS ${rssMb.toFixed(1)} MB`);
      }
    });
    let heap: IdleHeap | undefined;
    if (listener.heap && o.heapConnections > 0) {
      const inspectPort = await freePort();
      await withTarget(listener.start(most, inspectPort), async (target, holders) => {
        await sleep(1000);
        const before = await readHeap(inspectPort);
        o.log?.(`idle memory (${listener.label}): heap snapshots, ${o.heapConnections} conns`);
        const n = await openIdle(
          holdersOf(lab, holders),
          target.port,
          o.heapConnections,
          o.processes,
        );
        await sleep(1000);
        const after = await readHeap(inspectPort);
        const was = new Map(before.classes.map((c) => [c.name, c]));
        heap = {
          connections: n,
          heapBytes: (after.usage.heapUsed - before.usage.heapUsed) / n,
          externalBytes: (after.usage.external - before.usage.external) / n,
          top: after.classes
            .map((c): [string, number, number] => [
              c.name,
              (c.count - (was.get(c.name)?.count ?? 0)) / n,
              (c.selfBytes - (was.get(c.name)?.selfBytes ?? 0)) / n,
            ])
            .sort((a, b) => b[2] - a[2])
            .slice(0, 25),
        };
      });
    }
    results.push({ label: listener.label, steps, heap });
  }
  return results;
}

function holdersOf(lab: Lab, procs: Proc[]): IdleHolders {
  return { sup: lab.sup, caPath: lab.pki.caPath, repo: lab.options.repo, procs };
}

/** Runs `fn` with a started target and a list for holder processes; stops them all after. */
async function withTarget(
  started: Promise<Target>,
  fn: (target: Target, holders: Proc[]) => Promise<void>,
): Promise<void> {
  const target = await started;
  const holders: Proc[] = [];
  try {
    await fn(target, holders);
  } finally {
    await Promise.all(holders.map((p) => p.stop(1_000)));
    await target.proc.stop();
  }
}

/**
 * The idle mode, on the bridge's two DoT listeners, when it was asked for and fits before the
 * deadline, keeping `laterS` for the runs after it; undefined when it did not run or failed
 * (the notes say which).
 */
export async function runIdleMode(
  ctx: RunContext,
  laterS: number,
): Promise<IdleResult[] | undefined> {
  const { o, lab, log } = ctx;
  if (!runsIdle(o)) return undefined;
  if (!fits(ctx, `idle memory (${o.idleConns} idle connections)`, idleEstimateS(o), laterS)) {
    return undefined;
  }
  const counts = [0, Math.round(o.idleConns / 10), o.idleConns];
  const listener = (label: string, args: string[]): IdleListener => ({
    label,
    heap: true,
    start: (most: number, inspectPort?: number) =>
      lab.startBridge(
        [...idleBridgeArgs(lab, most), ...args],
        inspectPort === undefined ? [] : [`--inspect=127.0.0.1:${inspectPort}`],
      ),
  });
  try {
    return await idleMemory(
      lab,
      [
        listener(`${bridgeName(1)}, default DoT listener (node:tls)`, []),
        listener(`${bridgeName(1)}, --dot-server native`, ["--dot-server", "native"]),
      ],
      counts,
      { processes: o.idleProcs, heapConnections: Math.min(2000, o.idleConns), log },
    );
  } catch (e) {
    log(`idle-memory run failed: ${(e as Error).message}`);
    ctx.notes.push(`The idle-memory run failed: ${(e as Error).message}`);
    return undefined;
  }
}
