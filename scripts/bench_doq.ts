/**
 * `deno task bench:doq [--seconds 5] [--rounds 3] [--clients 2] [--connections 2]
 * [--concurrency 25] [--rate 1000] [--base PATH] [--no-dot] [--via-doq-upstream] [--cpu-prof DIR]`:
 * the DoQ face against the runtime's floor, in one run.
 *
 * Three kinds of server take the same DoQ load, in turn, `--rounds` times: the bridge's DoQ face
 * (cached answers: the face's own cost), the same face from another checkout when `--base` names
 * one (a before/after side by side), and a bare Deno QUIC echo (`scripts/bench/bare_quic_server.ts`:
 * same TLS/ALPN set-up, one stream read and one answer write per query, no DNS work). For each:
 * queries per second, the server's CPU µs per query, the load generator's CPU µs per query, and
 * the face's rate as a share of the echo's measured in the same round (ranges over the rounds).
 * `--via-doq-upstream` adds a bridge (and one of `--base`) without cache whose upstream is the
 * echo over DoQ (`quic://`): the face's cost plus the DoQ upstream client's.
 *
 * The load comes from `--clients` processes of `scripts/bench/doq_load.ts` (dnsperf speaks no DoQ,
 * dnsdist 1.7 has none, kxdpgun needs XDP), each with `--connections` connections keeping
 * `--concurrency` queries outstanding, one stream per query (RFC 9250). They are Deno too: on a
 * 2-core machine they take about as much CPU per query as the echo itself, so the QPS figures are
 * a shared-machine rate; the CPU per query is the face's own cost. Then a paced `--rate` on one
 * connection gives latency percentiles, and (unless `--no-dot`) the DoT face of the same bridge
 * at saturation, driven by a pipelining client in this process, for scale.
 *
 * @module
 */
import { writeBenchPki } from "./bench/pki.ts";
import { renderCpuProfile } from "./bench/profile.ts";
import { SHIPPED_RUNTIME_FLAGS } from "./bench/lab.ts";
import { cpuSeconds, freePort, numberArg, type Proc, sleep, Supervisor } from "./bench/procs.ts";
import { spawnScriptBridge } from "./bench/script_bridge.ts";
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";
import { buildQuery, connectDot } from "../test/support/dot_client.ts";
import { connectDoq } from "../test/support/doq_client.ts";

const SECONDS = numberArg("seconds", 5);
const ROUNDS = numberArg("rounds", 3);
const RATE = numberArg("rate", 1000);
const CLIENTS = numberArg("clients", 2);
const CONNECTIONS = numberArg("connections", 2);
const CONCURRENCY = numberArg("concurrency", 25);
const baseIndex = Deno.args.indexOf("--base");
const BASE = baseIndex >= 0 ? Deno.args[baseIndex + 1] : undefined;
const WITH_DOT = !Deno.args.includes("--no-dot");
const VIA_DOQ = Deno.args.includes("--via-doq-upstream");
const profIndex = Deno.args.indexOf("--cpu-prof");
/** Where the face's V8 CPU profile goes (`--cpu-prof DIR`); its summary is printed at the end. */
const PROFILE_DIR = profIndex >= 0 ? Deno.args[profIndex + 1] : undefined;
const NAMES = 200;
const HERE = new URL(".", import.meta.url).pathname;

/** A DoQ server under load: its name, port and process. */
interface Target {
  name: string;
  port: number;
  proc: Proc;
  qps: number[];
  serverUs: number[];
  clientUs: number[];
}

/** One load run: `CLIENTS` generator processes at once against `port`. */
async function load(
  port: number,
  caPath: string,
  pid: number,
): Promise<{ qps: number; serverUs: number; clientUs: number }> {
  const args = [
    "run",
    "-A",
    "--config",
    `${HERE}../test/deno.json`,
    `${HERE}bench/doq_load.ts`,
    ...["--port", String(port), "--ca", caPath, "--seconds", String(SECONDS)],
    ...["--connections", String(CONNECTIONS), "--concurrency", String(CONCURRENCY)],
  ];
  // The generators warm for 1 s; the server's CPU is read over their counting window.
  const runs = Array.from(
    { length: CLIENTS },
    () => new Deno.Command(Deno.execPath(), { args, stdout: "piped", stderr: "inherit" }).output(),
  );
  await sleep(1000);
  const cpu0 = cpuSeconds(pid);
  await sleep(SECONDS * 1000);
  const cpu = cpuSeconds(pid) - cpu0;
  let queries = 0, seconds = 0, clientCpu = 0, errors = 0;
  for (const out of await Promise.all(runs)) {
    const r = JSON.parse(new TextDecoder().decode(out.stdout).trim().split("\n").at(-1)!);
    queries += r.queries;
    seconds = Math.max(seconds, r.seconds);
    clientCpu += r.cpu;
    errors += r.errors;
  }
  if (errors > 0) console.error(`port ${port}: ${errors} failed queries`);
  return {
    qps: queries / seconds,
    serverUs: (cpu / queries) * 1e6,
    clientUs: (clientCpu / queries) * 1e6,
  };
}

