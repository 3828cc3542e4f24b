/**
 * The dnstap sender (`--dnstap unix:PATH|tcp:HOST:PORT`): a Frame Streams connection to a
 * collector with the bidirectional handshake (READY, ACCEPT, START; STOP and FINISH at the end),
 * fed from a bounded queue. Answers never wait on it: while the collector is slow or away the
 * queue fills and frames are dropped (counted); the sender reconnects every `reconnectMs`.
 *
 * @module
 */
import {
  Control,
  controlFrame,
  ControlReader,
  DNSTAP_CONTENT_TYPE,
  FrameQueue,
} from "../observe/frame_streams.ts";
import type { Logger } from "../log/mod.ts";
import { messageOf } from "../errors/message_of.ts";

/** Where the collector listens. */
export type DnstapTarget =
  | { readonly transport: "unix"; readonly path: string }
  | { readonly transport: "tcp"; readonly hostname: string; readonly port: number };

/**
 * Parses `unix:PATH` or `tcp:HOST:PORT` (`tcp:[v6]:PORT`).
 *
 * @throws {RangeError} saying what is wrong
 */
export function parseDnstapTarget(text: string): DnstapTarget {
  if (text.startsWith("unix:")) {
    const path = text.slice(5);
    if (!path) throw new RangeError("unix: needs a socket path");
    return { transport: "unix", path };
  }
  const m = /^tcp:(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(text);
  if (m && Number(m[3]) > 0 && Number(m[3]) < 65536) {
    return { transport: "tcp", hostname: m[1] ?? m[2], port: Number(m[3]) };
  }
  throw new RangeError(`"${text}" is not unix:PATH or tcp:HOST:PORT`);
}

/** Options of {@linkcode startDnstapSender}. */
export interface DnstapSenderOptions {
  target: DnstapTarget;
  /** Bytes of frames queued at most. Default 4 MiB. */
  maxQueuedBytes?: number;
  /** Wait between connection attempts. Default 1 000 ms. */
  reconnectMs?: number;
  /** How long the collector has to ACCEPT (and to FINISH at the end). Default 2 000 ms. */
  handshakeTimeoutMs?: number;
  /** Told of each dropped frame. */
  onDrop?: (frames: number) => void;
  logger?: Logger;
}

/** A running sender. */
export interface DnstapSender {
  /** Where the taps push data frames. */
  readonly queue: FrameQueue;
  /** Whether a collector is connected and has accepted the stream. */
  readonly up: boolean;
  /** Sends what is queued (briefly), STOP, waits for FINISH, closes. */
  close(): Promise<void>;
}

function describe(target: DnstapTarget): string {
  return target.transport === "unix"
    ? `unix:${target.path}`
    : `tcp:${target.hostname}:${target.port}`;
}

/**
 * Starts the sender; it connects in the background (a collector that is not there yet is not an
 * error: it is retried).
 *
 * @example
 * ```ts
 * const sender = startDnstapSender({ target: parseDnstapTarget("unix:/run/dnstap.sock") });
 * sender.queue.push(frame);
 * ```
 */
export function startDnstapSender(options: DnstapSenderOptions): DnstapSender {
  const { target, logger } = options;
  const where = describe(target);
  const reconnectMs = options.reconnectMs ?? 1_000;
  const handshakeMs = options.handshakeTimeoutMs ?? 2_000;
  let up = false;
  let closed = false;
  let wake: (() => void) | undefined;
  const poke = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  const queue = new FrameQueue({
    maxBytes: options.maxQueuedBytes,
    onDrop: () => options.onDrop?.(1),
    onReady: poke,
  });
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        wake = undefined;
        resolve();
      }, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
    let done = 0;
    while (done < bytes.length) done += await conn.write(bytes.subarray(done));
  }

  /** Reads control frames until one of `type` arrives; rejects on EOF, error or timeout. */
  async function expect(
    conn: Deno.Conn,
    reader: ControlReader,
    type: number,
    ms: number,
  ): Promise<void> {
    const buf = new Uint8Array(512);
    const timer = setTimeout(() => conn.close(), ms);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) throw new Error("collector closed the connection");
        for (const frame of reader.push(buf.subarray(0, n))) {
          if (frame.type !== type) continue;
          if (type === Control.ACCEPT && !frame.contentTypes.includes(DNSTAP_CONTENT_TYPE)) {
            throw new Error("collector does not accept protobuf:dnstap.Dnstap");
          }
          return;
        }
      }
    } finally {
      clearTimeout(timer);
    }
  }

  async function session(conn: Deno.Conn): Promise<void> {
    const reader = new ControlReader();
    await writeAll(conn, controlFrame(Control.READY, [DNSTAP_CONTENT_TYPE]));
    await expect(conn, reader, Control.ACCEPT, handshakeMs);
    await writeAll(conn, controlFrame(Control.START, [DNSTAP_CONTENT_TYPE]));
    up = true;
    logger?.info("dnstap: connected", { collector: where });
    // The receiver sends nothing more until FINISH: a read that ends means it went away.
    let broken = false;
    const watching = (async () => {
      const buf = new Uint8Array(64);
      try {
        while ((await conn.read(buf)) !== null) { /* nothing expected */ }
      } catch {
        // Reset: gone too.
      }
      broken = true;
      poke();
    })();
    while (!closed && !broken) {
      const { bytes, count } = queue.take();
      if (count === 0) {
        await sleep(60_000);
        continue;
      }
      try {
        await writeAll(conn, bytes);
      } catch (e) {
        options.onDrop?.(count);
        throw e;
      }
    }
    if (broken) throw new Error("collector went away");
    // Closing: what is queued, then STOP, and FINISH within the handshake time.
    const { bytes, count } = queue.take();
    if (count > 0) await writeAll(conn, bytes);
    await writeAll(conn, controlFrame(Control.STOP));
    await Promise.race([watching, new Promise((r) => setTimeout(r, handshakeMs))]);
  }

  const running = (async () => {
    let reported = false;
    while (!closed) {
      let conn: Deno.Conn | undefined;
      try {
        conn = target.transport === "unix"
          ? await Deno.connect({ transport: "unix", path: target.path })
          : await Deno.connect({ hostname: target.hostname, port: target.port });
        await session(conn);
        reported = false;
      } catch (e) {
        if (!closed && (!reported || up)) {
          logger?.warn("dnstap: collector unavailable; retrying", {
            collector: where,
            error: messageOf(e),
          });
          reported = true;
        }
      } finally {
        up = false;
        try {
          conn?.close();
        } catch {
          // Closed already.
        }
      }
      if (!closed) await sleep(reconnectMs);
    }
  })();

  return {
    queue,
    get up() {
      return up;
    },
    async close() {
      closed = true;
      poke();
      await Promise.race([running, new Promise((r) => setTimeout(r, handshakeMs + 500))]);
    },
  };
}
