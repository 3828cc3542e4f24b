/**
 * The runtime's floor for plain DNS over UDP: a bare `Deno.listenDatagram` loop that answers
 * each datagram with its header flipped to a response (QR set), doing no DNS work at all. It
 * reads the way the bridge's face does (one receive at a time into one reused buffer, the
 * datagram copied out, the send not awaited), so the bridge's plain-DNS rows can be set against
 * it: what is left between them is the bridge's own work.
 *
 * Usage: `deno run -A scripts/bench/bare_udp_server.ts PORT` (0: any; prints the port)
 *
 * @module
 */

import { UDP_QUERY_BUFFER, UDP_RECEIVERS } from "../../src/deno/dns_listener.ts";

const port = Number(Deno.args[0] ?? 0);
const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port });
console.log((socket.addr as Deno.NetAddr).port);
Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
Deno.addSignalListener("SIGINT", () => Deno.exit(0));
const ignore = () => {};
async function receiveLoop(): Promise<void> {
  const buf = new Uint8Array(UDP_QUERY_BUFFER);
  for (;;) {
    const [data, addr] = await socket.receive(buf);
    if (data.length < 12) continue;
    const answer = data.slice();
    answer[2] |= 0x80;
    socket.send(answer, addr).catch(ignore);
  }
}
await Promise.all(Array.from({ length: UDP_RECEIVERS }, receiveLoop));
