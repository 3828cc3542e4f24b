/**
 * A real `redis-server` for tests: on an ephemeral loopback port, no persistence, stopped (or
 * paused, or killed) by its own PID. Debian package `redis-server`; `.ci/run` installs it. In CI
 * (CI=true) a missing binary is a failure, elsewhere the tests that need it skip.
 *
 * @module
 */
import { freePort } from "./ports.ts";

/** Whether `redis-server` runs here. */
/** redis-server's arguments for a throwaway instance: loopback only, nothing written to disk. */
export function redisServerArgs(port: number): string[] {
  return ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"];
}

export const HAVE_REDIS = (() => {
  try {
    return new Deno.Command("redis-server", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** Throws (CI) when redis-server is missing. */
export function requireRedis(): void {
  if (!HAVE_REDIS && Deno.env.get("CI") === "true") {
    throw new Error("redis-server is not installed (package redis-server); CI=true requires it");
  }
}

/** TLS files for a second, TLS port (`rediss://`). */
export interface TestRedisTls {
  certFile: string;
  keyFile: string;
  caFile: string;
}

/** A running redis-server. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** `rediss://localhost:PORT/0`, when started with TLS files. */
  readonly tlsUrl?: string;
  /** Its current PID. */
  readonly pid: number;
  /** SIGKILL; resolves when it has exited. */
  kill(): Promise<void>;
  /** Starts it again on the same port (after {@linkcode kill}). */
  restart(): Promise<void>;
  /** SIGSTOP: the socket stays open, nothing answers. */
  pause(): void;
  /** SIGCONT. */
  resume(): void;
  /** Runs one command through `redis-cli`-less RESP over TCP; the raw reply. */
  command(...args: (string | Uint8Array)[]): Promise<Uint8Array>;
}

/** Resolves once the server answers PING on `port`. */
async function waitReady(port: number, child: Deno.ChildProcess, status: Promise<unknown>) {
  let exited = false;
  status.then(() => exited = true);
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error("redis-server exited at start");
    try {
      const reply = await resp(port, ["PING"]);
      if (new TextDecoder().decode(reply).startsWith("+PONG")) return;
    } catch {
      // not yet listening
    }
    await new Promise((r) => setTimeout(r, 30));
  }
  child.kill("SIGKILL");
  throw new Error("redis-server did not start within 10 s");
}

/** Sends one RESP command and returns the first read of the reply. */
async function resp(port: number, args: (string | Uint8Array)[]): Promise<Uint8Array> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [enc.encode(`*${args.length}\r\n`)];
  for (const a of args) {
    const b = typeof a === "string" ? enc.encode(a) : a;
    parts.push(enc.encode(`$${b.length}\r\n`), b, enc.encode("\r\n"));
  }
  const total = parts.reduce((n, p) => n + p.length, 0);
  const msg = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    msg.set(p, at);
    at += p.length;
  }
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(msg);
    const buf = new Uint8Array(65536);
    const n = await Promise.race([
      conn.read(buf),
      new Promise<null>((_, reject) => setTimeout(() => reject(new Error("redis timeout")), 2_000)),
    ]);
    return buf.slice(0, n ?? 0);
  } finally {
    conn.close();
  }
}

/**
 * Starts redis-server on a free loopback port (and a TLS one too, given `tls`), with `extraArgs`
 * (configuration directives as arguments: `["--user", "name", "on", ">pw", ...]`).
 */
export async function startRedis(
  tls?: TestRedisTls,
  extraArgs: readonly string[] = [],
): Promise<TestRedis> {
  const port = freePort();
  const tlsPort = tls ? freePort() : undefined;
  const tlsArgs = tls
    ? [
      "--tls-port",
      String(tlsPort),
      "--tls-cert-file",
      tls.certFile,
      "--tls-key-file",
      tls.keyFile,
      "--tls-ca-cert-file",
      tls.caFile,
      "--tls-auth-clients",
      "no",
    ]
    : [];
  let child: Deno.ChildProcess;
  let status: Promise<Deno.CommandStatus>;
  const spawn = async () => {
    child = new Deno.Command("redis-server", {
      args: [...redisServerArgs(port), ...tlsArgs, ...extraArgs],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    status = child.status;
    await waitReady(port, child, status);
  };
  await spawn();
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    tlsUrl: tls ? `rediss://localhost:${tlsPort}/0` : undefined,
    get pid() {
      return child.pid;
    },
    async kill() {
      try {
        child.kill("SIGCONT");
        child.kill("SIGKILL");
      } catch {
        // already gone
      }
      await status;
    },
    restart: spawn,
    pause: () => child.kill("SIGSTOP"),
    resume: () => child.kill("SIGCONT"),
    command: (...args) => resp(port, args),
  };
}
