/**
 * Domain names in wire format (RFC 1035 §3.1) from their presentation form: length, label walk
 * and uncompressed encoding. For names of plain labels (no `\` escapes), such as the ones a
 * records file declares; reading names out of a message is `readName` in `message.ts`.
 *
 * @module
 */

/** The longest name in wire format (RFC 1035 §2.3.4). */
export const MAX_NAME_LENGTH = 255;

/** The longest label (RFC 1035 §2.3.4). */
export const MAX_LABEL_LENGTH = 63;

/**
 * Length in wire format of `name` (presentation form, no final dot; `""` is the root): each
 * label with its length byte, and the root's zero byte.
 *
 * @example
 * ```ts
 * nameWireLength("nas.home.arpa"); // 15
 * nameWireLength(""); // 1
 * ```
 */
export function nameWireLength(name: string): number {
  return name === "" ? 1 : name.length + 2;
}

/**
 * The offset in `name` of the label after the one starting at `k`, or -1 after the last label.
 * Walks a name's suffixes: `name.slice(k)` for each `k` from 0 is the name, its parent, and so
 * on up to the last label. The string offset of a label equals the wire offset of its length
 * byte in the encoded name.
 *
 * @example
 * ```ts
 * for (let k = 0; k >= 0; k = nextLabel(name, k)) console.log(name.slice(k));
 * // nas.home.arpa, home.arpa, arpa
 * ```
 */
export function nextLabel(name: string, k: number): number {
  const dot = name.indexOf(".", k);
  return dot < 0 ? -1 : dot + 1;
}

/**
 * Appends `name` in wire format, uncompressed, to `out`.
 *
 * @throws {RangeError} for an empty label, a label over 63 bytes, a character outside
 *   Latin-1, or a name over 255 bytes
 */
export function pushName(out: number[], name: string): void {
  if (nameWireLength(name) > MAX_NAME_LENGTH) {
    throw new RangeError(`dns: name "${name}" is over ${MAX_NAME_LENGTH} bytes`);
  }
  if (name !== "") {
    for (let k = 0; k >= 0; k = nextLabel(name, k)) pushLabel(out, name, k);
  }
  out.push(0);
}

/** Appends the label of `name` starting at `k` with its length byte. */
export function pushLabel(out: number[], name: string, k: number): void {
  const end = name.indexOf(".", k);
  const length = (end < 0 ? name.length : end) - k;
  if (length === 0 || length > MAX_LABEL_LENGTH) {
    throw new RangeError(`dns: bad label length ${length} in "${name}"`);
  }
  out.push(length);
  for (let i = k; i < k + length; i++) {
    const c = name.charCodeAt(i);
    if (c > 0xff) throw new RangeError(`dns: name "${name}" is not plain ASCII or Latin-1`);
    out.push(c);
  }
}

/**
 * `name` in wire format, uncompressed.
 *
 * @throws {RangeError} as {@linkcode pushName}
 * @example
 * ```ts
 * encodeName("nas.lan"); // Uint8Array [3, 110, 97, 115, 3, 108, 97, 110, 0]
 * ```
 */
export function encodeName(name: string): Uint8Array {
  const out: number[] = [];
  pushName(out, name);
  return Uint8Array.from(out);
}
