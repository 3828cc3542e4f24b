/**
 * Readiness probes: one real query over DoT or DoH, with certificate verification against the
 * bench CA, or over plain DNS (UDP), retried until the server answers NOERROR with an answer or
 * the deadline passes.
 *
 * @module
 */
import { dohGetPath, encodeQuery } from "./configs.ts";
import { type Proc, sleep } from "./procs.ts";

/** One DoT exchange on a fresh connection; returns the answer message. */
export async function dotQuery(
  port: number,
  caPem: string,
  name: string,
  timeoutMs = 2_000,
): Promise<Uint8Array> {
  const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [caPem] });
  const timer = setTimeout(() => conn.close(), timeoutMs);
  try {
    const q = encodeQuery(name, 1, 0x4242);
    const frame = new Uint8Array(q.length + 2);
    frame[0] = q.length >> 8;
    frame[1] = q.length & 255;
    frame.set(q, 2);
    await conn.write(frame);
    let buf = new Uint8Array(0);
    const chunk = new Uint8Array(4096);
    while (buf.length < 2 || buf.length < 2 + ((buf[0] << 8) | buf[1])) {
      const n = await conn.read(chunk);
      if (n === null) throw new Error("connection closed before the answer");
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
    }
    return buf.slice(2, 2 + ((buf[0] << 8) | buf[1]));
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
}

/** One DoH GET exchange; returns the answer message. */
export async function dohQuery(
  port: number,
  caPem: string,
  name: string,
  timeoutMs = 2_000,
): Promise<Uint8Array> {
  const client = Deno.createHttpClient({ caCerts: [caPem] });
  try {
    const res = await fetch(`https://localhost:${port}${dohGetPath(encodeQuery(name))}`, {
      client,
      headers: { accept: "application/dns-message" },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = new Uint8Array(await res.arrayBuffer());
    if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
    return body;
  } finally {
    client.close();
  }
}

/** One plain DNS exchange over UDP; returns the answer message. */
export async function udpQuery(port: number, name: string, timeoutMs = 2_000): Promise<Uint8Array> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const timer = setTimeout(() => socket.close(), timeoutMs);
  try {
    await socket.send(encodeQuery(name, 1, 0x4242), {
      transport: "udp",
      hostname: "127.0.0.1",
      port,
    });
    const [answer] = await socket.receive();
    return answer;
  } finally {
    clearTimeout(timer);
    try {
      socket.close();
    } catch {
      // closed by the timer
    }
  }
}

/** True for a NOERROR answer with at least one answer record. */
export function answered(message: Uint8Array): boolean {
  return message.length >= 12 && (message[3] & 0x0f) === 0 && ((message[6] << 8) | message[7]) > 0;
}

/**
 * Retries `query` until it yields an answered message.
 *
 * @throws when `deadlineMs` passes or `proc` exits first; the message names the last error
 */
export async function waitUntilAnswering(
  what: string,
  query: () => Promise<Uint8Array>,
  deadlineMs: number,
  proc?: Proc,
  pollMs = 200,
): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  let last = "no attempt";
  while (Date.now() < deadline) {
    if (proc?.exited) throw new Error(`${what} exited early; see ${proc.stderrPath}`);
    try {
      const answer = await query();
      if (answered(answer)) return;
      last = `rcode ${answer[3] & 0x0f}, ${(answer[6] << 8) | answer[7]} answers`;
    } catch (e) {
      last = (e as Error).message;
    }
    await sleep(pollMs);
  }
  throw new Error(`${what} did not answer within ${deadlineMs} ms (last: ${last})`);
}
