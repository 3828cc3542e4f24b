/**
 * `deno run -A scripts/cache_memory.ts [--repo DIR]... [--names 1000] [--batches 3]
 * [--size 60000] [--qps-seconds 10] [--rounds 3]`: what the answer cache costs in memory (issue
 * #19, finding 7), and what it serves.
 *
 * - **Memory**: for each configuration a bridge process (the shipped `deno run` flags) answers
 *   `--batches` batches of `--names` unique names over DoT, each a TXT answer of about `--size`
 *   bytes from a local DoH upstream; the table gives the bridge's RSS before, its growth after
 *   each batch (2 s after it), its peak, and how many of the last 100 names a second ask found in
 *   the cache. RSS also holds garbage not yet collected and memory the allocator keeps (tens of
 *   MB for answers this large, cached or not, that it does not give back), so the growth after
 *   the first batch is not the cache alone; a bounded cache shows as growth that levels off over
 *   the batches, an unbounded one keeps growing.
 *   Configurations: `--cache-size 1000` (as in the issue), the defaults, and, where the bridge has
 *   these keys, `--cache-max-entry-bytes 65535` (so 60 KB answers are cached) with the default
 *   `--cache-max-bytes` and with 16 MiB. A row whose keys a bridge does not know is skipped.
 * - **Cached DoT QPS**: dnsperf (DoT, -c 10 -q 100) over 1000 small names, all cached, on a
 *   bridge with the defaults; `--rounds` interleaved rounds per bridge, the median.
 *
 * `--repo DIR` (repeatable) runs the bridges of another checkout too (each needs its
 * `node_modules`, `deno install`), for before/after figures in one run: rows are labelled by the
 * checkout's commit. Needs dnsperf for the QPS part (`--qps-seconds 0` skips it).
 *
 * Two in-process modes of this checkout (both need `--v8-flags=--expose-gc`): `--live` sends the
 * same batches through the resolver `buildResolver` makes (its DoH transport answering from the
 * test zone in memory) and gives the heap and external memory still in use after a collection,
 * which is what the cache holds without the allocator's share; `--entry-overhead` measures what
 * one small cached entry pins beside its answer bytes and key, the source of
 * `ENTRY_OVERHEAD_BYTES`.
 *
 * @module
 */
import { runDnsperf } from "./bench/dnsperf.ts";
import { writeBenchPki } from "./bench/pki.ts";
import { readBridgeHelp, SHIPPED_RUNTIME_FLAGS } from "./bench/lab.ts";
import { spawnScriptBridge } from "./bench/script_bridge.ts";
import { capture, memoryKiB, numberArg, REPO_DIR, sleep, Supervisor } from "./bench/procs.ts";
import { buildQuery, connectDot, type DotClient } from "../test/support/dot_client.ts";
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";

const NAMES = numberArg("names", 1000);
const BATCHES = numberArg("batches", 3);
const SIZE = numberArg("size", 60_000);
const QPS_SECONDS = numberArg("qps-seconds", 10);
const ROUNDS = numberArg("rounds", 3);
const repos = [REPO_DIR];
for (let i = 0; i < Deno.args.length; i++) {
  if (Deno.args[i] === "--repo") repos.push(Deno.args[++i]);
}

/** One configuration: its label and the bridge arguments. */
const CONFIGS: [string, string[]][] = [
  ["--cache-size 1000 (the issue's)", ["--cache-size", "1000"]],
  ["defaults", []],
  ["--cache-max-entry-bytes 65535", ["--cache-max-entry-bytes", "65535"]],
  ["--cache-max-entry-bytes 65535 --cache-max-bytes 16 MiB", [
    "--cache-max-entry-bytes",
    "65535",
    "--cache-max-bytes",
    String(16 * 1024 * 1024),
  ]],
];

