/**
 * Reading an upstream's HTTP response body with a size cap, without trusting Content-Length.
 *
 * @module
 */
import { readStreamCapped } from "../bytes/read_capped.ts";

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
