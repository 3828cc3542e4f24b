/**
 * The PROXY protocol header (HAProxy, versions 1 and 2) that a TCP load balancer sends before
 * the client's own bytes, naming the client's address: a parser that takes bytes as they arrive.
 *
 * Version 1 is one text line (`PROXY TCP4 192.0.2.1 198.51.100.1 56324 853\r\n`), at most 107
 * bytes. Version 2 is a 16-byte binary header (12-byte signature, version and command, family,
 * length) and `length` bytes of addresses and TLVs; TLVs are skipped. Only TCP over IPv4 or IPv6
 * carries an address; `LOCAL` (version 2, the balancer's own health checks), `UNKNOWN` (version
 * 1) and `UNSPEC` (version 2) carry none, and the connection is then the peer's own.
 *
 * Runtime-agnostic: no `Deno.*`.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** The most a version 1 header may take, CRLF included (the specification's limit). */
export const V1_MAX = 107;
/** The version 2 header's fixed part. */
export const V2_HEAD = 16;
/** The most a version 2 header may take here by default (fixed part, addresses and TLVs). */
export const V2_MAX_DEFAULT = 512;

const V1_SIG = new TextEncoder().encode("PROXY ");
const V2_SIG = new Uint8Array([
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
]);

/** A parsed header. `client` is absent for LOCAL, UNKNOWN and UNSPEC headers. */
export interface ProxyHeader {
  version: 1 | 2;
  /** The client's address and port, as the balancer saw them. */
  client?: { address: string; port: number };
  /** Bytes the header took: the client's own bytes start here. */
  length: number;
}

/** A header that is malformed, oversized or of a kind this server cannot use. */
export class ProxyProtocolError extends Error {
  override name = "ProxyProtocolError";
}

/** Options of {@linkcode parseProxyHeader}. */
export interface ProxyParseOptions {
  /** The most a version 2 header may take in all. Default {@linkcode V2_MAX_DEFAULT}. */
  v2Max?: number;
}

/** Whether `bytes` agree with `sig` as far as both go. */
function prefixOf(bytes: Uint8Array, sig: Uint8Array): boolean {
  const n = Math.min(bytes.length, sig.length);
  for (let i = 0; i < n; i++) if (bytes[i] !== sig[i]) return false;
  return true;
}

/**
 * Whether `bytes` (the first bytes of a connection) are, or may still become, a PROXY header:
 * `"header"` once a full signature is seen, `"maybe"` while a prefix of one, `"no"` otherwise.
 */
export function proxySignature(bytes: Uint8Array): "header" | "maybe" | "no" {
  for (const sig of [V1_SIG, V2_SIG]) {
    if (!prefixOf(bytes, sig)) continue;
    return bytes.length >= sig.length ? "header" : "maybe";
  }
  return "no";
}

/**
 * Parses the header at the start of `bytes` (everything received so far on the connection).
 *
 * @returns the header, or `undefined` when more bytes are needed
 * @throws {ProxyProtocolError} when the bytes cannot become a valid header, including one that
 *   would pass its size limit
 *
 * @example
 * ```ts
 * const h = parseProxyHeader(new TextEncoder().encode("PROXY TCP4 192.0.2.1 192.0.2.2 5 853\r\n"));
 * h?.client; // { address: "192.0.2.1", port: 5 }
 * ```
 */
export function parseProxyHeader(
  bytes: Uint8Array,
  options: ProxyParseOptions = {},
): ProxyHeader | undefined {
  if (prefixOf(bytes, V2_SIG)) {
    return bytes.length < V2_HEAD ? undefined : parseV2(bytes, options.v2Max ?? V2_MAX_DEFAULT);
  }
  if (prefixOf(bytes, V1_SIG)) return parseV1(bytes);
  throw new ProxyProtocolError("not a PROXY protocol header");
}

function parseV1(bytes: Uint8Array): ProxyHeader | undefined {
  const end = Math.min(bytes.length, V1_MAX);
  let cr = -1;
  for (let i = V1_SIG.length; i < end; i++) {
    const b = bytes[i];
    if (b === 0x0d) {
      cr = i;
      break;
    }
    if (b < 0x20 || b > 0x7e) throw new ProxyProtocolError("v1: not a printable line");
  }
  if (cr < 0) {
    if (bytes.length >= V1_MAX) throw new ProxyProtocolError(`v1: longer than ${V1_MAX} bytes`);
    return undefined;
  }
  if (cr + 2 > V1_MAX) throw new ProxyProtocolError(`v1: longer than ${V1_MAX} bytes`);
  if (cr + 1 >= bytes.length) return undefined;
  if (bytes[cr + 1] !== 0x0a) throw new ProxyProtocolError("v1: CR without LF");
  const length = cr + 2;
  const line = new TextDecoder().decode(bytes.subarray(0, cr));
  const parts = line.split(" ");
  if (parts[1] === "UNKNOWN") return { version: 1, length };
  if (parts.length !== 6) throw new ProxyProtocolError("v1: expected 6 fields");
  const [, proto, src, dst, sport, dport] = parts;
  const v4 = proto === "TCP4";
  if (!v4 && proto !== "TCP6") throw new ProxyProtocolError("v1: protocol is not TCP4 or TCP6");
  const ok = v4 ? isV4 : isV6;
  if (!ok(src) || !ok(dst)) throw new ProxyProtocolError(`v1: bad ${proto} address`);
  const port = portOf(sport);
  if (port === undefined || portOf(dport) === undefined) {
    throw new ProxyProtocolError("v1: bad port");
  }
  return { version: 1, client: { address: v4 ? src : ipaddr.parse(src).toString(), port }, length };
}

function isV4(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text);
}

function isV6(text: string): boolean {
  return text.includes(":") && ipaddr.IPv6.isValid(text) && !text.includes("%");
}

function portOf(text: string): number | undefined {
  if (!/^(0|[1-9][0-9]{0,4})$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 65535 ? n : undefined;
}

function parseV2(bytes: Uint8Array, max: number): ProxyHeader | undefined {
  const versionCommand = bytes[12];
  if (versionCommand >> 4 !== 2) throw new ProxyProtocolError("v2: version is not 2");
  const command = versionCommand & 0x0f;
  if (command > 1) throw new ProxyProtocolError("v2: command is not LOCAL or PROXY");
  const family = bytes[13];
  const declared = (bytes[14] << 8) | bytes[15];
  const length = V2_HEAD + declared;
  if (length > max) throw new ProxyProtocolError(`v2: ${length} bytes, above ${max}`);
  if (bytes.length < length) return undefined;
  // LOCAL: the balancer speaking for itself (health checks); UNSPEC: no address given.
  if (command === 0 || family === 0x00) return { version: 2, length };
  const body = bytes.subarray(V2_HEAD, length);
  if (family === 0x11) {
    if (declared < 12) throw new ProxyProtocolError("v2: TCP4 addresses truncated");
    const address = `${body[0]}.${body[1]}.${body[2]}.${body[3]}`;
    return { version: 2, client: { address, port: (body[8] << 8) | body[9] }, length };
  }
  if (family === 0x21) {
    if (declared < 36) throw new ProxyProtocolError("v2: TCP6 addresses truncated");
    const address = ipaddr.fromByteArray([...body.subarray(0, 16)]).toString();
    return { version: 2, client: { address, port: (body[32] << 8) | body[33] }, length };
  }
  throw new ProxyProtocolError(`v2: family 0x${family.toString(16)} is not TCP4 or TCP6`);
}
