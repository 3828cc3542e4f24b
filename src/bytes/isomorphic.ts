/**
 * Octets as "binary" strings, one char per octet (WHATWG Infra's isomorphic decode and encode):
 * how the Fetch standard represents header values, and how HPACK keeps them, so that a value's
 * length in chars is its length in octets whatever the octets are.
 *
 * @module
 */

/** Decodes ASCII only: the bytes it is given are checked to be below 0x80 first. */
const ASCII = new TextDecoder();

/** How many octets go through one `String.fromCharCode` call (well under argument limits). */
const CHUNK = 4_096;

/**
 * The string with one char (U+0000 to U+00FF) per octet of `bytes`. Never fails and never
 * changes a byte, unlike a UTF-8 (or a "latin1" label, which is windows-1252) TextDecoder.
 *
 * @example
 * ```ts
 * isomorphicDecode(Uint8Array.of(0x61, 0xff)); // "a\u00ff", length 2
 * ```
 */
export function isomorphicDecode(bytes: Uint8Array): string {
  // ASCII (a request path, most header values): the native decoder is ~3× faster, and for
  // octets below 0x80 UTF-8 and the isomorphic decode agree.
  let ascii = true;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return ASCII.decode(bytes);
  if (bytes.length <= CHUNK) {
    return String.fromCharCode.apply(null, bytes as unknown as number[]);
  }
  let out = "";
  for (let at = 0; at < bytes.length; at += CHUNK) {
    out += String.fromCharCode.apply(null, bytes.subarray(at, at + CHUNK) as unknown as number[]);
  }
  return out;
}

/**
 * The octets of a string whose chars are all U+0000 to U+00FF, one per char.
 *
 * @throws {RangeError} for a char above U+00FF (not an octet)
 *
 * @example
 * ```ts
 * isomorphicEncode("a\u00ff"); // Uint8Array [0x61, 0xff]
 * ```
 */
export function isomorphicEncode(text: string): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`char U+${c.toString(16).padStart(4, "0")} is not an octet`);
    out[i] = c;
  }
  return out;
}
