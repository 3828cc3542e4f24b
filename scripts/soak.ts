/**
 * A bounded soak of the bridge under hostile connections, on loopback only:
 *
 * ```sh
 * deno run -A scripts/soak.ts [--duration 20] [--attackers 300] [--rounds 1] [--settle 5]
 *   [--rate 50] [--cache] [--keep]
 * ```
 *
 * Starts the test zone's DoH upstream (`scripts/dev_upstream.ts`) and the bridge
 * (`deno run -A src/deno/main.ts`) as subprocesses, then measures a good DoT client's query
 * latency (p50/p99) in three phases of `--duration` seconds: before, during and after an attack
 * by `--attackers` hostile connections run from a separate subprocess (this script with
 * `--role attackers`), each reopened when the bridge closes it:
 *
 * - `slowloris`: a frame's length prefix and a few bytes, then one byte every 500 ms
 * - `garbage`: random bytes every 100 ms
 * - `idle-tls`: completes the TLS handshake, then sends nothing
 * - `no-tls`: TCP only; sends nothing, or a plaintext HTTP request
 * - `zero-flood`: bursts of zero-length frames
 * - `half-open`: completes the handshake, sends nothing, and ignores the bridge's FIN (keeps the
 *   socket), opening a new one instead
 *
 * Attackers dial from 127.1.x.y source addresses (all loopback on Linux), so the per-address
 * connection cap does not simply shut them out. The bridge's RSS and open descriptors are read
 * from `/proc/<pid>` (Linux only); its debug log and, when available, its `/metrics` give the
 * refused/closed counts. The bridge runs with `--no-cache` unless `--cache` is given (the good
 * client's unique names would only fill the cache). `--rounds N` repeats attack + settle + after
 * to tell a leak (growth per round) from a plateau; `--keep` keeps the logs and RSS samples.
 * Everything stops by itself; the result is a markdown table on stdout.
 *
 * @module
 */
import net from "node:net";
import tls from "node:tls";
import { parseArgs } from "node:util";
import { testPki } from "../test/support/pki.ts";

