/**
 * The cached DoH face's CPU per request without TLS or sockets, in one process: the face handler
 * alone (`src/http/face.ts` over the built resolver with its cache and metrics, ten GETs at a
 * time), then the HTTP/2 server (`src/h2/server.ts`) with it, over 16 in-memory pushing sockets
 * fed ten GET HEADERS frames per read, as h2load -c 16 -m 10 sends them. Process CPU time
 * (all threads, so GC helpers too) per answered request, three rounds each; compare with the
 * bench's CPU µs per request, which adds TLS, node's streams, the event loop and the kernel.
 *
 * The requests' `:path` is a raw literal (h2load Huffman-codes it), so HPACK decoding costs a
 * little less here.
 *
 * ```sh
 * deno run -A --config test/deno.json \
 *   --v8-flags=--no-concurrent-array-buffer-sweeping,--heap-growing-percent=20 \
 *   scripts/bench/doh_inprocess.ts
 * ```
 *
 * @module
 */
import { concatBytes } from "../../src/bytes/concat.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { H2ServerConnection } from "../../src/h2/server.ts";
import { createDohApp } from "../../src/http/app.ts";
import { dohFaceHandler } from "../../src/http/face.ts";
import { createBridgeMetrics } from "../../src/metrics/bridge.ts";
import { queryObserver } from "../../src/metrics/observer.ts";
import { resolverHooks } from "../../src/metrics/resolver_hooks.ts";
import { buildResolver, upstreamsFrom } from "../../src/resolver/build.ts";
import { createProcessor } from "../../src/resolver/processor.ts";
import type { ServerRequest } from "../../src/serve/exchange.ts";
import { encodeFrame } from "../../test/support/byte_pipe.ts";
import { Block } from "../../test/support/raw_h2.ts";
import { answerFromZone } from "../../test/support/zone.ts";
import { dohGetPath, encodeQuery } from "./configs.ts";

const HEADERS = 1, SETTINGS = 4, WINDOW_UPDATE = 8;
const END_STREAM_AND_HEADERS = 5;
const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/** This process's CPU time (user + system, all threads), in ms. */
function cpuMs(): number {
  const f = Deno.readTextFileSync("/proc/self/stat").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const parsed = parseConfig({
  args: ["--upstream", "https://dns.test/dns-query", "--cache", "--cache-size", "100000"],
  env: {},
});
if (parsed.help) throw new Error("unexpected --help");
const metrics = createBridgeMetrics();
const transport = (request: { body?: Uint8Array }) =>
  Promise.resolve({
    status: 200,
    contentType: "application/dns-message",
    body: new Uint8Array(answerFromZone(request.body!)),
  });
const resolver = buildResolver(parsed.config, {
  upstreamFor: upstreamsFrom({
    doh: () => transport,
    dot: () => () => Promise.reject(new Error("no DoT here")),
  }),
  ...resolverHooks(metrics),
});
const process = createProcessor({
  handler: resolver.handler,
  observer: queryObserver(metrics, resolver.tenantLabel),
});
const handle = dohFaceHandler({
  app: createDohApp({ process }),
  fast: { process, path: "/dns-query" },
});
const paths = Array.from(
  { length: 300 },
  (_, i) => dohGetPath(encodeQuery(`name${i}.example.test`)),
);
const request = (path: string): ServerRequest => ({
  method: "GET",
  path,
  authority: "127.0.0.1:443",
  headers: [["accept", "application/dns-message"], ["user-agent", "h2load nghttp2/1.52.0"]],
  body: undefined,
  signal: new AbortController().signal,
});
for (const path of paths) { // the cache fill
  const reply = await handle(request(path), "127.0.0.1");
  if (reply.status !== 200) throw new Error(`${path}: HTTP ${reply.status}`);
}

const N = 192_000;
for (let round = 0; round < 3; round++) {
  const t = cpuMs();
  for (let i = 0; i < N; i += 10) {
    const batch = [];
    for (let k = 0; k < 10; k++) batch.push(handle(request(paths[(i + k) % 300]), "127.0.0.1"));
    await Promise.all(batch);
  }
  console.log(`face handler: ${((cpuMs() - t) * 1000 / N).toFixed(2)} CPU µs per request`);
}

let answered = 0;
const connections = Array.from({ length: 16 }, () => {
  const socket = { write: () => Promise.resolve(), close() {} };
  const connection = new H2ServerConnection(socket, (r) =>
    handle(r, "127.0.0.1").then((reply) => {
      answered++;
      return reply;
    }));
  connection.receive(PREFACE);
  // The client's windows as h2load's: large, so no answer waits for WINDOW_UPDATE.
  connection.receive(encodeFrame(SETTINGS, 0, 0, Uint8Array.of(0, 4, 0x40, 0, 0, 0)));
  connection.receive(encodeFrame(WINDOW_UPDATE, 0, 0, Uint8Array.of(0x7f, 0xff, 0, 0)));
  return { connection, next: 1 };
});
await new Promise((r) => setTimeout(r, 10));
// 30 reads of ten GETs (the 300 names); stream IDs are patched in before each is fed.
const blocks = paths.map((p) => new Block().get(p).bytes());
const reads = Array.from({ length: 30 }, (_, t) => {
  const frames = blocks.slice(t * 10, t * 10 + 10).map((b) =>
    encodeFrame(HEADERS, END_STREAM_AND_HEADERS, 1, b)
  );
  const offsets = frames.map((_, k) => frames.slice(0, k).reduce((n, f) => n + f.length, 0));
  return { bytes: concatBytes(frames), offsets };
});
for (let round = 0; round < 3; round++) {
  const t = cpuMs();
  const start = answered;
  let j = 0;
  for (let b = 0; b < N / 160; b++) {
    for (const c of connections) {
      const read = reads[j++ % reads.length];
      for (const at of read.offsets) {
        const id = c.next;
        c.next += 2;
        read.bytes[at + 5] = (id >>> 24) & 0x7f;
        read.bytes[at + 6] = (id >>> 16) & 0xff;
        read.bytes[at + 7] = (id >>> 8) & 0xff;
        read.bytes[at + 8] = id & 0xff;
      }
      c.connection.receive(read.bytes);
    }
    await new Promise((r) => setTimeout(r, 0));
  }
  for (let w = 0; w < 200 && answered - start < N; w++) {
    await new Promise((r) => setTimeout(r, 1));
  }
  const n = answered - start;
  console.log(
    `HTTP/2 server and face handler: ${
      ((cpuMs() - t) * 1000 / n).toFixed(2)
    } CPU µs per request (${n} answered)`,
  );
}
for (const c of connections) c.connection.destroy();
Deno.exit(0);
