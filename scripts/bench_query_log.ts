/**
 * `deno run -A scripts/bench_query_log.ts [--seconds 8] [--names 1000] [--rounds 5]`: what the
 * query log (and dnstap) cost on cached DoT QPS, side by side. Bridges on loopback answer the
 * same cached names over DoT under dnsperf at saturation, in interleaved rounds (the machine may
 * be shared, so each round runs every row once, in turn):
 *
 * - **off**: no query log, no dnstap (the processor makes no trace);
 * - **query log**: `--query-log FILE` (default client privacy: truncated), on a local disk;
 * - **dnstap**: `--dnstap unix:SOCK` to Debian's `dnstap` tool writing to /dev/null (when
 *   installed).
 *
 * Prints a Markdown table: each row's QPS (median and range over the rounds), p50/p99 latency,
 * the bridge's CPU time per answered query (from /proc, so other load on a shared machine moves it
 * less than it moves QPS), and the cost against `off` round by round (median and range), in QPS
 * and in CPU per query. Then the same in one process (`scripts/bench/query_log_inprocess.ts`):
 * nanoseconds per cached query through the processor with no tap, the trace alone, and the query
 * log. Needs dnsperf.
 *
 * @module
 */
import { type DnsperfResult, runDnsperf } from "./bench/dnsperf.ts";
import { writeBenchPki } from "./bench/pki.ts";
import {
  cpuSeconds,
  freePort,
  numberArg,
  REPO_DIR,
  sleep,
  Supervisor,
  waitForTcp,
} from "./bench/procs.ts";
import { SHIPPED_RUNTIME_FLAGS } from "./bench/lab.ts";
import { queryLogInProcess } from "./bench/query_log_inprocess.ts";
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";

const SECONDS = numberArg("seconds", 8);
const NAMES = numberArg("names", 1000);
const ROUNDS = numberArg("rounds", 5);

async function installed(bin: string): Promise<boolean> {
  try {
    await new Deno.Command(bin, { args: ["-h"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch {
    return false;
  }
}

const dir = await Deno.makeTempDir({ prefix: "dotbridge-bench-qlog-" });
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

  const bridge = async (name: string, extra: string[]): Promise<[number, number]> => {
    const port = await freePort();
    const proc = sup.spawn(name, Deno.execPath(), [
      "run",
      ...SHIPPED_RUNTIME_FLAGS,
      "-A",
      "src/deno/main.ts",
      "--listen",
      `127.0.0.1:${port}`,
      "--http-listen",
      "off",
      "--cert",
      pki.certPath,
      "--key",
      pki.keyPath,
      "--upstream",
      upstream.url,
      "--upstream-ca",
      upstreamCa,
      "--log-level",
      "warn",
      ...extra,
    ], { cwd: REPO_DIR });
    await waitForTcp(port, 30_000, proc);
    return [port, proc.pid];
  };

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

  const targets: [string, [number, number]][] = [
    ["off", await bridge("off", [])],
    ["query log", await bridge("query-log", ["--query-log", `${dir}/queries.log`])],
  ];
  if (await installed("dnstap")) {
    const socket = `${dir}/dnstap.sock`;
    sup.spawn("dnstap-collector", "dnstap", ["-u", socket, "-w", "/dev/null"]);
    for (let i = 0; i < 50 && !(await Deno.stat(socket).then(() => true, () => false)); i++) {
      await sleep(100);
    }
    targets.push(["dnstap", await bridge("dnstap", ["--dnstap", `unix:${socket}`])]);
  }
  for (const [label, [port]] of targets) await load(`${label}-warm`, port, 2);
  await sleep(300);

  const rows = new Map<string, (DnsperfResult & { cpuUs: number })[]>();
  for (let round = 0; round < ROUNDS; round++) {
    // Rotate the order each round, so no row always runs first.
    for (let i = 0; i < targets.length; i++) {
      const [label, [port, pid]] = targets[(i + round) % targets.length];
      const cpu = cpuSeconds(pid);
      const r = await load(`${label}-${round}`, port, SECONDS);
      const cpuUs = (cpuSeconds(pid) - cpu) / Math.max(1, r.completed) * 1e6;
      rows.set(label, [...rows.get(label) ?? [], { ...r, cpuUs }]);
    }
  }

  const median = (xs: number[]) => xs.toSorted((a, b) => a - b)[Math.floor(xs.length / 2)];
  const range = (xs: number[], digits = 0) =>
    `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`;
  const off = rows.get("off")!;
  console.log(
    `\n${NAMES} cached names, dnsperf DoT -c 10 -q 100 -l ${SECONDS}, loopback, one bridge ` +
      `thread each, ${ROUNDS} interleaved rounds\n`,
  );
  console.log(
    "| row | QPS median | QPS range | p50 ms | p99 ms | CPU µs/query | QPS cost vs off, median " +
      "(range) | CPU cost vs off, median (range) |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const [label, rs] of rows) {
    const qps = rs.map((r) => r.qps);
    const cpu = rs.map((r) => r.cpuUs);
    const costs = rs.map((r, i) => (1 - r.qps / off[i].qps) * 100);
    const cpuCosts = rs.map((r, i) => (r.cpuUs / off[i].cpuUs - 1) * 100);
    const cost = (xs: number[]) =>
      label === "off" ? "—" : `${median(xs).toFixed(1)} % (${range(xs, 1)} %)`;
    console.log(
      `| ${label} | ${Math.round(median(qps))} | ${range(qps)} | ${
        median(rs.map((r) => r.p50Ms)).toFixed(2)
      } | ${median(rs.map((r) => r.p99Ms)).toFixed(2)} | ${median(cpu).toFixed(1)} (${
        range(cpu, 1)
      }) | ${cost(costs)} | ${cost(cpuCosts)} |`,
    );
  }
  const logged = Deno.statSync(`${dir}/queries.log`).size;
  console.log(`\nquery log written: ${(logged / 1e6).toFixed(1)} MB`);

  await sup.stopAll();
  const inProcess = await queryLogInProcess(ROUNDS);
  const base = inProcess.get("off")!;
  console.log(
    `\nIn one process (processor + cached resolver, no sockets), ${ROUNDS} interleaved rounds ` +
      "of 200 000 queries\n",
  );
  console.log("| row | ns/query median (range) | added ns, median (range) |");
  console.log("| --- | ---: | ---: |");
  for (const [label, ns] of inProcess) {
    const added = ns.map((x, i) => x - base[i]);
    console.log(
      `| ${label} | ${median(ns).toFixed(0)} (${range(ns)}) | ${
        label === "off" ? "—" : `${median(added).toFixed(0)} (${range(added)})`
      } |`,
    );
  }
} finally {
  await sup.stopAll();
  await upstream.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
