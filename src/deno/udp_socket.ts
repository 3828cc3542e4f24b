/**
 * The runtime side of a `udp://` upstream: a {@linkcode DatagramOpener} over
 * `Deno.listenDatagram` (the `net` unstable API, on in `deno.json`), one socket per query on a
 * port the kernel picks at random.
 *
 * @module
 */
import type { Datagram, DatagramOpener, DatagramSocket } from "../upstream/udp.ts";

/** The largest datagram read (a DNS message over UDP is at most 65 535 bytes). */
const MAX_DATAGRAM = 65_535;

/**
 * Creates the opener of plain UDP upstreams: each socket bound to the wildcard address of the
 * target's family on an ephemeral port, sending to the target alone.
 *
 * @example
 * ```ts
 * const upstream = new UdpUpstream({ hostname: "192.168.1.1", open: createDatagramOpener() });
 * ```
 */
export function createDatagramOpener(): DatagramOpener {
  return (target) => {
    const v6 = target.hostname.includes(":");
    const conn = Deno.listenDatagram({
      transport: "udp",
      hostname: v6 ? "::" : "0.0.0.0",
      port: 0,
    });
    const to: Deno.NetAddr = { transport: "udp", hostname: target.hostname, port: target.port };
    let closed = false;
    const socket: DatagramSocket = {
      async send(data) {
        await conn.send(data, to);
      },
      async receive(): Promise<Datagram> {
        const [data, from] = await conn.receive(new Uint8Array(MAX_DATAGRAM));
        const addr = from as Deno.NetAddr;
        return { data: data.slice(), from: { hostname: addr.hostname, port: addr.port } };
      },
      close() {
        if (closed) return;
        closed = true;
        try {
          conn.close();
        } catch {
          // already closed
        }
      },
    };
    return socket;
  };
}
