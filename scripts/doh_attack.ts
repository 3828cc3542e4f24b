/**
 * Hostile HTTP/2 clients against the DoH face, measured, on loopback only:
 *
 * ```sh
 * deno run -A scripts/doh_attack.ts [--duration 5] [--attackers 4]
 * ```
 *
 * Starts the test zone's DoH upstream and the bridge (`deno run -A src/deno/main.ts`, default
 * options) as a subprocess, then measures a good client's query latency (sequential GETs over
 * one HTTP/2 connection, `fetch`) in phases of `--duration` seconds: alone, while `--attackers`
 * connections send HPACK bombs (16 KB header blocks that decode to ~48 MB: one 4 000-byte
 * literal added to the dynamic table, then one-byte references to it), and while they send
 * CONTINUATION floods. Each attacker reconnects when the bridge closes it. Last, one stream is
 * opened (HEADERS without END_STREAM) and left silent: the time until the bridge closes that
 * connection (the default `--doh-request-timeout` is 10 s). The result is a markdown table on
 * stdout; everything stops by itself.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { Code, Flag, FrameType } from "../src/h2/frames.ts";
import { buildQuery } from "../src/dns/build_query.ts";
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";
import { Block, frame, RawH2 } from "../test/support/raw_h2.ts";

const { values: opts } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "5" },
    attackers: { type: "string", default: "4" },
  },
});
const DURATION_MS = Math.max(1, Math.min(60, Number(opts.duration))) * 1000;
const ATTACKERS = Math.max(1, Math.min(64, Number(opts.attackers)));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64url = (b: Uint8Array) => b.toBase64({ alphabet: "base64url", omitPadding: true });
const dnsPath = (name: string) => `/dns-query?dns=${b64url(buildQuery({ name, type: 1, id: 0 }))}`;

const pki = await testPki();
const upstream = await startDohUpstream(pki);
const dir = await Deno.makeTempDir({ prefix: "dotbridge-attack-" });
await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
const port = 20_000 + Math.floor(Math.random() * 20_000);
const bridge = new Deno.Command(Deno.execPath(), {
  args: [
    ...["run", "--v8-flags=--no-concurrent-array-buffer-sweeping,--heap-growing-percent=20", "-A"],
    new URL("../src/deno/main.ts", import.meta.url).pathname,
    ...["--listen", "127.0.0.1:0", "--http-listen", `127.0.0.1:${port}`, "--rate-limit", "0"],
    ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`, "--log-level", "warn"],
    ...["--upstream", upstream.url, "--upstream-ca", `${dir}/ca.pem`],
  ],
  stdout: "null",
  stderr: "null",
}).spawn();

const client = Deno.createHttpClient({ caCerts: [pki.ca.certPem], http1: false, http2: true });

async function ask(name: string): Promise<number> {
  const started = performance.now();
  const res = await fetch(`https://localhost:${port}${dnsPath(name)}`, {
    client,
    signal: AbortSignal.timeout(10_000),
  });
  await res.arrayBuffer();
  if (res.status !== 200) throw new Error(`status ${res.status}`);
  return performance.now() - started;
}

/** The good client's latencies (ms) over `ms`, one query after another over 50 cached names. */
async function goodClient(ms: number): Promise<{ times: number[]; failed: number }> {
  const times: number[] = [];
  let failed = 0;
  const end = Date.now() + ms;
  for (let i = 0; Date.now() < end; i++) {
    try {
      times.push(await ask(`good${i % 50}.example.test`));
    } catch {
      failed++;
    }
  }
  return { times, failed };
}

function bombBlock(): Uint8Array {
  const head = new Block().get(dnsPath("bomb.example.test"))
    .indexedLiteral("x-b", "a".repeat(4_000)).bytes();
  const out = new Uint8Array(16_000).fill(0x80 | 62);
  out.set(head);
  return out;
}

interface AttackStats {
  connections: number;
  closedByServer: number;
  goaways: Map<number, number>;
}

