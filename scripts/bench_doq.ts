/**
 * `deno run -A scripts/bench_doq.ts [--seconds 5] [--connections 4] [--concurrency 50] [--rate 1000]`:
 * the DoQ face beside the DoT face of one bridge (its own process), cached answers, at saturation
 * and at a fixed rate on one connection (latency percentiles).
 *
 * There is no DoQ load generator here (dnsperf speaks no DoQ; dnsdist 1.7 has no DoQ), so both
 * faces are driven by the same kind of client in this process: `--connections` connections, each
 * keeping `--concurrency` queries outstanding (DoQ: one stream per query, as RFC 9250 wants; DoT:
 * pipelined on the connection). The client shares nothing with the bridge, but it is JavaScript
 * too and may be the limit: the bridge's CPU time per query is shown beside the rate.
 *
 * @module
 */
import { writeBenchPki } from "./bench/pki.ts";
import { cpuSeconds, freePort, numberArg, sleep, Supervisor } from "./bench/procs.ts";
import { spawnScriptBridge } from "./bench/script_bridge.ts";
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";
import { buildQuery, connectDot } from "../test/support/dot_client.ts";
import { connectDoq } from "../test/support/doq_client.ts";

const SECONDS = numberArg("seconds", 5);
const RATE = numberArg("rate", 1000);
const CONNECTIONS = numberArg("connections", 4);
const CONCURRENCY = numberArg("concurrency", 50);
const NAMES = 200;

const dir = await Deno.makeTempDir({ prefix: "dotbridge-bench-doq-" });
const sup = new Supervisor(dir);
const upstreamPki = await testPki();
const upstream = await startDohUpstream(upstreamPki);
try {
  const pki = await writeBenchPki(dir);
  const upstreamCa = `${dir}/upstream-ca.pem`;
  await Deno.writeTextFile(upstreamCa, upstreamPki.ca.certPem);
  const doqPort = await freePort(true);
  const { proc, port: dotPort } = await spawnScriptBridge(sup, "bridge", {
    pki,
    upstream: upstream.url,
    upstreamCa,
    extra: [
      ...["--doq-listen", `127.0.0.1:${doqPort}`],
      ...["--max-inflight", String(Math.max(100, CONCURRENCY))],
    ],
  });
  await sleep(300);

  const wires = Array.from({ length: NAMES }, (_, i) => buildQuery(`bench-${i}.example.test`));
  type Send = (wire: Uint8Array) => Promise<unknown>;

  const doqSenders = async (): Promise<{ sends: Send[]; close: () => void }> => {
    const clients = await Promise.all(
      Array.from(
        { length: CONNECTIONS },
        () => connectDoq({ port: doqPort, caCerts: [pki.caPem], serverName: "localhost" }),
      ),
    );
    return {
      sends: clients.map((c) => (w) => c.query(w)),
      close: () => clients.forEach((c) => c.close()),
    };
  };

  const dotSenders = async (): Promise<{ sends: Send[]; close: () => void }> => {
    const clients = await Promise.all(
      Array.from(
        { length: CONNECTIONS },
        () => connectDot({ port: dotPort, caCerts: [pki.caPem] }),
      ),
    );
    return {
      sends: clients.map((c) => {
        // One reader per connection hands each answer to the query with its ID.
        const pending = new Map<number, () => void>();
        (async () => {
          while (!c.isClosed) {
            const answer = await c.next(60_000).catch(() => undefined);
            if (!answer) break;
            const id = (answer[0] << 8) | answer[1];
            pending.get(id)?.();
            pending.delete(id);
          }
        })();
        let id = 0;
        return async (w) => {
          id = (id % 65_535) + 1;
          const q = w.slice();
          q[0] = id >> 8;
          q[1] = id & 0xff;
          const answered = new Promise<void>((resolve) => pending.set(id, resolve));
          await c.send(q);
          await answered;
        };
      }),
      close: () => clients.forEach((c) => c.close()),
    };
  };

  const drive = async (sends: Send[], seconds: number): Promise<number> => {
    let done = 0;
    const end = performance.now() + seconds * 1000;
    await Promise.all(sends.flatMap((send) =>
      Array.from({ length: CONCURRENCY }, async (_, k) => {
        let i = k;
        while (performance.now() < end) {
          await send(wires[i++ % wires.length]);
          done++;
        }
      })
    ));
    return done;
  };

  /** `rate` queries per second on the first connection for `seconds`; latencies in ms. */
  const paced = async (send: Send, rate: number, seconds: number): Promise<number[]> => {
    const times: number[] = [];
    const inFlight: Promise<void>[] = [];
    const start = performance.now();
    const total = Math.round(rate * seconds);
    for (let i = 0; i < total; i++) {
      const due = start + (i * 1000) / rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      const sent = performance.now();
      inFlight.push(
        send(wires[i % wires.length]).then(() => {
          times.push(performance.now() - sent);
        }),
      );
    }
    await Promise.all(inFlight);
    return times.sort((a, b) => a - b);
  };
  const pct = (sorted: number[], p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

  const rows: string[] = [];
  for (const [face, make] of [["DoT", dotSenders], ["DoQ", doqSenders]] as const) {
    const { sends, close } = await make();
    await drive(sends, 1); // warm the cache and the JIT
    const cpu0 = cpuSeconds(proc.pid);
    const t0 = performance.now();
    const n = await drive(sends, SECONDS);
    const secs = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(proc.pid) - cpu0;
    rows.push(
      `| ${face} face, cached | ${CONNECTIONS} x ${CONCURRENCY} | ${Math.round(n / secs)} | ` +
        `— | — | ${Math.round((cpu / n) * 1e6)} µs | ${Math.round((cpu / secs) * 100)}% |`,
    );
    await sleep(300);
    const cpu1 = cpuSeconds(proc.pid);
    const r0 = performance.now();
    const lat = await paced(sends[0], RATE, SECONDS);
    const rsecs = (performance.now() - r0) / 1000;
    const rcpu = cpuSeconds(proc.pid) - cpu1;
    close();
    rows.push(
      `| ${face} face, cached | 1 connection, ${RATE} QPS | ${Math.round(lat.length / rsecs)} | ` +
        `${pct(lat, 0.5).toFixed(2)} | ${pct(lat, 0.99).toFixed(2)} | ` +
        `${Math.round((rcpu / lat.length) * 1e6)} µs | ${Math.round((rcpu / rsecs) * 100)}% |`,
    );
    await sleep(500);
  }
  console.log(
    `| face | load | queries/s | p50 ms | p99 ms | bridge CPU/query | bridge CPU |`,
  );
  console.log(`|---|---|---|---:|---:|---:|---:|`);
  for (const r of rows) console.log(r);
} finally {
  await sup.stopAll();
  await upstream.close();
  await Deno.remove(dir, { recursive: true });
}
