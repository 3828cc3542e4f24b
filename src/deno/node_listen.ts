/**
 * Binding a `node:net` or `node:tls` server, as both node listeners (DoT, DoH) do it.
 *
 * @module
 */
import type { Server } from "node:net";

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