/** Attacker connections sending `payload(id)` until `stop`; each is reopened when closed. */
async function attack(
  kind: "bomb" | "continuation",
  stop: Promise<void>,
  stats: AttackStats,
): Promise<void> {
  let stopped = false;
  stop.then(() => (stopped = true));
  const bomb = bombBlock();
  const head = new Block().get(dnsPath("flood.example.test")).bytes();
  while (!stopped) {
    const h2 = await RawH2.open(port, pki.ca.certPem);
    stats.connections++;
    if (kind === "continuation") await h2.write(frame(FrameType.Headers, 0, 1, head));
    for (let id = 1; !stopped && h2.closedAt === undefined; id += 2) {
      const sent = kind === "bomb"
        ? await h2.write(frame(FrameType.Headers, Flag.EndHeaders | Flag.EndStream, id, bomb))
        : await h2.write(
          ...Array.from({ length: 100 }, () => frame(FrameType.Continuation, 0, 1)),
        );
      if (!sent) break;
      await sleep(0);
    }
    await Promise.race([h2.closed, sleep(1_000)]);
    if (h2.closedAt !== undefined) stats.closedByServer++;
    const code = h2.goawayCode();
    if (code !== undefined) stats.goaways.set(code, (stats.goaways.get(code) ?? 0) + 1);
    h2.close();
  }
}

function pct(sorted: number[], p: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] : NaN;
}

const CODE_NAMES: Record<number, string> = {
  [Code.NoError]: "NO_ERROR",
  [Code.ProtocolError]: "PROTOCOL_ERROR",
  [Code.CompressionError]: "COMPRESSION_ERROR",
  [Code.EnhanceYourCalm]: "ENHANCE_YOUR_CALM",
};

const rows: string[] = [
  "| phase | good client p50 ms | p99 ms | max ms | answered | failed | hostile connections (closed by the bridge) | GOAWAY codes |",
  "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
];
function row(phase: string, good: { times: number[]; failed: number }, stats?: AttackStats) {
  const sorted = [...good.times].sort((a, b) => a - b);
  const f = (n: number) => n.toFixed(2);
  const hostile = stats ? `${stats.connections} (${stats.closedByServer})` : "—";
  const codes = stats
    ? [...stats.goaways].map(([c, n]) => `${CODE_NAMES[c] ?? c} ×${n}`).join(", ") || "none"
    : "—";
  rows.push(
    `| ${phase} | ${f(pct(sorted, 0.5))} | ${f(pct(sorted, 0.99))} | ${
      f(sorted.at(-1) ?? NaN)
    } | ` +
      `${sorted.length} | ${good.failed} | ${hostile} | ${codes} |`,
  );
}

try {
  for (let i = 0; i < 100; i++) {
    try {
      await ask("warm.example.test");
      break;
    } catch {
      await sleep(100);
    }
  }
  for (let i = 0; i < 50; i++) await ask(`good${i}.example.test`); // fill the cache
  row("alone", await goodClient(DURATION_MS));
  for (const kind of ["bomb", "continuation"] as const) {
    const stats: AttackStats = { connections: 0, closedByServer: 0, goaways: new Map() };
    let release!: () => void;
    const stop = new Promise<void>((r) => (release = r));
    const attackers = Array.from({ length: ATTACKERS }, () => attack(kind, stop, stats));
    await sleep(200);
    const good = await goodClient(DURATION_MS);
    release();
    await Promise.all(attackers);
    const label = kind === "bomb" ? "HPACK bombs" : "CONTINUATION floods";
    row(`${ATTACKERS} connections sending ${label}`, good, stats);
  }
  // A stream opened and left silent.
  const h2 = await RawH2.open(port, pki.ca.certPem);
  const opened = Date.now();
  await h2.write(
    frame(FrameType.Headers, Flag.EndHeaders, 1, new Block().post("/dns-query", 33).bytes()),
  );
  await Promise.race([h2.closed, sleep(30_000)]);
  h2.close();
  console.log(rows.join("\n"));
  console.log(
    `\nhalf-open stream (HEADERS without END_STREAM, then silence): ${
      h2.closedAt === undefined
        ? "not closed within 30 s"
        : `connection closed by the bridge after ${((h2.closedAt - opened) / 1000).toFixed(2)} s`
    }${h2.frames.some((f) => f.type === FrameType.RstStream) ? " (stream reset first)" : ""}`,
  );
} finally {
  client.close();
  try {
    bridge.kill("SIGTERM");
  } catch { /* gone */ }
  await bridge.status;
  await upstream.close();
  await Deno.remove(dir, { recursive: true });
}