const { values: opts } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "20" },
    attackers: { type: "string", default: "300" },
    role: { type: "string", default: "main" },
    port: { type: "string" },
    settle: { type: "string", default: "5" },
    rate: { type: "string", default: "50" },
    rounds: { type: "string", default: "1" },
    keep: { type: "boolean", default: false },
    cache: { type: "boolean", default: false },
  },
});
const DURATION_S = Math.max(1, Math.min(600, Number(opts.duration)));
const ATTACKERS = Math.max(1, Math.min(5_000, Number(opts.attackers)));
const SETTLE_S = Math.max(0, Math.min(60, Number(opts.settle)));
const RATE = Math.max(1, Math.min(1_000, Number(opts.rate)));
const ROUNDS = Math.max(1, Math.min(5, Number(opts.rounds)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// The attackers (a separate process, so the measuring process stays idle)

const KINDS = ["slowloris", "garbage", "idle-tls", "no-tls", "zero-flood", "half-open"] as const;
type Kind = typeof KINDS[number];

interface KindStats {
  opened: number;
  /** Closed or reset by the bridge. */
  closedByBridge: number;
  /** Connect errors (refused at once). */
  errors: number;
  /** Half-open sockets still held at the end. */
  held: number;
}

async function runAttackers(port: number): Promise<void> {
  const deadline = Date.now() + DURATION_S * 1000;
  const stats = Object.fromEntries(
    KINDS.map((k) => [k, { opened: 0, closedByBridge: 0, errors: 0, held: 0 }]),
  ) as Record<Kind, KindStats>;
  const live = new Set<net.Socket>();
  const held = new Set<net.Socket>();
  const timers = new Set<ReturnType<typeof setInterval>>();

  function attacker(i: number): Promise<void> {
    const kind = KINDS[i % KINDS.length];
    const localAddress = `127.1.${Math.floor(i / 250)}.${(i % 250) + 1}`;
    return new Promise<void>((done) => {
      const open = () => {
        if (Date.now() >= deadline) return done();
        const s = stats[kind];
        s.opened++;
        let socket: net.Socket;
        let timer: ReturnType<typeof setInterval> | undefined;
        let finished = false;
        const reopen = (byBridge: boolean, error: boolean) => {
          if (finished) return;
          finished = true;
          if (timer !== undefined) {
            clearInterval(timer);
            timers.delete(timer);
          }
          if (error) s.errors++;
          else if (byBridge) s.closedByBridge++;
          live.delete(socket);
          if (kind === "half-open" && byBridge && !error) {
            held.add(socket); // keep it: ignore the FIN
          } else {
            socket.destroy();
          }
          setTimeout(open, 50);
        };
        const every = (ms: number, fn: () => void) => {
          timer = setInterval(() => {
            if (!socket.destroyed && socket.writable) fn();
          }, ms);
          timers.add(timer);
        };
        const onReady = () => {
          switch (kind) {
            case "slowloris":
              socket.write(new Uint8Array([0x00, 0x40, 0x12, 0x34]));
              every(500, () => socket.write(new Uint8Array([0x61])));
              break;
            case "garbage":
              every(100, () => socket.write(crypto.getRandomValues(new Uint8Array(512))));
              break;
            case "zero-flood":
              socket.write(new Uint8Array(400));
              every(50, () => socket.write(new Uint8Array(400)));
              break;
            case "no-tls":
              if (i % 2 === 0) socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
              break;
            default: // idle-tls, half-open: say nothing
          }
        };
        // half-open keeps its side open when the bridge sends FIN (allowHalfOpen).
        const raw = net.connect({
          host: "127.0.0.1",
          port,
          localAddress,
          allowHalfOpen: kind === "half-open",
        });
        let established = false;
        raw.once("connect", () => (established = true));
        raw.on("error", () => {});
        if (kind === "no-tls") {
          socket = raw;
          raw.once("connect", onReady);
        } else {
          socket = tls.connect({
            socket: raw,
            rejectUnauthorized: false,
            ALPNProtocols: ["dot"],
            servername: "localhost",
          }, onReady);
        }
        live.add(socket);
        socket.on("data", () => {});
        socket.on("error", () => reopen(true, !established));
        socket.on("end", () => reopen(true, false));
        socket.on("close", () => reopen(true, !established));
      };
      open();
    });
  }

  const all = Array.from({ length: ATTACKERS }, (_, i) => sleep(i * 3).then(() => attacker(i)));
  await Promise.race([Promise.all(all), sleep(DURATION_S * 1000 + 2_000)]);
  for (const t of timers) clearInterval(t);
  stats["half-open"].held = [...held].filter((s) => !s.destroyed).length;
  for (const s of [...live, ...held]) s.destroy();
  console.log(JSON.stringify(stats));
}

// ---------------------------------------------------------------------------------------------
// The measuring side

interface Sample {
  phase: string;
  rssKiB: number;
  fds: number;
}

function readProc(pid: number): { rssKiB: number; fds: number } | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const rss = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    let fds = 0;
    for (const _ of Deno.readDirSync(`/proc/${pid}/fd`)) fds++;
    return { rssKiB: rss ? Number(rss[1]) : 0, fds };
  } catch {
    return undefined;
  }
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** A started subprocess whose stdout lines we can wait for; stderr goes to a file. */
interface Child {
  readonly name: string;
  readonly pid: number;
  readonly lines: string[];
  waitForLine(re: RegExp, ms: number): Promise<RegExpExecArray>;
  stop(): Promise<void>;
}

function spawn(name: string, args: string[], stderrPath: string): Child {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const waiters: (() => void)[] = [];
  void (async () => {
    const decoder = new TextDecoderStream();
    let rest = "";
    for await (const chunk of child.stdout.pipeThrough(decoder)) {
      rest += chunk;
      const parts = rest.split("\n");
      rest = parts.pop()!;
      lines.push(...parts);
      for (const w of waiters.splice(0)) w();
    }
  })().catch(() => {});
  const errFile = Deno.openSync(stderrPath, { write: true, create: true, truncate: true });
  const stderrDone = child.stderr.pipeTo(errFile.writable).catch(() => {});
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    for (const w of waiters.splice(0)) w();
    return s;
  });
  return {
    name,
    pid: child.pid,
    lines,
    async waitForLine(re: RegExp, ms: number) {
      const deadline = Date.now() + ms;
      for (;;) {
        for (const l of lines) {
          const m = re.exec(l);
          if (m) return m;
        }
        if (exited) throw new Error(`${name} exited before printing ${re}`);
        if (Date.now() > deadline) throw new Error(`${name} did not print ${re} in ${ms} ms`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), sleep(100)]);
      }
    },
    async stop() {
      if (!exited) {
        try {
          child.kill("SIGTERM");
        } catch { /* gone */ }
        const t = setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* gone */ }
        }, 8_000);
        await status;
        clearTimeout(t);
      }
      await stderrDone;
    },
  };
}

