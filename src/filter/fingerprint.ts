/**
 * Names as 64-bit fingerprints. A listed name is kept as two 32-bit words hashed from its text
 * read right to left (last label first), so while hashing a query name the same way, every
 * label boundary hands out the fingerprint of one of its suffixes: `c.example.com`,
 * `example.com`, `com` all come out of one pass, and a lookup is one probe per suffix.
 *
 * Two 32-bit lanes (FNV-1a and a murmur-style multiply-xorshift, each finished with murmur3's
 * fmix32 on a cross of both) stand in for a 64-bit hash, which JavaScript cannot multiply
 * without BigInt. Both lanes start from a random seed per process ({@linkcode NameHasher}), so
 * a client cannot craft a name that collides with a listed one (blocky seeds its hashes for the
 * same reason). Two different names share a fingerprint with odds near 2^-64 per comparison.
 *
 * @module
 */
import { MAX_LABEL_LENGTH, MAX_NAME_LENGTH } from "../dns/name.ts";

/** Most labels a name has (255 bytes of wire name, each label at least 2 bytes). */
export const MAX_LABELS = 128;

/** Longest name in presentation form without the final dot (RFC 1035's 255 wire bytes). */
const MAX_TEXT_NAME_LENGTH = MAX_NAME_LENGTH - 2;

/**
 * The seeds every fingerprint of one process is made with. Sets built with one hasher answer
 * only lookups hashed with the same one.
 */
export class NameHasher {
  readonly seed1: number;
  readonly seed2: number;

  /**
   * @param seed two 32-bit words; default: random (`crypto.getRandomValues`). Fixed seeds are
   *   for tests.
   */
  constructor(seed?: readonly [number, number]) {
    const s = seed ?? crypto.getRandomValues(new Uint32Array(2));
    this.seed1 = (s[0] ^ 0x811c9dc5) >>> 0;
    this.seed2 = (s[1] ^ 0x9747b28c) >>> 0;
  }
}

/** murmur3's 32-bit finaliser. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The high word of the fingerprint of lanes `h1`, `h2`. */
function high(h1: number, h2: number): number {
  return fmix(h1 ^ Math.imul(h2, 0x9e3779b1));
}

/** The low word of the fingerprint of lanes `h1`, `h2`. */
function low(h1: number, h2: number): number {
  return fmix((h2 + h1) | 0);
}

/** Where fingerprints are written: the high and low words. */
export interface Fingerprints {
  readonly hi: Uint32Array;
  readonly lo: Uint32Array;
}

/** Scratch room for the fingerprints of every suffix of one name. */
export function fingerprintScratch(): Fingerprints {
  return { hi: new Uint32Array(MAX_LABELS), lo: new Uint32Array(MAX_LABELS) };
}

/**
 * What each character code below 128 is in a list name: its lower-case code for a-z (A-Z
 * folded), 0-9, `-` and `_`; 0x2e for the dot; 0 for anything else.
 */
const NAME_CHAR = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  const lower = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
  const ok = (lower >= 0x61 && lower <= 0x7a) || (lower >= 0x30 && lower <= 0x39) ||
    lower === 0x2d || lower === 0x5f || lower === 0x2e;
  NAME_CHAR[c] = ok ? lower : 0;
}

/**
 * The fingerprint of `text.slice(start, end)` as a list entry: a host name of labels of a-z,
 * 0-9, `-` and `_` (upper case folded), 1 to 63 characters each, joined by single dots, at most
 * 253 in all; no final dot. Writes it to `out.hi[0]`, `out.lo[0]`.
 *
 * @returns false, writing nothing, when the text is not such a name
 * @example
 * ```ts
 * const out = fingerprintScratch();
 * fingerprintText(hasher, "ads.example.com", 0, 15, out); // true
 * ```
 */
export function fingerprintText(
  hasher: NameHasher,
  text: string,
  start: number,
  end: number,
  out: Fingerprints,
): boolean {
  if (end <= start || end - start > MAX_TEXT_NAME_LENGTH) return false;
  let h1 = hasher.seed1;
  let h2 = hasher.seed2;
  let label = 0;
  for (let i = end - 1; i >= start; i--) {
    const code = text.charCodeAt(i);
    const c = code < 128 ? NAME_CHAR[code] : 0;
    if (c === 0) return false;
    if (c === 0x2e) {
      if (label === 0) return false;
      label = 0;
    } else if (++label > MAX_LABEL_LENGTH) {
      return false;
    }
    h1 = Math.imul(h1 ^ c, 0x01000193);
    h2 = Math.imul(h2 ^ c, 0x5bd1e995);
    h2 ^= h2 >>> 13;
  }
  if (label === 0) return false;
  out.hi[0] = high(h1, h2);
  out.lo[0] = low(h1, h2);
  return true;
}

/**
 * What each byte of a wire label hashes as: A-Z folded to a-z, a dot inside a label to 0x100
 * (never a list character, and not the separator), anything else itself.
 */
const WIRE_BYTE = new Uint16Array(256);
for (let c = 0; c < 256; c++) {
  WIRE_BYTE[c] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c === 0x2e ? 0x100 : c;
}

/** Label starts and lengths of the name being hashed (one name at a time: not reentrant). */
const LABEL_AT = new Int32Array(MAX_LABELS);
const LABEL_LEN = new Uint8Array(MAX_LABELS);
const MAX_POINTER_HOPS = 64;

/**
 * The fingerprints of every suffix of the wire-format name at `offset` in `wire` (compression
 * pointers followed): `out.hi[j]`, `out.lo[j]` for the suffix starting at label `j`, so index 0
 * is the whole name and `count - 1` its last label. ASCII upper case is folded; a byte no list
 * name may hold (a dot inside a label, say) is kept, so such a suffix matches no entry.
 *
 * @returns the number of labels (0 for the root), or -1 when the name is malformed
 * @example
 * ```ts
 * const n = wireFingerprints(hasher, query.wire, 12, scratch); // the question's name
 * ```
 */
export function wireFingerprints(
  hasher: NameHasher,
  wire: Uint8Array,
  offset: number,
  out: Fingerprints,
): number {
  let count = 0;
  let pos = offset;
  let hops = 0;
  for (;;) {
    if (pos >= wire.length) return -1;
    const len = wire[pos];
    if (len === 0) break;
    if ((len & 0xc0) === 0xc0) {
      if (pos + 1 >= wire.length || ++hops > MAX_POINTER_HOPS) return -1;
      pos = ((len & 0x3f) << 8) | wire[pos + 1];
      continue;
    }
    if ((len & 0xc0) !== 0 || pos + 1 + len > wire.length || count === MAX_LABELS) return -1;
    LABEL_AT[count] = pos + 1;
    LABEL_LEN[count++] = len;
    pos += 1 + len;
  }
  let h1 = hasher.seed1;
  let h2 = hasher.seed2;
  for (let j = count - 1; j >= 0; j--) {
    if (j < count - 1) {
      h1 = Math.imul(h1 ^ 0x2e, 0x01000193);
      h2 = Math.imul(h2 ^ 0x2e, 0x5bd1e995);
      h2 ^= h2 >>> 13;
    }
    const from = LABEL_AT[j];
    for (let i = from + LABEL_LEN[j] - 1; i >= from; i--) {
      const c = WIRE_BYTE[wire[i]];
      h1 = Math.imul(h1 ^ c, 0x01000193);
      h2 = Math.imul(h2 ^ c, 0x5bd1e995);
      h2 ^= h2 >>> 13;
    }
    out.hi[j] = high(h1, h2);
    out.lo[j] = low(h1, h2);
  }
  return count;
}
