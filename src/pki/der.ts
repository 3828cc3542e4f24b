/**
 * Just enough DER (X.690) to walk to a field of a certificate without re-encoding anything.
 *
 * @module
 */

/** One DER element: its tag, and where its header and value start and where it ends. */
export interface DerElement {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly start: number;
  /** Offset of the first value byte, past the tag and length. */
  readonly valueStart: number;
  /** Offset just past the value. */
  readonly end: number;
}

/**
 * Reads the DER element (tag, length, value) at `offset`: single-byte tags, definite lengths of
 * up to four bytes, which is every certificate field.
 *
 * @throws {TypeError} if the element runs past `der` or its length form is not supported
 *
 * @example
 * ```ts
 * const certificate = derElement(der, 0); // SEQUENCE: tag 0x30
 * const tbs = derElement(der, certificate.valueStart);
 * ```
 */
export function derElement(der: Uint8Array, offset: number): DerElement {
  if (offset + 2 > der.length) throw new TypeError("truncated DER");
  const tag = der[offset];
  let length = der[offset + 1];
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || offset + 2 + n > der.length) {
      throw new TypeError("unsupported DER length");
    }
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[offset + 2 + i];
    header += n;
  }
  const end = offset + header + length;
  if (end > der.length) throw new TypeError("truncated DER");
  return { tag, start: offset, valueStart: offset + header, end };
}
