/**
 * The HPACK Huffman code (RFC 7541 Appendix B), decode side.
 *
 * The appendix's code is canonical: sorted by (length, symbol), each code is the previous one
 * plus one, shifted left by the growth in length. So the whole table is the 257 code lengths
 * below, and the codes are derived from them; the tests check the derivation against the
 * appendix's rows and the examples of Appendix C.
 *
 * @module
 */

/** Code length in bits of each symbol 0–255 and EOS (256), in symbol order. */
// deno-fmt-ignore
const LENGTHS = [
  13, 23, 28, 28, 28, 28, 28, 28, 28, 24, 30, 28, 28, 30, 28, 28,
  28, 28, 28, 28, 28, 28, 30, 28, 28, 28, 28, 28, 28, 28, 28, 28,
  6, 10, 10, 12, 13, 6, 8, 11, 10, 10, 8, 11, 8, 6, 6, 6,
  5, 5, 5, 6, 6, 6, 6, 6, 6, 6, 7, 8, 15, 6, 12, 10,
  13, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
  7, 7, 7, 7, 7, 7, 7, 7, 8, 7, 8, 13, 19, 13, 14, 6,
  15, 5, 6, 5, 6, 5, 6, 6, 6, 5, 7, 7, 6, 6, 6, 5,
  6, 7, 6, 5, 5, 6, 7, 7, 7, 7, 7, 15, 11, 14, 13, 28,
  20, 22, 20, 20, 22, 22, 22, 23, 22, 23, 23, 23, 23, 23, 24, 23,
  24, 24, 22, 23, 24, 23, 23, 23, 23, 21, 22, 23, 22, 23, 23, 24,
  22, 21, 20, 22, 22, 23, 23, 21, 23, 22, 22, 24, 21, 22, 23, 23,
  21, 21, 22, 21, 23, 22, 23, 23, 20, 22, 22, 22, 23, 22, 22, 23,
  26, 26, 20, 19, 22, 23, 22, 25, 26, 26, 26, 27, 27, 26, 24, 25,
  19, 21, 26, 27, 27, 26, 27, 24, 21, 21, 26, 26, 28, 27, 27, 27,
  20, 24, 20, 21, 22, 21, 21, 23, 22, 22, 25, 25, 24, 24, 26, 23,
  26, 27, 26, 26, 27, 27, 27, 27, 27, 28, 27, 27, 27, 27, 27, 26,
  30,
];

const EOS = 256;
const MAX_LENGTH = 30;

/** Symbols sorted by (length, symbol): the canonical order. */
const SORTED: number[] = [...LENGTHS.keys()].sort((a, b) => LENGTHS[a] - LENGTHS[b] || a - b);
/** For each length: the first code of that length, and where its symbols start in SORTED. */
const FIRST_CODE = new Array<number>(MAX_LENGTH + 2).fill(0);
const FIRST_INDEX = new Array<number>(MAX_LENGTH + 2).fill(0);
const COUNT = new Array<number>(MAX_LENGTH + 2).fill(0);
for (const len of LENGTHS) COUNT[len]++;
{
  let code = 0;
  let index = 0;
  for (let len = 1; len <= MAX_LENGTH; len++) {
    FIRST_CODE[len] = code;
    FIRST_INDEX[len] = index;
    code = (code + COUNT[len]) * 2;
    index += COUNT[len];
  }
}

/** The code of each symbol, right-aligned (for tests and for encoding). */
export function huffmanCode(symbol: number): { code: number; length: number } {
  const length = LENGTHS[symbol];
  const rank = SORTED.indexOf(symbol, FIRST_INDEX[length]) - FIRST_INDEX[length];
  return { code: FIRST_CODE[length] + rank, length };
}

/** A string literal the peer Huffman-coded wrongly (RFC 7541 §5.2: a decoding error). */
export class HuffmanError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HuffmanError";
  }
}

/**
 * The decoder's state machine, four bits at a time: for each internal node of the code tree and
 * each nibble, the node reached, the symbol completed on the way (at most one: codes are 5 bits
 * or longer), and whether the walk hit EOS. Built once from the canonical codes.
 */
