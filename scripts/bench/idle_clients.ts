/**
 * Holds many idle DoT connections open to one server, for the connection-scale run.
 *
 * Each connection completes its TLS handshake (certificate verified against `--ca`), sends one
 * query and reads the answer (so the server has set up a whole session), then stays idle.
 * Prints JSON lines on stdout: `{"event":"progress",...}` and, once every attempt has finished,
 * `{"event":"ready","open":N,"failed":M,"errors":{...},"ms":T}`. Exits by itself after
 * `--hold` seconds, or when killed.
 *
 * Usage: `deno run -A scripts/bench/idle_clients.ts --port 8853 --ca ca.pem --count 5000`
 *
 * @module
 */
import { parseArgs } from "node:util";
import { encodeFrames } from "../../src/framing/codec.ts";
import { encodeQuery } from "./configs.ts";

const { values } = parseArgs({
  options: {
    host: { type: "string", default: "127.0.0.1" },
    port: { type: "string" },
    ca: { type: "string" },
    count: { type: "string", default: "5000" },
    concurrency: { type: "string", default: "100" },
    hold: { type: "string", default: "120" },
    name: { type: "string", default: "h1.bench.test." },
  },
});

const port = Number(values.port);
const count = Number(values.count);
const concurrency = Number(values.concurrency);
const holdMs = Number(values.hold) * 1000;
if (!port || !values.ca || !count) {
  console.error("usage: idle_clients.ts --port P --ca CA.pem --count N [--concurrency C]");
  Deno.exit(2);
}
const caPem = Deno.readTextFileSync(values.ca);
const frame = encodeFrames([encodeQuery(values.name, 1, 0x0101)]);

const conns: Deno.TlsConn[] = [];
const errors: Record<string, number> = {};
let failed = 0;
let next = 0;
const started = performance.now();

function emit(event: Record<string, unknown>): void {
  console.log(JSON.stringify(event));
}

async function openOne(): Promise<void> {
  const conn = await Deno.connectTls({ hostname: values.host, port, caCerts: [caPem] });
  try {
    await conn.handshake();
    await conn.write(frame);
    const buf = new Uint8Array(1024);
    let got = 0;
    while (got < 2 || got < 2 + ((buf[0] << 8) | buf[1])) {
      const n = await conn.read(buf.subarray(got));
      if (n === null) throw new Error("closed before the answer");
      got += n;
    }
    conns.push(conn);
  } catch (e) {
    conn.close();
    throw e;
  }
}

async function worker(): Promise<void> {
  while (next < count) {
    next++;
    try {
      await openOne();
    } catch (e) {
      failed++;
      const key = (e as Error).message.slice(0, 120);
      errors[key] = (errors[key] ?? 0) + 1;
    }
    const done = conns.length + failed;
    if (done % 1000 === 0) emit({ event: "progress", open: conns.length, failed });
  }
}

const deadline = setTimeout(() => Deno.exit(0), holdMs);
await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
emit({
  event: "ready",
  open: conns.length,
  failed,
  errors,
  ms: Math.round(performance.now() - started),
});
// Stay idle (the deadline timer keeps the process alive and ends it).
void deadline;
