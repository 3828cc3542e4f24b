/**
 * Hostile HTTP/2 clients against the DoH face, measured, on loopback only:
 *
 * ```sh
 * deno run -A scripts/doh_attack.ts [--duration 5] [--attackers 4] [--phases latency,half-open,stall,tiny-data]
 *   [--bridge-root DIR] [--stall-connections 10] [--stall-waves 3] [--streams 128] [--observe 40]
 * ```
 *
 * Starts the test zone's DoH upstream and the bridge (`deno run -A <root>/src/deno/main.ts`, with
 * `--doh-idle-timeout 3s --doh-request-timeout 3s` and a local zone holding one ~59 KB TXT
 * answer) as a subprocess; `--bridge-root` runs another checkout's bridge (a worktree of an
 * older commit, for before and after figures). Then, by phase:
 *
 * - `latency`: a good client's query latency (sequential GETs over one HTTP/2 connection,
 *   `fetch`) for `--duration` seconds alone, while `--attackers` connections send HPACK bombs
 *   (16 KB header blocks that decode to ~48 MB: one 4 000-byte literal added to the dynamic
 *   table, then one-byte references to it), and while they send CONTINUATION floods. Each
 *   attacker reconnects when the bridge closes it.
 * - `half-open`: one stream opened (HEADERS without END_STREAM) and left silent: the time until
 *   the bridge closes that connection.
 * - `stall` (issue #19, finding 1): `--stall-connections` connections announce
 *   SETTINGS_INITIAL_WINDOW_SIZE 0, ask `--streams` GETs each for the 59 KB answer, then stay
 *   silent (reading what comes), in `--stall-waves` waves 5 s apart: the bridge's RSS before,
 *   at its peak and at the end, and how long each connection lived (watched for `--observe`
 *   seconds after the last wave). First, as a control, the same requests from connections that
 *   open their windows and read every answer: what answering them costs anyway.
 * - `tiny-data` (issue #19, finding 2): one connection opens `--streams` POST streams (no
 *   content-length) and feeds them one-byte DATA frames, round after round, 10 000 rounds
 *   (12.8 MB on the wire for 128 streams) or until the bridge closes it: RSS growth and when it
 *   was closed.
 *
 * The RSS is the bridge process's VmRSS (`/proc/<pid>/status`), sampled every 100 ms. The
 * results are markdown tables on stdout; everything stops by itself.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { uint32Bytes } from "../src/bytes/uint.ts";
import { Code, Flag, FrameType, Setting } from "../src/h2/frames.ts";
import { buildQuery } from "../src/dns/build_query.ts";
import { startDohUpstream } from "../test/support/doh_upstream.ts";
import { testPki } from "../test/support/pki.ts";
import { Block, frame, RawH2 } from "../test/support/raw_h2.ts";

const PHASES = ["latency", "half-open", "stall", "tiny-data"] as const;
type Phase = typeof PHASES[number];

const { values: opts } = parseArgs({
  args: Deno.args,
  options: {
    duration: { type: "string", default: "5" },
    attackers: { type: "string", default: "4" },
    phases: { type: "string", default: PHASES.join(",") },
    "bridge-root": { type: "string", default: new URL("..", import.meta.url).pathname },
    "stall-connections": { type: "string", default: "10" },
    "stall-waves": { type: "string", default: "3" },
    streams: { type: "string", default: "128" },
    observe: { type: "string", default: "40" },
  },
});
const DURATION_MS = Math.max(1, Math.min(60, Number(opts.duration))) * 1000;
const ATTACKERS = Math.max(1, Math.min(64, Number(opts.attackers)));
const STALL_CONNECTIONS = Math.max(1, Math.min(90, Number(opts["stall-connections"])));
const STREAMS = Math.max(1, Math.min(128, Number(opts.streams)));
const OBSERVE_MS = Math.max(1, Math.min(300, Number(opts.observe))) * 1000;
const STALL_WAVES = Math.max(1, Math.min(10, Number(opts["stall-waves"])));
/** Time between the waves of stalled connections. */
const STALL_WAVE_GAP_MS = 5_000;
const ROOT = opts["bridge-root"]!.replace(/\/?$/, "/");
const phases = new Set(opts.phases!.split(",").map((p) => p.trim()));
for (const p of phases) {
  if (!PHASES.includes(p as Phase)) throw new Error(`--phases: unknown phase ${p}`);
}
/** The bridge's request deadline and idle timeout (seconds), as the issue measured them. */
const TIMEOUT_S = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const b64url = (b: Uint8Array) => b.toBase64({ alphabet: "base64url", omitPadding: true });
const dnsPath = (name: string, type = 1) =>
  `/dns-query?dns=${b64url(buildQuery({ name, type, id: 0 }))}`;

