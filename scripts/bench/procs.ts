/**
 * Child processes for the benchmark: every program runs in its own session (`setsid`), so it
 * can be stopped as a process group, with its output in files; plus the `/proc` readings the
 * figures come from (CPU seconds, peak RSS, machine-wide CPU) and free loopback ports.
 *
 * Linux only (it reads `/proc`).
 *
 * @module
 */
import { createSocket } from "node:dgram";

/** How to start one program under {@linkcode Supervisor.spawn}. */
export interface SpawnOptions {
  /** Working directory. Default: the harness's. */
  cwd?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Where stdout goes: a file (default, path derived from the name) or a pipe the caller reads. */
  stdout?: "file" | "piped";
  /** Raise the open-files limit to this (capped at the hard limit). Default: the hard limit. */
  nofile?: number;
}

/** A running (or finished) child started by {@linkcode Supervisor.spawn}. */
export interface Proc {
  readonly name: string;
  /** Process id; also the process-group id (the program leads its own session). */
  readonly pid: number;
  /** Path of the file holding stdout (when not piped). */
  readonly stdoutPath: string;
  /** Path of the file holding stderr. */
  readonly stderrPath: string;
  /** The piped stdout, when `stdout: "piped"` was asked for. */
  readonly stdout: ReadableStream<Uint8Array> | null;
  /** Resolves when the process has exited. */
  readonly status: Promise<Deno.CommandStatus>;
  /** True once the process has exited. */
  readonly exited: boolean;
  /** SIGTERM to the group, SIGKILL after `graceMs`; resolves when it has exited. */
  stop(graceMs?: number): Promise<void>;
}

const WRAPPER = [
  // $1 = nofile (0: hard limit), $2 = stdout file ("" = inherit the pipe), $3 = stderr file,
  // then the program and its arguments. `exec` keeps the pid, so pid == pgid == the program.
  'n="$1"; out="$2"; err="$3"; shift 3',
  'if [ "$n" = 0 ]; then n=$(ulimit -Hn); fi',
  'ulimit -n "$n" 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null',
  'if [ -n "$out" ]; then exec "$@" >"$out" 2>"$err"; else exec "$@" 2>"$err"; fi',
].join("\n");

/**
 * Starts programs in their own process groups and stops them all at the end, on error, or on
 * SIGINT/SIGTERM of the harness.
 *
 * @example
 * ```ts
 * const sup = new Supervisor("/tmp/run");
 * const knot = sup.spawn("knotd", "knotd", ["-c", "knot.conf"]);
 * try { ... } finally { await sup.stopAll(); }
 * ```
 */
export class Supervisor {
  readonly #dir: string;
  readonly #procs = new Set<Proc>();
  #serial = 0;
  #stopping = false;

  /** @param logDir where each child's stdout/stderr files go */
  constructor(logDir: string) {
    this.#dir = logDir;
  }

  /** Starts `cmd args...` in a new session, output to `<logDir>/<name>.{out,err}`. */
  spawn(name: string, cmd: string, args: string[], options: SpawnOptions = {}): Proc {
    const base = `${this.#dir}/${String(++this.#serial).padStart(2, "0")}-${name}`;
    const stdoutPath = `${base}.out`;
    const stderrPath = `${base}.err`;
    const piped = options.stdout === "piped";
    const child = new Deno.Command("setsid", {
      args: [
        "bash",
        "-c",
        WRAPPER,
        "bench-wrapper",
        String(options.nofile ?? 0),
        piped ? "" : stdoutPath,
        stderrPath,
        cmd,
        ...args,
      ],
      cwd: options.cwd,
      env: options.env,
      stdin: "null",
      stdout: piped ? "piped" : "null",
      stderr: "null",
    }).spawn();
    let exited = false;
    const status = child.status.then((s) => {
      exited = true;
      this.#procs.delete(proc);
      return s;
    });
    const proc: Proc = {
      name,
      pid: child.pid,
      stdoutPath,
      stderrPath,
      stdout: piped ? child.stdout : null,
      status,
      get exited() {
        return exited;
      },
      stop: async (graceMs = 3_000) => {
        if (exited) return;
        signalGroup(child.pid, "SIGTERM");
        if (await settlesWithin(status, graceMs)) return;
        signalGroup(child.pid, "SIGKILL");
        await settlesWithin(status, 2_000);
      },
    };
    this.#procs.add(proc);
    return proc;
  }

