/**
 * `deno run -A scripts/bench_redis.ts [--seconds 10] [--names 1000] [--rounds 3] [--outage-qps 2000]`:
 * the shared cache's cost,
 * three bridges on loopback answering the same cached names over DoT under dnsperf:
 *
 * - **memory**: the in-memory cache alone (every query a memory hit);
 * - **memory+redis, local hit**: `--cache-redis`, every query a memory hit (Redis untouched);
 * - **memory+redis, Redis hit**: `--cache-redis --cache-size 1`, so nearly every query misses
 *   memory and is answered from Redis (within the budget, here 50 ms so no lookup times out);
 * - **memory+redis signed, Redis hit**: the same with `--cache-redis-secret` (each Redis hit
 *   checks an HMAC-SHA-256), on its own Redis database so the two do not overwrite each other.
 *
 * One redis-server (ephemeral port, no persistence) and the test zone's DoH upstream are started
 * here; the upstream's request count is shown for each row (a Redis lookup past its budget goes
 * upstream). Then the outage figures: the Redis-hit bridge at a fixed rate while Redis is killed
 * and restarted (empty): rcodes, and the hit rate before, during and after. Prints Markdown
 * tables. Needs dnsperf and redis-server.
 *
 * @module
 */
import { type DnsperfResult, runDnsperf } from "./bench/dnsperf.ts";
import { writeBenchPki } from "./bench/pki.ts";
import { freePort, numberArg, sleep, Supervisor, waitForTcp } from "./bench/procs.ts";
import { spawnScriptBridge } from "./bench/script_bridge.ts";
import { redisServerArgs } from "../test/support/redis_server.ts";
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";

const SECONDS = numberArg("seconds", 10);
const NAMES = numberArg("names", 1000);
const ROUNDS = numberArg("rounds", 3);
const OUTAGE_QPS = numberArg("outage-qps", 2000);

