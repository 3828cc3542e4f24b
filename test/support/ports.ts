/**
 * Loopback ports for tests that need a fixed port number before something binds it.
 *
 * @module
 */

/** A 127.0.0.1 port that was free a moment ago. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}
