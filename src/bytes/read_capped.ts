/**
 * Reading a byte stream to its end with a size cap, without trusting a declared length. Used on
 * both sides of DoH: answers from upstreams and queries from clients.
 *
 * @module
 */
import { concatBytes } from "./concat.ts";

/**
 * Reads a byte stream to the end, giving up (and cancelling it) as soon as it passes `limit`
 * bytes. A `null` stream (a body-less request) reads as empty.
 *
 * @returns the bytes, or `undefined` when there were more than `limit`
 *
 * @example
 * ```ts
 * const body = await readStreamCapped(request.body, 65535);
 * if (body === undefined) return new Response("too large", { status: 413 });
 * ```
 */
export async function readStreamCapped(
  stream: ReadableStream<Uint8Array> | null,
  limit: number,
): Promise<Uint8Array | undefined> {
  if (!stream) return new Uint8Array(0);
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.length;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        return undefined;
      }
      chunks.push(value);
    }
  } finally {
    reader.releaseLock();
  }
  return chunks.length === 1 ? chunks[0] : concatBytes(chunks, total);
}