const dir = await Deno.makeTempDir({ prefix: "dotbridge-bench-redis-" });
const sup = new Supervisor(dir);
const upstreamPki = await testPki();
const upstream = await startDohUpstream(upstreamPki);
try {
  const pki = await writeBenchPki(dir);
  const upstreamCa = `${dir}/upstream-ca.pem`;
  await Deno.writeTextFile(upstreamCa, upstreamPki.ca.certPem);
  const queries = `${dir}/queries.txt`;
  await Deno.writeTextFile(
    queries,
    Array.from({ length: NAMES }, (_, i) => `bench-${i}.example.test A\n`).join(""),
  );

  const redisPort = await freePort();
  const startRedisOn = (port: number) => sup.spawn("redis", "redis-server", redisServerArgs(port));
  let redis = startRedisOn(redisPort);
  await waitForTcp(redisPort, 10_000, redis);
  const redisUrl = `redis://127.0.0.1:${redisPort}/0`;

  const bridge = async (name: string, extra: string[]): Promise<number> =>
    (await spawnScriptBridge(sup, name, { pki, upstream: upstream.url, upstreamCa, extra })).port;

  const load = (name: string, port: number, seconds: number) =>
    runDnsperf(sup, name, {
      mode: "dot",
      port,
      queriesPath: queries,
      clients: 10,
      outstanding: 100,
      seconds,
      timeoutS: 2,
    });

  const rows = new Map<string, [DnsperfResult, number][]>();
  const row = async (label: string, port: number) => {
    const before = upstream.requests.length;
    const r = await load(label, port, SECONDS);
    rows.set(label, [...rows.get(label) ?? [], [r, upstream.requests.length - before]]);
  };

  const redisArgs = ["--cache-redis", redisUrl, "--cache-redis-budget", "50ms"];
  const memory = await bridge("memory", []);
  const local = await bridge("local", redisArgs);
  const farMetrics = await freePort();
  const far = await bridge("far", [
    ...redisArgs,
    "--cache-size",
    "1",
    "--metrics-listen",
    `127.0.0.1:${farMetrics}`,
  ]);
  const secret = new Uint8Array(32);
  crypto.getRandomValues(secret);
  const signed = await bridge("far-signed", [
    "--cache-redis",
    `redis://127.0.0.1:${redisPort}/1`,
    "--cache-redis-budget",
    "50ms",
    "--cache-size",
    "1",
    "--cache-redis-secret",
    secret.toBase64(),
  ]);
  // Fill both memories, and Redis, from the upstream.
  await load("memory-warm", memory, 2);
  await load("local-warm", local, 2);
  await load("far-signed-warm", signed, 2);
  await sleep(300);
  // Interleaved rounds (the machine may be shared): the table gives each row's median.
  for (let round = 0; round < ROUNDS; round++) {
    await row("memory", memory);
    await row("memory+redis, local hit", local);
    await row("memory+redis, Redis hit", far);
    await row("memory+redis signed, Redis hit", signed);
  }

  const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(
    `\n${NAMES} names, dnsperf DoT -c 10 -q 100 -l ${SECONDS}, loopback, one bridge thread each,` +
      ` median of ${ROUNDS} interleaved rounds\n`,
  );
  console.log("| cache | QPS | p50 ms | p99 ms | non-NOERROR | upstream queries during runs |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const [label, rs] of rows) {
    const bad = rs.reduce((n, [r]) => n + r.completed - (r.rcodes.NOERROR ?? 0) + r.lost, 0);
    const asked = rs.reduce((n, [, a]) => n + a, 0);
    console.log(
      `| ${label} | ${Math.round(median(rs.map(([r]) => r.qps)))} | ${
        median(rs.map(([r]) => r.p50Ms)).toFixed(2)
      } | ${median(rs.map(([r]) => r.p99Ms)).toFixed(2)} | ${bad} | ${asked} |`,
    );
  }

  // Outage: the Redis-hit bridge at a fixed rate; Redis killed at 2 s, back (empty) at 5 s.
  const events = async () => {
    const text = await (await fetch(`http://127.0.0.1:${farMetrics}/metrics`)).text();
    const count = (e: string) =>
      Number(
        new RegExp(`^dotbridge_cache_events_total\\{event="${e}"\\} (\\d+)`, "m")
          .exec(text)?.[1] ?? 0,
      );
    return { hit: count("hit"), miss: count("miss") + count("coalesced") };
  };
  const rate = (a: { hit: number; miss: number }, b: { hit: number; miss: number }) => {
    const hits = b.hit - a.hit;
    const all = hits + b.miss - a.miss;
    return all === 0 ? "-" : `${(100 * hits / all).toFixed(1)} %`;
  };
  const run = runDnsperf(sup, "outage", {
    mode: "dot",
    port: far,
    queriesPath: queries,
    clients: 10,
    outstanding: 100,
    seconds: 9,
    qps: OUTAGE_QPS,
    timeoutS: 2,
  });
  await sleep(200);
  const e0 = await events();
  await sleep(1800);
  const e1 = await events();
  await redis.stop(0);
  await sleep(3000);
  const e2 = await events();
  redis = startRedisOn(redisPort);
  await waitForTcp(redisPort, 10_000, redis);
  await sleep(3500);
  const e3 = await events();
  const out = await run;
  console.log(
    `\nRedis outage under load (Redis-hit bridge, dnsperf -Q ${OUTAGE_QPS} -l 9): killed at 2 s,` +
      ` restarted empty at 5 s\n`,
  );
  console.log(
    "| sent | completed | NOERROR | SERVFAIL | lost | hit rate before | during | after |",
  );
  console.log("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  console.log(
    `| ${out.sent} | ${out.completed} | ${out.rcodes.NOERROR ?? 0} | ${
      out.rcodes.SERVFAIL ?? 0
    } | ${out.lost} | ${rate(e0, e1)} | ${rate(e1, e2)} | ${rate(e2, e3)} |`,
  );
} finally {
  await sup.stopAll();
  await upstream.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
