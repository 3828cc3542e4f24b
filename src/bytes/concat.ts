/**
 * Joining byte arrays.
 *
 * @module
 */

/**
 * `chunks` joined into one new array. Pass `total` (their summed length) when it is already
 * known, to skip a pass over them.
 *
 * @example
 * ```ts
 * concatBytes([Uint8Array.of(1, 2), Uint8Array.of(3)]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concatBytes(
  chunks: readonly Uint8Array[],
  total: number = chunks.reduce((sum, c) => sum + c.length, 0),
): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(total);
  let pos = 0;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}
