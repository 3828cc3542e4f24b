/**
 * Big-endian (network order) unsigned integers in byte arrays, without a DataView per read.
 *
 * @module
 */

/**
 * The 16-bit big-endian integer at `at`.
 *
 * @example
 * ```ts
 * getUint16(Uint8Array.of(0x01, 0x02), 0); // 258
 * ```
 */
export function getUint16(bytes: Uint8Array, at: number): number {
  return (bytes[at] << 8) | bytes[at + 1];
}

/**
 * The 32-bit big-endian integer at `at`, unsigned.
 *
 * @example
 * ```ts
 * getUint32(Uint8Array.of(0xff, 0, 0, 1), 0); // 4278190081
 * ```
 */
export function getUint32(bytes: Uint8Array, at: number): number {
  return ((bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]) >>> 0;
}

/**
 * Four bytes holding `value` big-endian.
 *
 * @example
 * ```ts
 * uint32Bytes(1); // Uint8Array [0, 0, 0, 1]
 * ```
 */
export function uint32Bytes(value: number): Uint8Array<ArrayBuffer> {
  return Uint8Array.of(value >>> 24, (value >>> 16) & 0xff, (value >>> 8) & 0xff, value & 0xff);
}
