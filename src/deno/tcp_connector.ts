/**
 * The runtime side of a `tcp://` upstream (plain DNS over TCP, RFC 7766): a
 * {@linkcode StreamConnector} over `node:net`, with TCP_NODELAY.
 *
 * @module
 */
import net from "node:net";
import { abortable } from "../async/abortable.ts";
import type { StreamConnector } from "../upstream/stream.ts";
import { wrapSocket } from "./socket_stream.ts";
import { urlHost } from "../upstream/dot_url.ts";

/** Options of {@linkcode createTcpConnector}. */
export interface TcpConnectorOptions {
  /** Bytes buffered from the server before the socket is paused (backpressure). Default 64 KiB. */
  readHighWaterMark?: number;
  /** `close()` waits this long for the server's FIN before dropping the socket. Default 2000 ms. */
  closeGraceMs?: number;
}

/**
 * Creates the connector of plain TCP upstreams: `node:net` to the target's address, no-delay
 * set (each frame batch is one write; see docs/platform-notes.md on Nagle). `servername` is not
 * used (there is nothing to authenticate). A failure rejects with an `Error` naming the address.
 *
 * @example
 * ```ts
 * const upstream = new DotUpstream({ hostname: "192.168.1.1", port: 53, name: "tcp://192.168.1.1:53",
 *   connect: createTcpConnector() });
 * ```
 */
export function createTcpConnector(options: TcpConnectorOptions = {}): StreamConnector {
  const highWaterMark = options.readHighWaterMark ?? 64 * 1024;
  const graceMs = options.closeGraceMs ?? 2_000;
  return async (target) => {
    target.signal.throwIfAborted();
    const what = `TCP to ${urlHost(target.hostname)}:${target.port}`;
    const socket = net.connect({ host: target.hostname, port: target.port, noDelay: true });
    const connected = new Promise<void>((resolve, reject) => {
      const onConnect = () => {
        cleanup();
        resolve();
      };
      const onError = (error: Error) => {
        cleanup();
        reject(new Error(`${what}: ${error.message}`, { cause: error }));
      };
      const cleanup = () => {
        socket.off("connect", onConnect);
        socket.off("error", onError);
      };
      socket.once("connect", onConnect);
      socket.once("error", onError);
    });
    try {
      await abortable(connected, target.signal);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    socket.setNoDelay(true);
    return wrapSocket(socket, highWaterMark, graceMs);
  };
}
