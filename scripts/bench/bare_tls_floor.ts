/**
 * What one idle TLS connection costs on Deno's own TLS servers, with nothing of the bridge's:
 * starts `bare_tls_server.ts` for each kind, opens N idle connections to it from
 * `idle_clients.ts` processes (each: full handshake, one query and its answer, then idle), and
 * prints the server's RSS before and after, and per connection. The memory breakdown in
 * docs/benchmarks.md#what-bounds-the-rest compares the bridge's listeners against these floors.
 *
 * Usage: `deno run -A scripts/bench/bare_tls_floor.ts [--count 5000] [--kinds node,native]`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { writeBenchPki } from "./pki.ts";
import { freePort, memoryKiB, REPO_DIR, sleep, Supervisor, waitForTcp } from "./procs.ts";
import { openIdle } from "./idle_memory.ts";

const { values } = parseArgs({
  options: {
    count: { type: "string", default: "5000" },
    kinds: { type: "string", default: "node,native" },
    procs: { type: "string", default: "4" },
  },
});
const count = Number(values.count);
const procs = Number(values.procs);
const work = await Deno.makeTempDir({ prefix: "dotbridge-floor-" });
Deno.mkdirSync(`${work}/logs`);
const sup = new Supervisor(`${work}/logs`);
try {
  const pki = await writeBenchPki(work);
  for (const kind of values.kinds.split(",")) {
    const port = await freePort();
    const server = sup.spawn(`bare-${kind}`, Deno.execPath(), [
      "run",
      "-A",
      `${REPO_DIR}/scripts/bench/bare_tls_server.ts`,
      kind,
      String(port),
      pki.certPath,
      pki.keyPath,
    ]);
    await waitForTcp(port, 10_000, server);
    await sleep(500);
    const before = memoryKiB(server.pid).rss;
    const holders = { sup, caPath: pki.caPath, repo: REPO_DIR, procs: [] };
    const open = await openIdle(holders, port, count, procs);
    await sleep(1500);
    const after = memoryKiB(server.pid).rss;
    console.log(
      `${kind}: ${open} idle connections, RSS ${(before / 1024).toFixed(1)} -> ` +
        `${(after / 1024).toFixed(1)} MB, ${((after - before) / open).toFixed(1)} KiB each`,
    );
    await sup.stopAll(1_000);
  }
} finally {
  await sup.stopAll();
  Deno.removeSync(work, { recursive: true });
}