if (Deno.args.includes("--entry-overhead")) {
  await entryOverhead();
  Deno.exit(0);
}
if (Deno.args.includes("--live")) {
  await liveMemory();
  Deno.exit(0);
}
const dir = await Deno.makeTempDir({ prefix: "dotbridge-cache-memory-" });
const sup = new Supervisor(dir);
const upstreamPki = await testPki();
const upstream = await startDohUpstream(upstreamPki);
try {
  const pki = await writeBenchPki(dir);
  const upstreamCa = `${dir}/upstream-ca.pem`;
  await Deno.writeTextFile(upstreamCa, upstreamPki.ca.certPem);

  /** The commit of a checkout, and the options its bridge knows. */
  const checkouts = await Promise.all(repos.map(async (repo) => ({
    repo,
    commit: (await capture("git", ["-C", repo, "rev-parse", "--short", "HEAD"])).trim(),
    help: await readBridgeHelp(repo),
  })));

  const bridge = (repo: string, name: string, extra: string[]) =>
    spawnScriptBridge(sup, name, { pki, upstream: upstream.url, upstreamCa, extra, repo });

  console.log(
    `\n${BATCHES} batches of ${NAMES} unique TXT answers of ~${SIZE} bytes over DoT, one bridge ` +
      `process each (${SHIPPED_RUNTIME_FLAGS.join(" ")}); RSS in MiB\n`,
  );
  const growth = Array.from({ length: BATCHES }, (_, i) => `+${(i + 1) * NAMES} names`);
  console.log(
    `| bridge | configuration | RSS before | ${growth.join(" | ")} | peak | cached (of last 100) |`,
  );
  console.log(`| --- | --- | ---: | ${growth.map(() => "---:").join(" | ")} | ---: | ---: |`);
  let run = 0;
  for (const c of checkouts) {
    for (const [label, args] of CONFIGS) {
      const known = args.filter((a) => a.startsWith("--")).every((a) => c.help.includes(a));
      if (!known) {
        console.log(`| ${c.commit} | ${label} | (no such keys) |${" |".repeat(BATCHES + 2)}`);
        continue;
      }
      const b = await bridge(c.repo, `memory-${c.commit}-${run}`, args);
      try {
        const client = await connectDot({ port: b.port, caCerts: [pki.caPem] });
        try {
          // Warm up: connections, the upstream pool, the first allocations.
          await askAll(client, Array.from({ length: 50 }, (_, i) => `warm-${i}.example.test`));
          await sleep(2_000);
          const before = memoryKiB(b.proc.pid).rss;
          const grew: number[] = [];
          let names: string[] = [];
          for (let batch = 0; batch < BATCHES; batch++) {
            names = Array.from(
              { length: NAMES },
              (_, i) => `big-${SIZE}-r${run}b${batch}n${i}.example.test`,
            );
            await askAll(client, names, "TXT");
            await sleep(2_000);
            grew.push(memoryKiB(b.proc.pid).rss - before);
          }
          const peak = memoryKiB(b.proc.pid).hwm;
          const asked = upstream.requests.length;
          await askAll(client, names.slice(-100), "TXT");
          const cached = 100 - (upstream.requests.length - asked);
          const mib = (kib: number) => (kib / 1024).toFixed(1);
          console.log(
            `| ${c.commit} | ${label} | ${mib(before)} | ${grew.map(mib).join(" | ")} | ` +
              `${mib(peak)} | ${cached} |`,
          );
        } finally {
          client.close();
        }
      } finally {
        await b.proc.stop(2_000);
      }
      run++;
    }
  }

  if (QPS_SECONDS > 0) await cachedQps(checkouts, bridge);
} finally {
  await sup.stopAll();
  await upstream.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Sends every name (25 in flight at a time) and waits for every answer. */
async function askAll(client: DotClient, names: string[], type: "A" | "TXT" = "A") {
  let id = 1;
  for (let i = 0; i < names.length; i += 25) {
    const batch = names.slice(i, i + 25).map((name) => ({ name, id: id++ & 0xffff }));
    await client.send(...batch.map((q) => buildQuery(q.name, { id: q.id, type, edns: true })));
    for (const q of batch) await client.waitFor(q.id, 10_000);
  }
}

/** Cached DoT QPS of each checkout's bridge with the defaults, interleaved rounds. */
async function cachedQps(
  checkouts: { repo: string; commit: string }[],
  bridge: (
    repo: string,
    name: string,
    extra: string[],
  ) => Promise<{ proc: { stop(ms?: number): Promise<void> }; port: number }>,
) {
  const queries = `${dir}/queries.txt`;
  await Deno.writeTextFile(
    queries,
    Array.from({ length: 1000 }, (_, i) => `qps-${i}.example.test A\n`).join(""),
  );
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
  const running = [];
  for (const c of checkouts) {
    const b = await bridge(c.repo, `qps-${c.commit}`, []);
    await load(`warm-${c.commit}`, b.port, 2);
    running.push({ ...c, ...b, qps: [] as number[] });
  }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const r of running) {
        r.qps.push((await load(`qps-${r.commit}-${round}`, r.port, QPS_SECONDS)).qps);
      }
    }
  } finally {
    for (const r of running) await r.proc.stop(2_000);
  }
  console.log(
    `\nCached DoT QPS, defaults: dnsperf -c 10 -q 100 -l ${QPS_SECONDS}, 1000 cached names, ` +
      `${ROUNDS} interleaved rounds\n`,
  );
  console.log("| bridge | median QPS | rounds |");
  console.log("| --- | ---: | --- |");
  for (const r of running) {
    const sorted = r.qps.toSorted((a, b) => a - b);
    console.log(
      `| ${r.commit} | ${Math.round(sorted[Math.floor(sorted.length / 2)])} | ${
        r.qps.map(Math.round).join(", ")
      } |`,
    );
  }
}

