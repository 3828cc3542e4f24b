/**
 * A real HAProxy for tests (Debian package `haproxy`): started with a config the test writes,
 * in the foreground (`-db`), and stopped by its own PID. In CI (CI=true) a missing binary is a
 * failure, elsewhere the tests that need it skip.
 *
 * @module
 */
import net from "node:net";

/** Whether `haproxy` runs here. */
export const HAVE_HAPROXY = (() => {
  try {
    return new Deno.Command("haproxy", { args: ["-v"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/** Throws (CI) when haproxy is missing. */
export function requireHaproxy(): void {
  if (!HAVE_HAPROXY && Deno.env.get("CI") === "true") {
    throw new Error("haproxy is not installed (package haproxy); CI=true requires it");
  }
}

/** A running HAProxy. */
export interface TestHaproxy {
  /** Kills it (SIGKILL) and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts HAProxy with `config` (written to `path`) and waits until every port in `ports`
 * accepts. The readiness probes come from 127.0.0.250, an address no test uses, and send
 * nothing: in TCP mode HAProxy passes each on to its backend, where it may hold a slot until
 * that backend's handshake deadline.
 *
 * @throws if it does not accept within 5 s (the message carries HAProxy's output)
 */
export async function startHaproxy(
  path: string,
  config: string,
  ports: readonly number[],
): Promise<TestHaproxy> {
  await Deno.writeTextFile(path, config);
  const child = new Deno.Command("haproxy", {
    args: ["-f", path, "-db"],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const output: string[] = [];
  child.stderr.pipeThrough(new TextDecoderStream())
    .pipeTo(new WritableStream({ write: (s) => void output.push(s) }))
    .catch(() => {});
  const stop = async () => {
    try {
      Deno.kill(child.pid, "SIGKILL");
    } catch { /* gone */ }
    await child.status;
  };
  const deadline = Date.now() + 5_000;
  for (const port of ports) {
    for (;;) {
      try {
        await new Promise<void>((resolve, reject) => {
          const probe = net.connect({ host: "127.0.0.1", port, localAddress: "127.0.0.250" });
          probe.on("connect", () => {
            probe.destroy();
            resolve();
          });
          probe.on("error", reject);
        });
        break;
      } catch {
        if (Date.now() > deadline) {
          await stop();
          throw new Error(`haproxy did not start: ${output.join("")}`);
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }
  return { stop };
}
