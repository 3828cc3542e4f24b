/**
 * The idle-memory run: one fresh bridge per DoT listener, idle connections opened in steps
 * (e.g. 0, 1 000, 10 000) from `idle_clients.ts` child processes, and at each step the whole
 * process's RSS, where it lives (`/proc/PID/smaps`), and the JavaScript heap (over the
 * inspector: `Deno.memoryUsage()` and a heap snapshot summed by constructor).
 *
 * @module
 */
import { readHeap } from "./heap.ts";
import type { Lab } from "./lab.ts";
import { freePort, memoryKiB, type Proc, sleep } from "./procs.ts";
import { holderReady } from "./scale.ts";

/** One listener's setting for {@linkcode idleMemory}. */
export interface IdleListener {
  /** Row label, e.g. `default (node:tls)`. */
  label: string;
  /** Bridge options selecting it. */
  args: string[];
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
  /** JS heap in use and ArrayBuffer (external) memory, MiB, after a full GC. */
  heapUsedMb?: number;
  externalMb?: number;
  /** The heap snapshot's largest classes: [name, count, KiB]. */
  top?: [string, number, number][];
}

/** One listener's whole run. */
export interface IdleResult {
  label: string;
  args: string[];
  steps: IdleStep[];
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

/**
 * Starts a bridge with each listener, opens idle connections up to each count in turn and
 * measures; with `heap`, also reads the JS heap at each step (the inspector is on).
 */
export async function idleMemory(
  lab: Lab,
  listeners: IdleListener[],
  counts: number[],
  o: { heap: boolean; processes: number; log?: (m: string) => void },
): Promise<IdleResult[]> {
  const results: IdleResult[] = [];
  const most = Math.max(...counts);
  for (const listener of listeners) {
    const inspectPort = o.heap ? await freePort() : 0;
    const bridge = await lab.startBridge(
      [
        ...lab.features.cacheOff,
        ...lab.features.unlimitedConnections,
        "--idle-timeout",
        "10m",
        "--max-connections",
        String(most + 1000),
        ...listener.args,
      ],
      o.heap ? [`--inspect=127.0.0.1:${inspectPort}`] : [],
    );
    const holders: Proc[] = [];
    const steps: IdleStep[] = [];
    try {
      let open = 0;
      let asked = 0;
      for (const count of [...counts].sort((a, b) => a - b)) {
        const more = count - asked;
        if (more > 0) {
          o.log?.(`idle memory (${listener.label}): opening ${more} more connections`);
          const per = Math.ceil(more / o.processes);
          const reports = [];
          for (let i = 0; i * per < more; i++) {
            const n = Math.min(per, more - i * per);
            const proc = lab.sup.spawn(`idle-${holders.length}`, Deno.execPath(), [
              "run",
              "-A",
              "scripts/bench/idle_clients.ts",
              "--port",
              String(bridge.port),
              "--ca",
              lab.pki.caPath,
              "--count",
              String(n),
              "--hold",
              "600",
            ], { cwd: lab.options.repo, stdout: "piped" });
            holders.push(proc);
            reports.push(holderReady(proc));
          }
          for (const r of await Promise.all(reports)) open += r.open;
          asked = count;
        }
        await sleep(1500);
        const step: IdleStep = {
          connections: count,
          open,
          rssMb: memoryKiB(bridge.proc.pid).rss / 1024,
          smaps: smapsSummary(bridge.proc.pid),
        };
        if (o.heap) {
          const heap = await readHeap(inspectPort);
          step.heapUsedMb = heap.usage.heapUsed / 2 ** 20;
          step.externalMb = heap.usage.external / 2 ** 20;
          step.top = heap.classes.slice(0, 25).map((c) => [c.name, c.count, c.selfBytes / 1024]);
        }
        steps.push(step);
        o.log?.(
          `idle memory (${listener.label}): ${open} open, RSS ${step.rssMb.toFixed(1)} MB`,
        );
      }
    } finally {
      await Promise.all(holders.map((p) => p.stop(1_000)));
      await bridge.proc.stop();
    }
    results.push({ label: listener.label, args: listener.args, steps });
  }
  return results;
}
