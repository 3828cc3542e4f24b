/**
 * A pipelined GET loop through `H1ServerConnection.receive()` in-process: no sockets, a handler
 * that answers at once, and a write that completes at once, so the figure is the connection's
 * own cost per request (parse, dispatch, reply, batching). Not a test; run it by hand:
 *
 *     deno run -A test/h1/bench_receive.ts [requests per read, default 16] [requests, default 300000]
 */
import { H1ServerConnection } from "../../src/h1/server.ts";
import type { ServerReply } from "../../src/serve/exchange.ts";

const GET = "GET /dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB HTTP/1.1\r\n" +
  "Host: localhost:8443\r\nUser-Agent: curl/8.14.1\r\nAccept: application/dns-message\r\n\r\n";
const reply: ServerReply = {
  status: 200,
  headers: [["content-type", "application/dns-message"], ["cache-control", "max-age=300"]],
  body: new Uint8Array(64),
};

async function run(perRead: number, total: number): Promise<number> {
  let replies = 0;
  let wake: (() => void) | undefined;
  const connection = new H1ServerConnection(
    {
      write: (bytes) => {
        // Each reply ends with the 64-byte body; count status lines.
        for (let i = 0; i + 4 < bytes.length; i++) {
          if (bytes[i] === 0x48 && bytes[i + 1] === 0x54 && bytes[i + 4] === 0x2f) replies++;
        }
        wake?.();
        return Promise.resolve();
      },
      close() {},
    },
    () => Promise.resolve(reply),
    { date: false },
  );
  const chunk = new TextEncoder().encode(GET.repeat(perRead));
  const started = performance.now();
  for (let sent = 0; sent < total;) {
    connection.receive(chunk);
    sent += perRead;
    while (replies < sent) await new Promise<void>((resolve) => (wake = resolve));
  }
  const ms = performance.now() - started;
  connection.destroy();
  return ms;
}

const perRead = Number(Deno.args[0] ?? 16);
const total = Number(Deno.args[1] ?? 300_000);
await run(perRead, 100_000); // warm-up
const runs: number[] = [];
for (let i = 0; i < 5; i++) runs.push(await run(perRead, total));
const median = runs.sort((a, b) => a - b)[2];
console.log(
  `${perRead} request(s) per read: ${Math.round(total / median * 1000)} req/s, ` +
    `${(median * 1000 / total).toFixed(2)} µs/request (median of 5 × ${total})`,
);