  /** True once {@linkcode stopAll} has begun: children ending now are not failures. */
  get stopping(): boolean {
    return this.#stopping;
  }

  /** Stops every child still running (SIGTERM, then SIGKILL after `graceMs`). */
  async stopAll(graceMs = 3_000): Promise<void> {
    this.#stopping = true;
    await Promise.all([...this.#procs].map((p) => p.stop(graceMs)));
  }

  /** Synchronous last resort (process exit paths): SIGKILL to every group still running. */
  killAllNow(): void {
    for (const p of this.#procs) signalGroup(p.pid, "SIGKILL");
  }
}

function signalGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // already gone
  }
}

async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p.then(() => true, () => true),
      new Promise<boolean>((r) => timer = setTimeout(() => r(false), ms)),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Waits for `status` for at most `ms`; true when the process has exited. */
export function exitsWithin(proc: Proc, ms: number): Promise<boolean> {
  return settlesWithin(proc.status, ms);
}

// ---------------------------------------------------------------------------------------------
// /proc readings

const CLOCK_TICKS = 100; // sysconf(_SC_CLK_TCK); `getconf CLK_TCK` says 100 on Linux x86-64

function statFields(path: string): string[] {
  const text = Deno.readTextFileSync(path);
  // The command name (field 2) is in parentheses and may hold spaces: split after it.
  return text.slice(text.lastIndexOf(")") + 2).trim().split(/\s+/);
}

/** CPU time (user + system, all threads) a live process has used, in seconds. */
export function cpuSeconds(pid: number): number {
  const f = statFields(`/proc/${pid}/stat`); // f[0] is field 3 (state)
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS; // utime, stime
}

/**
 * CPU time of this process's reaped children (cutime + cstime), in seconds. A short-lived load
 * generator's own CPU shows up here once it has exited and been waited for.
 */
export function childrenCpuSeconds(): number {
  const f = statFields("/proc/self/stat");
  return (Number(f[13]) + Number(f[14])) / CLOCK_TICKS;
}

/** Current and peak resident set size of a process, in KiB. */
export function memoryKiB(pid: number): { rss: number; hwm: number } {
  const text = Deno.readTextFileSync(`/proc/${pid}/status`);
  const field = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+)`, "m").exec(text)?.[1]);
  return { rss: field("VmRSS"), hwm: field("VmHWM") };
}

/** Resets a process's peak RSS (VmHWM) to its current RSS. False when not permitted. */
export function resetPeakRss(pid: number): boolean {
  try {
    Deno.writeTextFileSync(`/proc/${pid}/clear_refs`, "5");
    return true;
  } catch {
    return false;
  }
}

/** Number of open file descriptors of a process (sockets included). */
export function openFds(pid: number): number {
  let n = 0;
  for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) n++;
  return n;
}

/** Machine-wide CPU counters from /proc/stat, in seconds summed over all cores. */
export function machineCpu(): { busy: number; total: number } {
  const line = Deno.readTextFileSync("/proc/stat").split("\n")[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal guest guest_nice; guests are inside user.
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0);
  const idle = v[3] + v[4];
  return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
}

// ---------------------------------------------------------------------------------------------
// Ports

/** A loopback port that is free for TCP (and for UDP too when `udp` is set) right now. */
export async function freePort(udp = false): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (listener.addr as Deno.NetAddr).port;
    listener.close();
    if (!udp || await udpFree(port)) return port;
  }
  throw new Error("no free loopback port found for TCP and UDP");
}

function udpFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createSocket("udp4");
    socket.once("error", () => {
      socket.close();
      resolve(false);
    });
    socket.bind(port, "127.0.0.1", () => socket.close(() => resolve(true)));
  });
}

/** Waits until something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForTcp(port: number, timeoutMs: number, proc?: Proc): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${proc.name} exited early; see ${proc.stderrPath}`);
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      await sleep(100);
    }
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

/** Runs a short command to completion and returns its stdout+stderr (for versions, help). */
export async function capture(cmd: string, args: string[], cwd?: string): Promise<string> {
  try {
    const out = await new Deno.Command(cmd, { args, cwd, stdin: "null" }).output();
    const dec = new TextDecoder();
    return dec.decode(out.stdout) + dec.decode(out.stderr);
  } catch (e) {
    return `(${cmd}: ${(e as Error).message})`;
  }
}

/** The repository root, where `deno.json` and `src/deno/main.ts` are. */
export const REPO_DIR = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");

/** The number after `--name` in the script's arguments, or `fallback`. */
export function numberArg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
