/**
 * A bare DoQ echo on Deno's QUIC API, the runtime's floor for the DoQ face: the same endpoint
 * and TLS set-up as `src/deno/doq_listener.ts` (ALPN `doq`, 100 concurrent bidirectional streams,
 * no unidirectional ones), and per stream only what any DoQ server must do with Deno's API: read
 * the stream to its FIN with one BYOB reader into a small buffer, check the 2-byte length, and
 * write back a valid answer (the query's header and question with QR and RA set and one fixed A
 * record, 192.0.2.1, pointing at the question's name) with one `write` holding length and message,
 * then close the write side. No DNS work beyond finding the question's end, no bounds, no
 * deadlines.
 *
 * Usage: `deno run -A scripts/bench/bare_quic_server.ts PORT CERT KEY` (prints `up` when bound).
 *
 * @module
 */

const [port, certPath, keyPath] = Deno.args;
const cert = Deno.readTextFileSync(certPath);
const key = Deno.readTextFileSync(keyPath);

/** One A record: name pointer to offset 12, type A, class IN, TTL 300, 4 bytes, 192.0.2.1. */
const RECORD = Uint8Array.of(0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1);

/**
 * The framed answer for a framed query (`stream` = 2-byte length + message): its header and
 * question (anything after the question, an OPT record say, is left out) and the record.
 */
function answer(stream: Uint8Array): Uint8Array | undefined {
  if (stream.byteLength < 14 || ((stream[0] << 8) | stream[1]) !== stream.byteLength - 2) return;
  let end = 14; // past the length and the header: the question's name, then type and class
  while (end < stream.byteLength && stream[end] !== 0) end += 1 + stream[end];
  end += 5;
  if (end > stream.byteLength) return;
  const out = new Uint8Array(end + RECORD.byteLength);
  out.set(stream.subarray(0, end));
  out.set(RECORD, end);
  const length = out.byteLength - 2;
  out[0] = length >> 8;
  out[1] = length & 0xff;
  out[4] |= 0x80; // QR
  out[5] |= 0x80; // RA
  out[9] = 1; // ANCOUNT = 1
  out[11] = out[13] = 0; // NSCOUNT, ARCOUNT: nothing past the record
  return out;
}

async function serveStream(stream: Deno.QuicBidirectionalStream): Promise<void> {
  // A BYOB reader into one small buffer: the default reader allocates a 64 KiB chunk per read.
  const reader = stream.readable.getReader({ mode: "byob" });
  let buf = new Uint8Array(512);
  let have = 0;
  for (;;) {
    if (have === buf.byteLength) {
      const bigger = new Uint8Array(buf.byteLength * 2);
      bigger.set(buf);
      buf = bigger;
    }
    const { value, done } = await reader.read(buf.subarray(have));
    if (value) buf = new Uint8Array(value.buffer); // the read transferred the buffer
    if (done) break;
    have += value.byteLength;
  }
  const framed = answer(buf.subarray(0, have));
  const writer = stream.writable.getWriter();
  if (framed) writer.write(framed).catch(() => {});
  await writer.close();
}

async function serveConnection(incoming: Deno.QuicIncoming): Promise<void> {
  const conn = await incoming.accept();
  const streams = conn.incomingBidirectionalStreams.getReader();
  for (;;) {
    const { value, done } = await streams.read();
    if (done) break;
    serveStream(value).catch(() => {});
  }
}

const endpoint = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: Number(port) });
const listener = endpoint.listen({
  cert,
  key,
  alpnProtocols: ["doq"],
  maxIdleTimeout: 10_000,
  maxConcurrentBidirectionalStreams: 100,
  maxConcurrentUnidirectionalStreams: 0,
});
console.log("up");
for await (const incoming of listener) serveConnection(incoming).catch(() => {});
