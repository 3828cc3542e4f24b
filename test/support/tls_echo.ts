/**
 * A TLS echo server on `Deno.listenTls`, and a one-byte round trip over a client connection:
 * proof that a certificate serves TLS.
 *
 * @module
 */
import type { IssuedCertificate } from "../../src/pki/mod.ts";

async function readAll(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(buf.subarray(got));
    if (r === null) throw new Error("unexpected EOF");
    got += r;
  }
  return buf;
}

/**
 * A TLS echo server on 127.0.0.1 presenting `leaf.chainPem`. Handshake failures on the server
 * side are expected in negative tests and swallowed.
 */
export function startEchoServer(leaf: Pick<IssuedCertificate, "chainPem" | "keyPem">) {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: leaf.chainPem,
    key: leaf.keyPem,
  });
  const conns = new Set<Deno.TlsConn>();
  const done = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          const buf = new Uint8Array(64);
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            await conn.write(buf.subarray(0, n));
          }
        } catch {
          // client rejected our certificate or went away
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        }
      })();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await done;
    },
  };
}

/** Sends one byte over an established TLS connection and expects it echoed back. */
export async function echoOneByte(conn: Deno.Conn): Promise<number> {
  await conn.write(new Uint8Array([0x2a]));
  return (await readAll(conn, 1))[0];
}

/** Connects with `options`, has one byte echoed, and closes: the byte that came back. */
export async function echoOverTls(options: Deno.ConnectTlsOptions): Promise<number> {
  const conn = await Deno.connectTls(options);
  try {
    return await echoOneByte(conn);
  } finally {
    conn.close();
  }
}
