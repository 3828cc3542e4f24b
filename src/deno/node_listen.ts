/**
 * What both node listeners (DoT, DoH) do alike with `node:net`/`node:tls`: binding a server, and
 * closing a connection without losing what was last written to it.
 *
 * @module
 */
import type { Server, Socket } from "node:net";

/**
 * Binds `server` and resolves once it listens; rejects with the bind error (address in use,
 * permission) instead of emitting it.
 */
export function listenNode(
  server: Server,
  where: { hostname: string; port: number; reusePort?: boolean },
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    const listen = { port: where.port, host: where.hostname, reusePort: where.reusePort };
    server.listen(listen, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** How long a socket we closed keeps reading (and dropping) what the peer still sends. */
export const LINGER_MS = 2_000;

/**
 * Ends our side (FIN after what is queued, such as a final GOAWAY or error reply) and keeps
 * reading until the peer closes too, at most {@linkcode LINGER_MS}: destroying a socket with
 * unread input sends a TCP reset, and the peer may then never read the last bytes we wrote.
 */
export function endAndLinger(socket: Socket): void {
  if (socket.destroyed) return;
  socket.end();
  socket.resume();
  const linger = setTimeout(() => socket.destroy(), LINGER_MS);
  socket.once("close", () => clearTimeout(linger));
}
