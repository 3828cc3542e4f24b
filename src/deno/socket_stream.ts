/**
 * A `node:net` socket (plain TCP, or TLS over it) as the {@linkcode ByteStream} the stream
 * upstreams (DoT, plain DNS over TCP) run over.
 *
 * @module
 */
import type { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import type { ByteStream } from "../upstream/stream.ts";

/**
 * Wraps an established `node:net` socket (or a `node:tls` one over it) as a
 * {@linkcode ByteStream}: reads as they arrive (the socket paused while `highWaterMark` bytes wait
 * unread), each written chunk one `socket.write`, `close()` ending the socket and destroying it
 * after `graceMs` if the peer does not close its side.
 *
 * @example
 * ```ts
 * const stream = wrapSocket(net.connect({ host, port }), 64 * 1024, 2_000);
 * ```
 */
export function wrapSocket(socket: Socket, highWaterMark: number, graceMs: number): ByteStream {
  let lastError: Error | undefined;
  let readDone = false;
  const closed = new Promise<void>((resolve, reject) => {
    socket.once("close", () => (lastError ? reject(lastError) : resolve()));
  });
  closed.catch(() => {}); // observed by whoever awaits it; never an unhandled rejection

  const readable = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        socket.on("data", (chunk: Buffer) => {
          if (readDone) return;
          controller.enqueue(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength));
          if ((controller.desiredSize ?? 1) <= 0) socket.pause();
        });
        socket.on("error", (error: Error) => {
          lastError ??= error;
          if (readDone) return;
          readDone = true;
          controller.error(error);
        });
        const finish = () => {
          if (readDone) return;
          readDone = true;
          if (lastError) controller.error(lastError);
          else controller.close();
        };
        socket.once("end", finish);
        socket.once("close", finish);
      },
      pull() {
        if (socket.isPaused()) socket.resume();
      },
      cancel() {
        readDone = true;
        socket.destroy();
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark }),
  );

  const writable = new WritableStream<Uint8Array>({
    write(chunk) {
      return new Promise<void>((resolve, reject) => {
        if (socket.destroyed || !socket.writable) {
          reject(lastError ?? new Error("write on a closed connection"));
          return;
        }
        // One chunk, one write: callers put a whole frame batch in a chunk.
        if (socket.write(chunk)) {
          resolve();
          return;
        }
        const onDrain = () => {
          cleanup();
          resolve();
        };
        const onClose = () => {
          cleanup();
          reject(lastError ?? new Error("connection closed while writing"));
        };
        const cleanup = () => {
          socket.off("drain", onDrain);
          socket.off("close", onClose);
        };
        socket.on("drain", onDrain);
        socket.on("close", onClose);
      });
    },
    close() {
      socket.end();
    },
    abort() {
      socket.destroy();
    },
  });

  return {
    readable,
    writable,
    closed,
    close() {
      if (!socket.destroyed) {
        socket.end(); // FIN (and close_notify over TLS); the server closes its side in turn
        const force = setTimeout(() => socket.destroy(), graceMs);
        socket.once("close", () => clearTimeout(force));
      }
      return closed.catch(() => {});
    },
  };
}