/** The heap and external memory in use after a full collection (MiB). */
function liveMiB(gc: () => void): number {
  gc();
  gc();
  const m = Deno.memoryUsage();
  return (m.heapUsed + m.external) / 1024 / 1024;
}

/** The memory still in use after each batch, through the built resolver, per configuration. */
async function liveMemory() {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  const { buildResolver, upstreamsFrom } = await import("../src/resolver/build.ts");
  const { parseConfig } = await import("../src/config/parse.ts");
  const { classifyQuery } = await import("../src/dns/query.ts");
  const { answerFromZone } = await import("../test/support/zone.ts");
  console.log(
    `\n${BATCHES} batches of ${NAMES} unique TXT answers of ~${SIZE} bytes through the built ` +
      "resolver, in process: heap + external memory in use after a full collection, MiB\n",
  );
  const growth = Array.from({ length: BATCHES }, (_, i) => `+${(i + 1) * NAMES} names`);
  console.log(`| configuration | ${growth.join(" | ")} |`);
  console.log(`| --- | ${growth.map(() => "---:").join(" | ")} |`);
  for (const [label, args] of CONFIGS) {
    let parsed;
    try {
      parsed = parseConfig({ args: ["--upstream", "https://dns.test/dns-query", ...args] });
    } catch {
      console.log(`| ${label} | (no such keys) |${" |".repeat(BATCHES - 1)}`);
      continue;
    }
    if (parsed.help) throw new Error("unreachable");
    const resolver = buildResolver(parsed.config, {
      upstreamFor: upstreamsFrom({
        doh: () => (request: { body?: Uint8Array }) =>
          Promise.resolve({
            status: 200,
            contentType: "application/dns-message",
            body: answerFromZone(request.body!),
          }),
        dot: () => () => Promise.reject(new Error("no DoT upstream here")),
      }),
    });
    const before = liveMiB(gc);
    const grew: string[] = [];
    for (let batch = 0; batch < BATCHES; batch++) {
      for (let i = 0; i < NAMES; i++) {
        const name = `big-${SIZE}-${label.length}b${batch}n${i}.example.test`;
        const c = classifyQuery(buildQuery(name, { type: "TXT", edns: true }));
        if (c.kind !== "query") throw new Error("not a query");
        await resolver.handler(c.query, { face: "dot", signal: new AbortController().signal });
      }
      grew.push((liveMiB(gc) - before).toFixed(1));
    }
    await resolver.close();
    console.log(`| ${label} | ${grew.join(" | ")} |`);
  }
}

/**
 * What 100 000 small cached entries, made as the cache middleware makes them, release from the
 * heap and external memory when dropped, less their answer bytes and keys: with and without an
 * OPT record in the answer.
 */
async function entryOverhead() {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  const { MemoryStore } = await import("../src/cache/memory.ts");
  const { ByteBudget } = await import("../src/cache/budget.ts");
  const { answerOf } = await import("../src/dns/answer.ts");
  const { cacheKey } = await import("../src/cache/store.ts");
  const { classifyQuery } = await import("../src/dns/query.ts");
  const { answerFromZone } = await import("../test/support/zone.ts");
  const n = 100_000;
  for (const edns of [true, false]) {
    const made = Array.from({ length: n }, (_, i) => {
      const q = buildQuery(`name-${i}.example.test`, { edns });
      const c = classifyQuery(q);
      if (c.kind !== "query") throw new Error("not a query");
      return { query: c.query, wire: answerFromZone(q) };
    });
    const store = new MemoryStore({ maxEntries: 2 * n, budget: new ByteBudget(2 ** 40) });
    let own = 0;
    for (const m of made) {
      const answer = answerOf(m.wire);
      const entry = {
        wire: new Uint8Array(answer.wire),
        info: { ...answer.info, id: 0 },
        storedAt: Date.now(),
        expiresAt: Date.now() + 60_000,
      };
      const key = cacheKey(m.query); // a string only the store holds
      own += entry.wire.byteLength + key.length;
      store.set(key, entry);
    }
    gc();
    gc();
    const full = Deno.memoryUsage();
    store.clear();
    gc();
    gc();
    const empty = Deno.memoryUsage();
    const released = full.heapUsed - empty.heapUsed + full.external - empty.external;
    console.log(
      `${edns ? "with" : "without"} OPT: ${(released / n).toFixed(0)} bytes per entry released, ` +
        `of which answer and key ${(own / n).toFixed(0)}: overhead ${
          ((released - own) / n).toFixed(0)
        }`,
    );
  }
}