const pki = await testPki();
const upstream = await startDohUpstream(pki);
const dir = await Deno.makeTempDir({ prefix: "dotbridge-attack-" });
await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
// One ~59 KB answer: 58 TXT records of four 250-octet strings.
const txt = "x".repeat(250);
await Deno.writeTextFile(
  `${dir}/zone.txt`,
  ["$TTL 300", "$ORIGIN example.test."].concat(
    Array.from({ length: 58 }, (_, i) => `big TXT "${i}${txt}" "${txt}" "${txt}" "${txt}"`),
  ).join("\n") + "\n",
);
const BIG_PATH = `/dns-query?dns=${
  b64url(buildQuery({ name: "big.example.test", type: 16, id: 0 }))
}`;
/** The bridge being measured, and its DoH port. */
let bridge: Deno.ChildProcess | undefined;
let port = 0;

/**
 * Starts a fresh bridge process (stopping the one before), waits until it answers, and fills
 * its cache (50 names and the big answer): each measured phase starts from the same state.
 */
async function freshBridge(): Promise<void> {
  await stopBridge();
  port = 20_000 + Math.floor(Math.random() * 20_000);
  bridge = new Deno.Command(Deno.execPath(), {
    args: [
      ...["run", "--v8-flags=--no-concurrent-array-buffer-sweeping,--heap-growing-percent=20"],
      ...["-A", `${ROOT}src/deno/main.ts`],
      ...["--listen", "127.0.0.1:0", "--http-listen", `127.0.0.1:${port}`, "--rate-limit", "0"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`, "--log-level", "warn"],
      ...["--upstream", upstream.url, "--upstream-ca", `${dir}/ca.pem`],
      ...["--doh-idle-timeout", `${TIMEOUT_S}s`, "--doh-request-timeout", `${TIMEOUT_S}s`],
      ...["--local-records", `${dir}/zone.txt`],
    ],
    cwd: ROOT,
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let i = 0; i < 200; i++) {
    try {
      await ask("warm.example.test");
      break;
    } catch {
      await sleep(100);
    }
  }
  for (let i = 0; i < 50; i++) await ask(`good${i}.example.test`);
  await ask("big.example.test", 16);
  await sleep(1_000);
}

async function stopBridge(): Promise<void> {
  if (!bridge) return;
  try {
    bridge.kill("SIGTERM");
  } catch { /* gone */ }
  await bridge.status;
  bridge = undefined;
}

/** The bridge process's resident set (MB). */
async function rssMb(): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${bridge!.pid}/status`);
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Samples the RSS every 100 ms until `done()` or `ms` passed; the largest sample (MB). */
async function peakRssUntil(done: () => boolean, ms: number): Promise<number> {
  let peak = await rssMb();
  const end = Date.now() + ms;
  while (!done() && Date.now() < end) {
    await sleep(100);
    peak = Math.max(peak, await rssMb());
  }
  return peak;
}

const client = Deno.createHttpClient({ caCerts: [pki.ca.certPem], http1: false, http2: true });

async function ask(name: string, type = 1): Promise<number> {
  const started = performance.now();
  const res = await fetch(`https://localhost:${port}${dnsPath(name, type)}`, {
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

/** A stream opened and left silent: how long until the bridge closes its connection. */
async function halfOpen(): Promise<string> {
  const h2 = await RawH2.open(port, pki.ca.certPem);
  const opened = Date.now();
  await h2.write(
    frame(FrameType.Headers, Flag.EndHeaders, 1, new Block().post("/dns-query", 33).bytes()),
  );
  await Promise.race([h2.closed, sleep(30_000)]);
  h2.close();
  return `half-open stream (HEADERS without END_STREAM, then silence): ${
    h2.closedAt === undefined
      ? "not closed within 30 s"
      : `connection closed by the bridge after ${((h2.closedAt - opened) / 1000).toFixed(2)} s`
  }${h2.frames.some((f) => f.type === FrameType.RstStream) ? " (stream reset first)" : ""}`;
}

const mb = (n: number) => n.toFixed(0);
const seconds = (ms: number) => (ms / 1000).toFixed(1);

/** Opens `STALL_CONNECTIONS` connections that each ask `STREAMS` GETs for the 59 KB answer. */
function openMany(settings: [number, number][], windowUpdate: number): Promise<RawH2[]> {
  const get = new Block().get(BIG_PATH).bytes();
  return Promise.all(Array.from({ length: STALL_CONNECTIONS }, async () => {
    const h2 = await RawH2.open(port, pki.ca.certPem, settings);
    const frames = Array.from(
      { length: STREAMS },
      (_, i) => frame(FrameType.Headers, Flag.EndHeaders | Flag.EndStream, 2 * i + 1, get),
    );
    if (windowUpdate > 0) {
      frames.push(frame(FrameType.WindowUpdate, 0, 0, uint32Bytes(windowUpdate)));
    }
    await h2.write(...frames);
    return h2;
  }));
}

/**
 * Finding 1: connections that announce a zero window, ask for big answers and go silent, in
 * `STALL_WAVES` waves `STALL_WAVE_GAP_MS` apart; first, as a control, the same requests from
 * clients that open their windows and read everything. The RSS, and how long the stalled
 * connections lived.
 */
async function stall(): Promise<string> {
  // Each row starts from a fresh bridge process.
  const out = [
    "| clients (59 KB answers) | RSS before MB | peak MB | at the end MB | connections closed by the bridge (lifetime) | open at the end | streams reset |",
    "| --- | ---: | ---: | ---: | --- | ---: | ---: |",
  ];
  // The control: windows open (1 MiB a stream, 16 MiB for the connection), every answer read.
  await freshBridge();
  let before = await rssMb();
  const readers = await openMany([[Setting.InitialWindowSize, 1 << 20]], 16 << 20);
  const answered = (c: RawH2) =>
    c.frames.filter((f) => f.type === FrameType.Data && f.flags & Flag.EndStream).length;
  let peak = await peakRssUntil(() => readers.every((c) => answered(c) === STREAMS), 30_000);
  const read = readers.reduce((n, c) => n + answered(c), 0);
  for (const c of readers) c.close();
  await sleep(TIMEOUT_S * 1_000);
  out.push(
    `| ${STALL_CONNECTIONS} × ${STREAMS} reading (control; ${read} answers read) | ${
      mb(before)
    } | ${mb(peak)} | ${mb(await rssMb())} | — | — | — |`,
  );

  await freshBridge();
  before = await rssMb();
  const conns: RawH2[] = [];
  const opened = new Map<RawH2, number>();
  peak = before;
  for (let wave = 0; wave < STALL_WAVES; wave++) {
    const at = Date.now();
    for (const c of await openMany([[Setting.InitialWindowSize, 0]], 0)) {
      conns.push(c);
      opened.set(c, at);
    }
    if (wave < STALL_WAVES - 1) {
      peak = Math.max(
        peak,
        await peakRssUntil(() => false, STALL_WAVE_GAP_MS),
      );
    }
  }
  peak = Math.max(
    peak,
    await peakRssUntil(() => conns.every((c) => c.closedAt !== undefined), OBSERVE_MS),
  );
  const lives = conns.filter((c) => c.closedAt !== undefined).map((c) =>
    c.closedAt! - opened.get(c)!
  );
  const resets = conns.reduce(
    (n, c) => n + c.frames.filter((f) => f.type === FrameType.RstStream).length,
    0,
  );
  const after = await rssMb();
  for (const c of conns) c.close();
  const lived = lives.length
    ? `${seconds(Math.min(...lives))}–${seconds(Math.max(...lives))} s`
    : "none";
  out.push(
    `| ${STALL_WAVES} waves of ${STALL_CONNECTIONS} × ${STREAMS} with a zero window, ${
      seconds(STALL_WAVE_GAP_MS)
    } s apart | ${mb(before)} | ${mb(peak)} | ${
      mb(after)
    } | ${lives.length} of ${conns.length} (${lived}) | ${conns.length - lives.length} (${
      seconds(OBSERVE_MS)
    } s after the last wave) | ${resets} |`,
  );
  return out.join("\n");
}

/**
 * Finding 2: one connection feeds `STREAMS` POST bodies one-byte DATA frames, 10 000 rounds or
 * until the bridge closes it. RSS growth and when it was closed.
 */
async function tinyData(): Promise<string> {
  const before = await rssMb();
  const h2 = await RawH2.open(port, pki.ca.certPem);
  const started = Date.now();
  const ids = Array.from({ length: STREAMS }, (_, i) => 2 * i + 1);
  // POST without content-length: the body's length is only known at its end.
  const post = new Block().indexed(3).indexed(7).literal(4, "/dns-query").literal(1, "localhost")
    .literal(31, "application/dns-message").bytes();
  await h2.write(...ids.map((id) => frame(FrameType.Headers, Flag.EndHeaders, id, post)));
  const ROUNDS = 10_000;
  const ROUNDS_PER_WRITE = 50;
  // One round: a one-byte DATA frame on each stream; a write carries ROUNDS_PER_WRITE of them.
  const round = new Uint8Array(STREAMS * 10);
  ids.forEach((id, i) => round.set(frame(FrameType.Data, 0, id, Uint8Array.of(0x61)), 10 * i));
  const batch = new Uint8Array(ROUNDS_PER_WRITE * round.length);
  for (let r = 0; r < ROUNDS_PER_WRITE; r++) batch.set(round, r * round.length);
  let frames = 0;
  let peak = before;
  const going = () => h2.closedAt === undefined && h2.goawayCode() === undefined;
  for (let r = 0; r < ROUNDS && going(); r += ROUNDS_PER_WRITE) {
    if (!await h2.write(batch)) break;
    frames += ROUNDS_PER_WRITE * STREAMS;
    if (r % 500 === 0) peak = Math.max(peak, await rssMb());
  }
  peak = Math.max(peak, await peakRssUntil(() => h2.closedAt !== undefined, 5_000));
  const closed = h2.closedAt;
  const code = h2.goawayCode();
  h2.close();
  const after = await rssMb();
  return [
    "| streams fed one-byte DATA frames | frames written (until GOAWAY or close) | bytes on the wire | RSS before MB | peak MB | growth MB | closed by the bridge after | GOAWAY |",
    "| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    `| ${STREAMS} | ${frames} | ${(frames * 10 / 1e6).toFixed(1)} MB | ${mb(before)} | ${
      mb(peak)
    } | ${mb(peak - before)} | ${
      closed === undefined ? "not closed" : `${seconds(closed - started)} s`
    } | ${code === undefined ? "none" : CODE_NAMES[code] ?? code} |`,
    `\n(${mb(after)} MB once the connection was gone)`,
  ].join("\n");
}

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
  console.log(
    `bridge: ${ROOT}src/deno/main.ts (--doh-request-timeout ${TIMEOUT_S}s, --doh-idle-timeout ${TIMEOUT_S}s)\n`,
  );
  if (phases.has("latency")) {
    await freshBridge();
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
    console.log(rows.join("\n") + "\n");
  }
  if (phases.has("half-open")) {
    await freshBridge();
    console.log(await halfOpen() + "\n");
  }
  if (phases.has("stall")) console.log(await stall() + "\n");
  if (phases.has("tiny-data")) {
    await freshBridge();
    console.log(await tinyData() + "\n");
  }
} finally {
  client.close();
  await stopBridge();
  await upstream.close();
  await Deno.remove(dir, { recursive: true });
}