/** `median (min–max)` of the rounds' figures. */
const range = (xs: number[], digits = 0) => {
  const sorted = [...xs].sort((a, b) => a - b);
  const f = (x: number) => x.toFixed(digits);
  const median = sorted[Math.floor((sorted.length - 1) / 2)];
  const [lo, hi] = [f(sorted[0]), f(sorted.at(-1)!)];
  return lo === hi ? lo : `${f(median)} (${lo}–${hi})`;
};

const dir = await Deno.makeTempDir({ prefix: "dotbridge-bench-doq-" });
const sup = new Supervisor(dir);
const upstreamPki = await testPki();
const upstream = await startDohUpstream(upstreamPki);
try {
  const pki = await writeBenchPki(dir);
  const upstreamCa = `${dir}/upstream-ca.pem`;
  await Deno.writeTextFile(upstreamCa, upstreamPki.ca.certPem);

  // The echo first: it is also the DoQ upstream of the --via-doq-upstream bridges. It runs with
  // the bridge's shipped V8 flags, so the two differ only in their code.
  const echoPort = await freePort(true);
  const echo = sup.spawn("echo", Deno.execPath(), [
    "run",
    ...SHIPPED_RUNTIME_FLAGS,
    "-A",
    `${HERE}bench/bare_quic_server.ts`,
    String(echoPort),
    pki.certPath,
    pki.keyPath,
  ]);

  const bridge = async (
    name: string,
    o: { repo?: string; runtimeFlags?: string[]; viaDoq?: boolean } = {},
  ) => {
    const port = await freePort(true);
    const { proc, port: dotPort } = await spawnScriptBridge(sup, name, {
      pki,
      upstream: o.viaDoq ? `quic://127.0.0.1:${echoPort}` : upstream.url,
      upstreamCa: o.viaDoq ? pki.caPath : upstreamCa,
      repo: o.repo,
      runtimeFlags: o.runtimeFlags,
      extra: [
        ...["--doq-listen", `127.0.0.1:${port}`],
        ...["--max-inflight", String(Math.max(100, CONCURRENCY))],
        ...(o.viaDoq ? ["--no-cache"] : []),
      ],
    });
    return { port, proc, dotPort };
  };
  const target = (name: string, b: { port: number; proc: Proc }): Target => ({
    name,
    port: b.port,
    proc: b.proc,
    qps: [],
    serverUs: [],
    clientUs: [],
  });
  if (PROFILE_DIR) Deno.mkdirSync(PROFILE_DIR, { recursive: true });
  const face = await bridge("bridge", {
    runtimeFlags: PROFILE_DIR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_DIR}`] : undefined,
  });
  const targets: Target[] = [target("DoQ face, cached", face)];
  if (BASE) {
    targets.push(target(`DoQ face, cached (${BASE})`, await bridge("base", { repo: BASE })));
  }
  if (VIA_DOQ) {
    // Every query through the DoQ upstream client to the echo: the face's cost plus the client's.
    const name = "DoQ face, no cache, DoQ upstream (the echo)";
    targets.push(target(name, await bridge("via-doq", { viaDoq: true })));
    if (BASE) {
      targets.push(
        target(`${name} (${BASE})`, await bridge("base-via-doq", { repo: BASE, viaDoq: true })),
      );
    }
  }
  targets.push(target("bare Deno QUIC echo", { port: echoPort, proc: echo }));
  await sleep(1000);

  // Each round loads every server in turn (the order rotating), and compares each with the
  // echo's figures of the same round: the machine's other work changes between rounds.
  const ratios = new Map<Target, number[]>(targets.map((t) => [t, []]));
  const cpuRatios = new Map<Target, number[]>(targets.map((t) => [t, []]));
  const echoTarget = targets.at(-1)!;
  for (let round = 0; round < ROUNDS; round++) {
    const got = new Map<Target, { qps: number; serverUs: number }>();
    const order = targets.map((_, i) => targets[(i + round) % targets.length]);
    for (const t of order) {
      const r = await load(t.port, pki.caPath, t.proc.pid);
      t.qps.push(r.qps);
      t.serverUs.push(r.serverUs);
      t.clientUs.push(r.clientUs);
      got.set(t, r);
      await sleep(300);
    }
    const echoGot = got.get(echoTarget)!;
    for (const t of targets) {
      ratios.get(t)!.push(got.get(t)!.qps / echoGot.qps);
      cpuRatios.get(t)!.push(got.get(t)!.serverUs / echoGot.serverUs);
    }
  }

  const wires = Array.from({ length: NAMES }, (_, i) => buildQuery(`bench-${i}.example.test`));
  /** `rate` queries per second through `send` for `seconds`; sorted latencies in ms. */
  const paced = async (
    send: (w: Uint8Array) => Promise<unknown>,
    rate: number,
    seconds: number,
  ): Promise<number[]> => {
    const times: number[] = [];
    const inFlight: Promise<void>[] = [];
    const start = performance.now();
    const total = Math.round(rate * seconds);
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 1) await sleep(wait);
      const sent = performance.now();
      inFlight.push(
        send(wires[i % wires.length]).then(() => void times.push(performance.now() - sent)),
      );
    }
    await Promise.all(inFlight);
    return times.sort((a, b) => a - b);
  };
  const pct = (sorted: number[], p: number) =>
    sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

  const load1 = `${CLIENTS} × ${CONNECTIONS} × ${CONCURRENCY}`;
  console.log(
    `| server | load | queries/s | share of echo | server CPU/query | × echo's | load CPU/query | ` +
      `p50 ms | p99 ms |`,
  );
  console.log(`|---|---|---:|---:|---:|---:|---:|---:|---:|`);
  for (const t of targets) {
    console.log(
      `| ${t.name} | ${load1} | ${range(t.qps)} | ${
        range(ratios.get(t)!.map((r) => r * 100))
      }% | ` +
        `${range(t.serverUs)} µs | ${range(cpuRatios.get(t)!, 1)} | ${
          range(t.clientUs)
        } µs | — | — |`,
    );
  }
  for (const t of targets) {
    const c = await connectDoq({ port: t.port, caCerts: [pki.caPem], serverName: "localhost" });
    await paced((w) => c.query(w), RATE, 1);
    const cpu0 = cpuSeconds(t.proc.pid);
    const lat = await paced((w) => c.query(w), RATE, SECONDS);
    const cpu = cpuSeconds(t.proc.pid) - cpu0;
    c.close();
    console.log(
      `| ${t.name} | 1 connection, ${RATE} QPS | ${Math.round(lat.length / SECONDS)} | — | ` +
        `${Math.round((cpu / lat.length) * 1e6)} µs | — | — | ${pct(lat, 0.5).toFixed(2)} | ` +
        `${pct(lat, 0.99).toFixed(2)} |`,
    );
  }
  if (WITH_DOT) {
    // DoT for scale: 4 connections of 50 pipelined queries from this process.
    const clients = await Promise.all(
      Array.from({ length: 4 }, () => connectDot({ port: face.dotPort, caCerts: [pki.caPem] })),
    );
    const sends = clients.map((c) => {
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
      return async (w: Uint8Array) => {
        id = (id % 65_535) + 1;
        const q = w.slice();
        q[0] = id >> 8;
        q[1] = id & 0xff;
        const answered = new Promise<void>((resolve) => pending.set(id, resolve));
        await c.send(q);
        await answered;
      };
    });
    const drive = async (seconds: number): Promise<number> => {
      let n = 0;
      const end = performance.now() + seconds * 1000;
      await Promise.all(sends.flatMap((send) =>
        Array.from({ length: 50 }, async (_, k) => {
          let i = k;
          while (performance.now() < end) {
            await send(wires[i++ % wires.length]);
            n++;
          }
        })
      ));
      return n;
    };
    await drive(1);
    const cpu0 = cpuSeconds(face.proc.pid);
    const t0 = performance.now();
    const n = await drive(SECONDS);
    const secs = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(face.proc.pid) - cpu0;
    clients.forEach((c) => c.close());
    console.log(
      `| DoT face, cached (same bridge) | 4 × 50, pipelined, in-process client | ` +
        `${Math.round(n / secs)} | — | ${Math.round((cpu / n) * 1e6)} µs | — | — | — | — |`,
    );
  }
} finally {
  await sup.stopAll();
  if (PROFILE_DIR) {
    for (const entry of Deno.readDirSync(PROFILE_DIR)) {
      if (!entry.name.endsWith(".cpuprofile")) continue;
      const profile = JSON.parse(Deno.readTextFileSync(`${PROFILE_DIR}/${entry.name}`));
      console.log(`\n${PROFILE_DIR}/${entry.name}\n${renderCpuProfile(profile, 30)}`);
    }
  }
  await upstream.close();
  await Deno.remove(dir, { recursive: true });
}
