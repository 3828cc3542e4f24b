/**
 * A real `knotd` (Knot DNS, Debian package `knot`) for tests: authoritative for the zones given,
 * UDP and TCP on one ephemeral loopback port, its files in a temporary directory, stopped by its
 * own PID. In CI (CI=true) a missing binary is a failure, elsewhere the tests that need it skip.
 *
 * @module
 */
import { freePort } from "./ports.ts";

/** Whether `knotd` runs here. */
export const HAVE_KNOT = (() => {
  try {
    return new Deno.Command("knotd", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** A running knotd. */
export interface TestKnot {
  readonly port: number;
  readonly pid: number;
  /** SIGTERM, then SIGKILL if it lingers; removes its directory. */
  close(): Promise<void>;
}

/** The configuration: one UDP and one TCP worker on 127.0.0.1@`port`, the zones from `dir`. */
function knotConf(dir: string, port: number, zones: readonly string[]): string {
  return `server:
  rundir: "${dir}/run"
  listen: 127.0.0.1@${port}
  udp-workers: 1
  tcp-workers: 1
  background-workers: 1
log:
  - target: stderr
    any: warning
database:
  storage: "${dir}/db"
template:
  - id: default
    storage: "${dir}"
    file: "%s.zone"
    semantic-checks: off
zone:
${zones.map((z) => `  - domain: ${z}\n`).join("")}`;
}

/** One UDP query for the first zone's SOA: whether knotd answers yet. */
async function answers(port: number, zone: string): Promise<boolean> {
  const labels = zone.replace(/\.$/, "").split(".");
  const bytes = [0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
  for (const l of labels) bytes.push(l.length, ...new TextEncoder().encode(l));
  bytes.push(0, 0, 6, 0, 1);
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  try {
    await socket.send(Uint8Array.from(bytes), { transport: "udp", hostname: "127.0.0.1", port });
    const timer = setTimeout(() => socket.close(), 300);
    try {
      const [data] = await socket.receive();
      return data.length > 12 && (data[3] & 0x0f) === 0;
    } finally {
      clearTimeout(timer);
    }
  } catch {
    return false;
  } finally {
    try {
      socket.close();
    } catch { /* closed by the timer */ }
  }
}

/**
 * Starts knotd, authoritative for `zones` (zone name → zone file text, names with the final
 * dot), and waits until it answers.
 *
 * @throws if knotd is missing or does not answer within 10 s
 */
export async function startKnot(zones: Readonly<Record<string, string>>): Promise<TestKnot> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-knot-" });
  await Deno.mkdir(`${dir}/run`);
  await Deno.mkdir(`${dir}/db`);
  const names = Object.keys(zones);
  for (const [name, text] of Object.entries(zones)) {
    await Deno.writeTextFile(`${dir}/${name}zone`, text);
  }
  // knotd binds UDP and TCP to the port: one that is free for TCP now, checked for UDP below.
  const port = freePort();
  await Deno.writeTextFile(`${dir}/knot.conf`, knotConf(dir, port, names));
  const child = new Deno.Command("knotd", {
    args: ["-c", `${dir}/knot.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stderr = new Response(child.stderr).text();
  const close = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!exited) child.kill("SIGKILL");
      }, 3_000);
      await status;
      clearTimeout(timer);
    }
    await stderr.catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + 10_000;
  while (!(await answers(port, names[0]))) {
    if (exited || Date.now() > deadline) {
      await close();
      throw new Error(`knotd did not answer on 127.0.0.1:${port}: ${(await stderr).trim()}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return { port, pid: child.pid, close };
}
