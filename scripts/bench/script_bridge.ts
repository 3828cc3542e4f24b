/**
 * The bridge as the measurement scripts beside the bench start it (`bench_redis.ts`,
 * `bench_doq.ts`, `cache_memory.ts`): one process of a checkout with the shipped runtime flags,
 * DoT on a free port, the DoH face off, the bench certificate and one upstream, warnings only.
 *
 * @module
 */
import { SHIPPED_RUNTIME_FLAGS } from "./lab.ts";
import type { BenchPki } from "./pki.ts";
import { freePort, type Proc, REPO_DIR, type Supervisor, waitForTcp } from "./procs.ts";

/** What {@linkcode spawnScriptBridge} starts. */
export interface ScriptBridgeOptions {
  /** The certificate the DoT face serves. */
  readonly pki: Pick<BenchPki, "certPath" | "keyPath">;
  /** The upstream URL and the file holding its CA. */
  readonly upstream: string;
  readonly upstreamCa: string;
  /** More options for the bridge. */
  readonly extra?: readonly string[];
  /** The checkout whose `src/deno/main.ts` runs. Default: this one. */
  readonly repo?: string;
  /** More `deno run` flags (before the script), e.g. `--cpu-prof`. */
  readonly runtimeFlags?: readonly string[];
}

/**
 * Starts a bridge under `sup` and resolves once its DoT port accepts connections.
 *
 * @example
 * ```ts
 * const { port } = await spawnScriptBridge(sup, "bridge", { pki, upstream: url, upstreamCa });
 * ```
 */
export async function spawnScriptBridge(
  sup: Supervisor,
  name: string,
  o: ScriptBridgeOptions,
): Promise<{ proc: Proc; port: number }> {
  const port = await freePort();
  const proc = sup.spawn(name, Deno.execPath(), [
    "run",
    ...SHIPPED_RUNTIME_FLAGS,
    ...(o.runtimeFlags ?? []),
    "-A",
    "src/deno/main.ts",
    ...["--listen", `127.0.0.1:${port}`, "--http-listen", "off"],
    ...["--cert", o.pki.certPath, "--key", o.pki.keyPath],
    ...["--upstream", o.upstream, "--upstream-ca", o.upstreamCa],
    ...["--log-level", "warn"],
    ...(o.extra ?? []),
  ], { cwd: o.repo ?? REPO_DIR });
  await waitForTcp(port, 30_000, proc);
  return { proc, port };
}