/** Per node: true if it is a valid end (reached from the root by at most 7 one-bits). */
const ACCEPTING: boolean[] = [];
let nibbleTables: { next: Uint16Array; symbol: Int16Array; fail: Uint8Array } | undefined;

function buildTables(): { next: Uint16Array; symbol: Int16Array; fail: Uint8Array } {
  // Binary tree: children[2n], children[2n+1]; a negative child is -(symbol + 1).
  const children: number[] = [0, 0];
  let nodes = 1;
  for (let symbol = 0; symbol < LENGTHS.length; symbol++) {
    const { code, length } = huffmanCode(symbol);
    let node = 0;
    for (let b = length - 1; b >= 0; b--) {
      const bit = (code / 2 ** b) & 1;
      const slot = node * 2 + bit;
      if (b === 0) {
        children[slot] = -(symbol + 1);
      } else {
        if (children[slot] === 0) {
          children[slot] = nodes++;
          children.push(0, 0);
        }
        node = children[slot];
      }
    }
  }
  // Accepting nodes: the all-ones path of depth 0..7.
  for (let n = 0, node = 0; n <= 7; n++) {
    ACCEPTING[node] = true;
    node = children[node * 2 + 1];
    if (node <= 0) break;
  }
  const next = new Uint16Array(nodes * 16);
  const symbol = new Int16Array(nodes * 16).fill(-1);
  const fail = new Uint8Array(nodes * 16);
  for (let state = 0; state < nodes; state++) {
    for (let nibble = 0; nibble < 16; nibble++) {
      let node = state;
      const at = state * 16 + nibble;
      for (let b = 3; b >= 0; b--) {
        const child = children[node * 2 + ((nibble >> b) & 1)];
        if (child < 0) {
          if (child === -(EOS + 1)) fail[at] = 1;
          symbol[at] = -child - 1;
          node = 0;
        } else node = child;
      }
      next[at] = node;
    }
  }
  return { next, symbol, fail };
}

/** Where {@linkcode huffmanDecode} writes when asked to reuse a buffer. */
let scratch = new Uint8Array(256);

/**
 * Decodes a Huffman-coded string literal to its octets, four bits per step. Rejects EOS inside
 * the string, padding longer than 7 bits, and padding that is not all ones (RFC 7541 §5.2).
 *
 * With `reuse`, the octets are a view of one module-wide buffer, valid only until the next
 * call: for a caller that turns them into a string at once (no allocation per literal).
 */
export function huffmanDecode(input: Uint8Array, reuse = false): Uint8Array {
  nibbleTables ??= buildTables();
  const { next, symbol, fail } = nibbleTables;
  const size = input.length * 2; // every code is 5 bits or more
  if (reuse && scratch.length < size) scratch = new Uint8Array(Math.max(size, scratch.length * 2));
  const out = reuse ? scratch : new Uint8Array(size);
  let n = 0;
  let state = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i];
    let at = state * 16 + (byte >> 4);
    if (fail[at]) throw new HuffmanError("EOS inside a Huffman string");
    if (symbol[at] >= 0) out[n++] = symbol[at];
    at = next[at] * 16 + (byte & 0x0f);
    if (fail[at]) throw new HuffmanError("EOS inside a Huffman string");
    if (symbol[at] >= 0) out[n++] = symbol[at];
    state = next[at];
  }
  if (!ACCEPTING[state]) {
    throw new HuffmanError("Huffman padding is not all ones or longer than 7 bits");
  }
  return out.subarray(0, n);
}

/** Encodes octets with the Huffman code (used by tests and by nothing on the hot path). */
export function huffmanEncode(input: Uint8Array): Uint8Array {
  const out: number[] = [];
  let acc = 0;
  let bits = 0;
  for (const byte of input) {
    const { code, length } = huffmanCode(byte);
    for (let b = length - 1; b >= 0; b--) {
      acc = (acc << 1) | ((code / 2 ** b) & 1);
      if (++bits === 8) {
        out.push(acc);
        acc = 0;
        bits = 0;
      }
    }
  }
  if (bits > 0) out.push(((acc << (8 - bits)) | (0xff >> bits)) & 0xff);
  return Uint8Array.from(out);
}
