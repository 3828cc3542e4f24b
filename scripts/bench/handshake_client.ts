/**
 * The handshake-rate load client: `--concurrency` workers, each in a loop opening a new TLS
 * connection to a DoT server (TCP connect, a full TLS handshake: no session is ever resumed),
 * sending one query, reading the answer and closing, for `--seconds`. Prints one JSON line on
 * stdout ({@linkcode HandshakeClientReport}): connections completed, failures by reason, and
 * each completed connection's time in µs.
 *
 * Usage: `deno run -A scripts/bench/handshake_client.ts --port 8853 --seconds 10 [--tls node]`
 *
 * `--tls deno` (the default) uses `Deno.startTls` on a TCP_NODELAY socket, which verifies the
 * certificate (`--ca` required); `--tls node` uses `node:tls` without verification. Which is
 * used and why: see scripts/bench/handshake.ts.
 *
 * @module
 */
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { parseArgs } from "node:util";
import { encodeFrames } from "../../src/framing/codec.ts";
import { encodeQuery } from "./configs.ts";
import type { HandshakeClientReport } from "./handshake.ts";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    ca: { type: "string" },
    concurrency: { type: "string", default: "16" },
    seconds: { type: "string", default: "10" },
    name: { type: "string", default: "h1.bench.test." },
    tls: { type: "string", default: "deno" },
    timeout: { type: "string", default: "5" },
  },
});

const port = Number(values.port);
const concurrency = Number(values.concurrency);
const runMs = Number(values.seconds) * 1000;
const timeoutMs = Number(values.timeout) * 1000;
if (!port || !(concurrency > 0) || !(runMs > 0) || (values.tls === "deno" && !values.ca)) {
  console.error(
    "usage: handshake_client.ts --port P --seconds S [--concurrency C] [--tls node|deno --ca CA]",
  );
  Deno.exit(2);
}
const caPem = values.ca ? Deno.readTextFileSync(values.ca) : undefined;
const frame = encodeFrames([encodeQuery(values.name, 1, 0x0101)]);

/** True when `buf[0..got)` holds one whole length-prefixed answer with rcode NOERROR. */
function wholeAnswer(buf: Uint8Array, got: number): boolean | undefined {
  if (got < 2 || got < 2 + ((buf[0] << 8) | buf[1])) return undefined;
  return got >= 6 && (buf[5] & 0x0f) === 0;
}

/** One connection over `Deno.startTls` (rustls; the certificate is verified). */
async function viaDeno(): Promise<void> {
  const tcp = await Deno.connect({ hostname: values.host, port });
  // Deno.TlsConn has no setNoDelay, and without it the query waits behind the client's
  // Finished for the server's delayed ACK (~40 ms): start TLS on a TCP_NODELAY socket.
  tcp.setNoDelay(true);
  const conn = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [caPem!] });
  try {
    await conn.write(frame);
    const buf = new Uint8Array(1024);
    let got = 0;
    let whole: boolean | undefined;
    while ((whole = wholeAnswer(buf, got)) === undefined) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) throw new Error("closed before the answer");
      got += n;
    }
    if (!whole) throw new Error("answer not NOERROR");
  } finally {
    conn.close();
  }
}

/** One connection over `node:tls` (no verification, no session reuse: a full handshake). */
function viaNode(): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = tlsConnect({
      host: values.host,
      port,
      servername: "localhost",
      rejectUnauthorized: false,
    });
    const buf = new Uint8Array(1024);
    let got = 0;
    const fail = (e: Error) => {
      socket.destroy();
      reject(e);
    };
    socket.setNoDelay(true);
    socket.once("secureConnect", () => socket.write(frame));
    socket.on("data", (chunk: Uint8Array) => {
      buf.set(chunk.subarray(0, buf.length - got), got);
      got = Math.min(buf.length, got + chunk.length);
      const whole = wholeAnswer(buf, got);
      if (whole === undefined) return;
      socket.destroy();
      if (whole) resolve();
      else reject(new Error("answer not NOERROR"));
    });
    socket.once("error", fail);
    socket.once("end", () => fail(new Error("closed before the answer")));
  });
}

const once = values.tls === "deno" ? viaDeno : viaNode;
const timesUs: number[] = [];
const errors: Record<string, number> = {};
let failed = 0;
const started = performance.now();
const endAt = started + runMs;

async function worker(): Promise<void> {
  while (performance.now() < endAt) {
    const t0 = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([
        once(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      const t1 = performance.now();
      // Only connections that ended inside the run count (the last ones may end after it).
      if (t1 <= endAt) timesUs.push(Math.round((t1 - t0) * 1000));
    } catch (e) {
      if (performance.now() > endAt) break;
      failed++;
      const key = (e as Error).message.slice(0, 120);
      errors[key] = (errors[key] ?? 0) + 1;
    } finally {
      clearTimeout(timer);
    }
  }
}

await Promise.all(Array.from({ length: concurrency }, worker));
const report: HandshakeClientReport = {
  seconds: runMs / 1000,
  completed: timesUs.length,
  failed,
  errors,
  timesUs,
};
console.log(JSON.stringify(report));
Deno.exit(0);
