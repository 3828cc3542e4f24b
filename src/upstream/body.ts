/**
 * Reading an HTTP body with a size cap, without trusting Content-Length. Used on both sides:
 * DoH answers from upstreams and DoH queries from clients.
 *
 * @module
 */

/**
 * Reads a byte stream to the end, giving up (and cancelling it) as soon as it passes `limit`
 * bytes.
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

/** `chunks` joined into one new array; `total` is their summed length. */
export function concatBytes(chunks: readonly Uint8Array[], total: number): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

/**
 * Reads `response`'s body, failing as soon as it exceeds `limit` bytes.
 *
 * @throws {RangeError} when the body is larger than `limit`
 */
export async function readBodyCapped(response: Response, limit: number): Promise<Uint8Array> {
  const declared = response.headers.get("content-length");
  if (declared !== null && Number(declared) > limit) {
    await response.body?.cancel();
    throw new RangeError(`body of ${declared} bytes exceeds ${limit}`);
  }
  const body = await readStreamCapped(response.body, limit);
  if (body === undefined) throw new RangeError(`body exceeds ${limit} bytes`);
  return body;
}