/** A sequential DoT client over `Deno.connectTls`, reconnecting when the bridge closes it. */
class GoodClient {
  #conn?: Deno.TlsConn;
  #buf = new Uint8Array(0);
  #waiting?: { id: number; resolve: (ok: boolean) => void };
  #n = 0;
  /** Phases in which the bridge had closed the good client's connection. */
  reconnects: string[] = [];

  constructor(readonly port: number, readonly caPem: string) {}

  async #connect(): Promise<Deno.TlsConn> {
    const conn = await Deno.connectTls({
      hostname: "localhost",
      port: this.port,
      caCerts: [this.caPem],
    });
    await conn.handshake();
    this.#buf = new Uint8Array(0);
    void this.#read(conn);
    return conn;
  }

  async #read(conn: Deno.TlsConn): Promise<void> {
    const chunk = new Uint8Array(4096);
    try {
      for (;;) {
        const n = await conn.read(chunk);
        if (n === null) break;
        const merged = new Uint8Array(this.#buf.length + n);
        merged.set(this.#buf);
        merged.set(chunk.subarray(0, n), this.#buf.length);
        let pos = 0;
        while (merged.length - pos >= 2) {
          const len = (merged[pos] << 8) | merged[pos + 1];
          if (merged.length - pos - 2 < len) break;
          const id = (merged[pos + 2] << 8) | merged[pos + 3];
          const rcode = merged[pos + 5] & 0x0f;
          if (this.#waiting?.id === id) this.#waiting.resolve(rcode === 0);
          pos += 2 + len;
        }
        this.#buf = merged.slice(pos);
      }
    } catch { /* closed */ }
    if (this.#conn === conn) this.#conn = undefined;
    this.#waiting?.resolve(false);
  }

  /** One query; resolves with its latency in ms, or undefined on error/timeout. */
  async query(phase: string): Promise<number | undefined> {
    if (!this.#conn) {
      if (this.#n > 0) this.reconnects.push(phase);
      try {
        this.#conn = await this.#connect();
      } catch {
        return undefined;
      }
    }
    const id = (++this.#n) & 0xffff;
    const name = `soak-${phase}-${this.#n}.example.test`;
    const labels = name.split(".");
    const q: number[] = [id >> 8, id & 0xff, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for (const l of labels) q.push(l.length, ...new TextEncoder().encode(l));
    q.push(0, 0, 1, 0, 1);
    const framed = new Uint8Array([q.length >> 8, q.length & 0xff, ...q]);
    const started = performance.now();
    const answered = new Promise<boolean>((resolve) => (this.#waiting = { id, resolve }));
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await this.#conn.write(framed);
      const ok = await Promise.race([
        answered,
        new Promise<boolean>((r) => (timer = setTimeout(() => r(false), 2_000))),
      ]);
      return ok ? performance.now() - started : undefined;
    } catch {
      this.#conn = undefined;
      return undefined;
    } finally {
      clearTimeout(timer);
      this.#waiting = undefined;
    }
  }

  close(): void {
    try {
      this.#conn?.close();
    } catch { /* closed */ }
    this.#conn = undefined;
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

async function scrapeMetrics(port: number): Promise<string | undefined> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(2_000),
    });
    return res.ok ? await res.text() : (await res.body?.cancel(), undefined);
  } catch {
    return undefined;
  }
}

/** The bridge's open DoT connections, from a /metrics scrape. */
function dotConns(text: string | undefined): number | undefined {
  return metricValue(text, "dotbridge_connections", 'face="dot"');
}

function metricValue(text: string | undefined, name: string, labels: string): number | undefined {
  if (!text) return undefined;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && line.includes(labels)) return Number(line.split(" ").at(-1));
  }
  return undefined;
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-soak-" });
  const children: Child[] = [];
  const stopAll = async () => {
    for (const c of children.reverse()) await c.stop();
  };
  const onSignal = () => {
    void stopAll().finally(() => Deno.exit(130));
  };
  Deno.addSignalListener("SIGINT", onSignal);
  const mib = (kib: number) => (kib / 1024).toFixed(1);
  try {
    const pki = await testPki();
    await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
    const upstream = spawn("upstream", [
      "run",
      "-A",
      "scripts/dev_upstream.ts",
      "--ca-out",
      `${dir}/upstream-ca.pem`,
    ], `${dir}/upstream.log`);
    children.push(upstream);
    const url = (await upstream.waitForLine(/^https:\/\/\S+/, 30_000))[0];

    const metricsPort = freePort();
    const bridgeArgs = [
      ...["--listen", "127.0.0.1:0", "--http-listen", "off"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream", url, "--upstream-ca", `${dir}/upstream-ca.pem`],
      ...["--idle-timeout", "5s", "--frame-timeout", "2s", "--handshake-timeout", "3s"],
      ...["--log-level", "debug", "--metrics-listen", `127.0.0.1:${metricsPort}`],
      // The good client asks unique names; a cache would only grow with them (bounded, but it
      // would blur the before/after memory comparison). --cache keeps the default cache on.
      ...(opts.cache ? [] : ["--no-cache"]),
    ];
    const bridge = spawn(
      "bridge",
      ["run", "-A", "src/deno/main.ts", ...bridgeArgs],
      `${dir}/bridge.log`,
    );
    children.push(bridge);
    const port = Number(
      (await bridge.waitForLine(/DNS-over-TLS on 127\.0\.0\.1:(\d+)/, 30_000))[1],
    );

    const samples: Sample[] = [];
    let phase = "warmup";
    const sampler = setInterval(() => {
      const r = readProc(bridge.pid);
      if (r) samples.push({ phase, ...r });
    }, 200);

    const good = new GoodClient(port, pki.ca.certPem);
    const results: Record<string, { lat: number[]; errors: number }> = {};
    const measure = async (name: string, seconds: number) => {
      phase = name;
      const r: { lat: number[]; errors: number } = { lat: [], errors: 0 };
      results[name] = r;
      const end = Date.now() + seconds * 1000;
      while (Date.now() < end) {
        const t0 = performance.now();
        const ms = await good.query(name);
        if (ms === undefined) r.errors++;
        else r.lat.push(ms);
        const wait = 1000 / RATE - (performance.now() - t0);
        if (wait > 0) await sleep(wait);
      }
    };

    console.error(`soak: bridge pid ${bridge.pid} on 127.0.0.1:${port}; upstream ${url}`);
    await measure("warmup", 2);
    await measure("baseline", DURATION_S);
    const metricsBefore = await scrapeMetrics(metricsPort);

    const rounds: {
      stats: Record<Kind, KindStats>;
      connsAtAttackEnd?: number;
      connsAfter?: number;
    }[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      console.error(
        `soak: attack ${round}/${ROUNDS}: ${ATTACKERS} connections for ${DURATION_S} s`,
      );
      const attack = spawn("attackers", [
        ...["run", "-A", "scripts/soak.ts", "--role", "attackers", "--port", String(port)],
        ...["--attackers", String(ATTACKERS), "--duration", String(DURATION_S)],
      ], `${dir}/attackers-${round}.log`);
      children.push(attack);
      await measure(`attack-${round}`, DURATION_S);
      const connsAtAttackEnd = dotConns(await scrapeMetrics(metricsPort));
      const stats = JSON.parse(
        (await attack.waitForLine(/^\{.*\}$/, 15_000).catch(() => ["{}"]))[0],
      ) as Record<Kind, KindStats>;
      await attack.stop();
      children.splice(children.indexOf(attack), 1);
      console.error(`soak: attack over; settling ${SETTLE_S} s (good client keeps querying)`);
      await measure(`settle-${round}`, SETTLE_S);
      await measure(`after-${round}`, DURATION_S);
      rounds.push({
        stats,
        connsAtAttackEnd,
        connsAfter: dotConns(await scrapeMetrics(metricsPort)),
      });
    }
    clearInterval(sampler);
    if (opts.keep) await Deno.writeTextFile(`${dir}/samples.json`, JSON.stringify(samples));
    good.close();
    await bridge.stop();

    // --- Figures
    const rssOf = (p: string) => samples.filter((s) => s.phase === p);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
    const baseRss = median(rssOf("baseline").map((s) => s.rssKiB));
    const baseFds = median(rssOf("baseline").map((s) => s.fds));
    const log = await Deno.readTextFile(`${dir}/bridge.log`);
    const counts = new Map<string, number>();
    for (const line of log.split("\n")) {
      const msg = /msg=("[^"]*"|\S+)/.exec(line)?.[1]?.replaceAll('"', "");
      if (!msg || msg === "query") continue;
      const reason = /reason=("[^"]*"|\S+)/.exec(line)?.[1]?.replaceAll('"', "");
      const key = reason ? `${msg} (${reason.replace(/\d+/g, "N")})` : msg;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }

    const out: string[] = [];
    out.push(
      `### dotbridge soak: ${ATTACKERS} attackers, ${DURATION_S} s per phase, ` +
        `${ROUNDS} round(s), good client ${RATE} q/s`,
      "",
      "| phase | queries ok | errors | p50 ms | p99 ms | bridge RSS MiB | bridge fds |",
      "|---|---:|---:|---:|---:|---:|---:|",
    );
    const row = (p: string, rss: string, fds: string) => {
      const r = results[p];
      const sorted = [...r.lat].sort((a, b) => a - b);
      out.push(
        `| ${p} | ${r.lat.length} | ${r.errors} | ${percentile(sorted, 50).toFixed(2)} | ${
          percentile(sorted, 99).toFixed(2)
        } | ${rss} | ${fds} |`,
      );
    };
    row("baseline", `${mib(baseRss)} (median)`, `${baseFds}`);
    let afterRss = baseRss;
    for (let round = 1; round <= ROUNDS; round++) {
      const attackSamples = [...rssOf(`attack-${round}`), ...rssOf(`settle-${round}`)];
      const peakRss = Math.max(...attackSamples.map((s) => s.rssKiB));
      const peakFds = Math.max(...attackSamples.map((s) => s.fds));
      // V8 gives memory back lazily (seen 5-20 s after an attack): take the phase's last sample.
      const afterSamples = rssOf(`after-${round}`).map((s) => s.rssKiB);
      afterRss = afterSamples.at(-1) ?? NaN;
      const afterMin = Math.min(...afterSamples);
      const afterFds = median(rssOf(`after-${round}`).map((s) => s.fds));
      row(`attack-${round}`, `${mib(peakRss)} (peak)`, `${peakFds} (peak)`);
      row(
        `after-${round}`,
        `${mib(afterRss)} (end; min ${mib(afterMin)})`,
        `${afterFds}`,
      );
    }
    const within = afterRss <= baseRss * 1.2;
    out.push(
      "",
      `Memory after the ${ROUNDS > 1 ? "last " : ""}attack: ${mib(afterRss)} MiB vs baseline ` +
        `${mib(baseRss)} MiB (${((afterRss / baseRss - 1) * 100).toFixed(0)}%): ${
          within ? "within" : "NOT within"
        } 20% of baseline. Good-client reconnects: ${good.reconnects.length}${
          good.reconnects.length
            ? ` (${
              [...new Set(good.reconnects)].map((p) =>
                `${p}: ${good.reconnects.filter((q) => q === p).length}`
              ).join(", ")
            })`
            : ""
        }.`,
      "",
      "| round | attacker kind | opened | closed by bridge | connect errors | half-open held |",
      "|---|---|---:|---:|---:|---:|",
    );
    rounds.forEach((r, i) => {
      for (const k of KINDS) {
        const s = r.stats[k] ?? { opened: 0, closedByBridge: 0, errors: 0, held: 0 };
        out.push(
          `| ${i + 1} | ${k} | ${s.opened} | ${s.closedByBridge} | ${s.errors} | ${s.held} |`,
        );
      }
    });
    out.push(
      "",
      `Bridge DoT connections (metrics): baseline ${dotConns(metricsBefore) ?? "n/a"}` +
        rounds.map((r, i) =>
          `; round ${i + 1}: end of attack ${r.connsAtAttackEnd ?? "n/a"}, after ${
            r.connsAfter ?? "n/a"
          }`
        ).join("") + ".",
      "",
      "| bridge log event | count |",
      "|---|---:|",
      ...[...counts.entries()].sort((a, b) => b[1] - a[1]).slice(0, 10).map(([k, v]) =>
        `| ${k} | ${v} |`
      ),
    );
    console.log(out.join("\n"));
  } finally {
    await stopAll();
    Deno.removeSignalListener("SIGINT", onSignal);
    if (opts.keep) console.error(`soak: logs kept in ${dir}`);
    else await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
}

if (import.meta.main) {
  if (opts.role === "attackers") {
    await runAttackers(Number(opts.port));
    Deno.exit(0);
  } else {
    await main();
  }
}
