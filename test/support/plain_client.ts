/**
 * Plain DNS clients for tests: datagrams over UDP, length-prefixed messages over TCP.
 *
 * @module
 */

/** A UDP client: send datagrams, collect what comes back within `ms`. */
export async function udpExchange(
  port: number,
  datagrams: Uint8Array[],
  ms = 500,
): Promise<Uint8Array[]> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const got: Uint8Array[] = [];
  const reading = (async () => {
    for (;;) got.push((await socket.receive())[0]);
  })().catch(() => {});
  for (const d of datagrams) {
    await socket.send(d, { transport: "udp", hostname: "127.0.0.1", port });
  }
  await new Promise((r) => setTimeout(r, ms));
  socket.close();
  await reading;
  return got;
}

/** Reads framed messages from a TCP connection until `n` arrived or it closed. */
export async function readFrames(conn: Deno.Conn, n: number, ms = 3000): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  let pending = new Uint8Array(0);
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const buf = new Uint8Array(65_537);
    while (out.length < n) {
      const r = await conn.read(buf).catch(() => null);
      if (r === null) break;
      const data = new Uint8Array(pending.length + r);
      data.set(pending);
      data.set(buf.subarray(0, r), pending.length);
      let pos = 0;
      while (data.length - pos >= 2) {
        const len = (data[pos] << 8) | data[pos + 1];
        if (data.length - pos - 2 < len) break;
        out.push(data.slice(pos + 2, pos + 2 + len));
        pos += 2 + len;
      }
      pending = data.slice(pos);
    }
  } finally {
    clearTimeout(timer);
  }
  return out;
}
