/**
 * A DoQ load generator for `scripts/bench_doq.ts`, run as its own process so that several can
 * share the work and none shares an event loop with the harness. `--connections` connections,
 * each keeping `--concurrency` queries outstanding, one stream per query (RFC 9250): one write
 * holding length and query, the FIN, then the answer read to the server's FIN. It queries
 * `--names` names in turn, warms for `--warm` seconds, counts for `--seconds`, and prints one
 * JSON line: `{ "queries", "seconds", "cpu", "errors" }` (`cpu`: its own CPU seconds while
 * counting, so the harness can tell whether the load generator is the limit).
 *
 * Usage: `deno run -A scripts/bench/doq_load.ts --port N --ca FILE [--connections 2]
 * [--concurrency 50] [--seconds 5] [--warm 1] [--names 200]`
 *
 * @module
 */
import { buildQuery } from "../../test/support/dot_client.ts";
import { cpuSeconds, numberArg } from "./procs.ts";

const PORT = numberArg("port", 0);
const CONNECTIONS = numberArg("connections", 2);
const CONCURRENCY = numberArg("concurrency", 50);
const SECONDS = numberArg("seconds", 5);
const WARM = numberArg("warm", 1);
const NAMES = numberArg("names", 200);
const caIndex = Deno.args.indexOf("--ca");
const caPem = Deno.readTextFileSync(Deno.args[caIndex + 1]);

/** The queries, ID 0 (RFC 9250 §4.2.1), each with its 2-byte length in front. */
const framed = Array.from({ length: NAMES }, (_, i) => {
  const wire = buildQuery(`bench-${i}.example.test`);
  const out = new Uint8Array(2 + wire.byteLength);
  out[0] = wire.byteLength >> 8;
  out[1] = wire.byteLength & 0xff;
  out.set(wire, 2);
  out[2] = out[3] = 0;
  return out;
});

let errors = 0;

async function query(conn: Deno.QuicConn, bytes: Uint8Array): Promise<boolean> {
  const stream = await conn.createBidirectionalStream({ waitUntilAvailable: true });
  const writer = stream.writable.getWriter();
  writer.write(bytes).catch(() => {});
  writer.close().catch(() => {});
  // A BYOB reader into one small buffer (the default reader allocates 64 KiB per read).
  const reader = stream.readable.getReader({ mode: "byob" });
  let buf = new Uint8Array(512);
  let have = 0;
  for (;;) {
    const { value, done } = await reader.read(buf.subarray(have));
    if (value) buf = new Uint8Array(value.buffer);
    if (done) break;
    have += value.byteLength;
    if (have === buf.byteLength) return false; // more than the bench's answers ever hold
  }
  return have > 14;
}

const conns = await Promise.all(
  Array.from({ length: CONNECTIONS }, () =>
    Deno.connectQuic({
      hostname: "127.0.0.1",
      port: PORT,
      serverName: "localhost",
      caCerts: [caPem],
      alpnProtocols: ["doq"],
    })),
);

let counting = false;
let done = 0;
let stop = false;
const workers = conns.flatMap((conn, c) =>
  Array.from({ length: CONCURRENCY }, async (_, k) => {
    let i = c * CONCURRENCY + k;
    while (!stop) {
      try {
        if (await query(conn, framed[i++ % NAMES])) {
          if (counting) done++;
        } else errors++;
      } catch {
        errors++;
        if (errors > 1000) return;
      }
    }
  })
);

await new Promise((r) => setTimeout(r, WARM * 1000));
const cpu0 = cpuSeconds(Deno.pid);
const t0 = performance.now();
counting = true;
await new Promise((r) => setTimeout(r, SECONDS * 1000));
counting = false;
const seconds = (performance.now() - t0) / 1000;
const cpu = cpuSeconds(Deno.pid) - cpu0;
stop = true;
console.log(JSON.stringify({ queries: done, seconds, cpu, errors }));
await Promise.race([Promise.all(workers), new Promise((r) => setTimeout(r, 2000))]);
for (const conn of conns) conn.close({ closeCode: 0, reason: "" });
Deno.exit(0);
