/**
 * A bare TLS echo server, for the floor of what one idle connection costs on each of Deno's TLS
 * servers, without the bridge: `node:tls` (the default DoT listener's) or `Deno.listenTls` (the
 * native one's). It answers every read with the same bytes, the QR bit set (enough for
 * `idle_clients.ts`, which sends one query and waits for one answer).
 *
 * Usage: `deno run -A scripts/bench/bare_tls_server.ts node|native PORT CERT KEY`
 *
 * @module
 */
import tls from "node:tls";

const [kind, port, certPath, keyPath] = Deno.args;
const cert = Deno.readTextFileSync(certPath);
const key = Deno.readTextFileSync(keyPath);
const answer = (q: Uint8Array) => {
  const a = q.slice();
  if (a.length > 4) a[4] |= 0x80; // past the 2-byte length: the header's QR bit
  return a;
};

if (kind === "native") {
  const listener = Deno.listenTls({ hostname: "127.0.0.1", port: Number(port), cert, key });
  console.log("up");
  for await (const conn of listener) {
    (async () => {
      const buf = new Uint8Array(512);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        await conn.write(answer(buf.subarray(0, n)));
      }
    })().catch(() => conn.close());
  }
} else if (kind === "node") {
  const server = tls.createServer({ cert, key }, (socket) => {
    socket.on("data", (chunk: Uint8Array) => socket.write(answer(chunk)));
    socket.on("error", () => socket.destroy());
  });
  server.listen(Number(port), "127.0.0.1", () => console.log("up"));
} else {
  console.error("usage: bare_tls_server.ts node|native PORT CERT KEY");
  Deno.exit(2);
}
