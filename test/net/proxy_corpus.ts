/**
 * PROXY protocol test material shared by the parser's tests and the listener fuzz suite: header
 * builders and the corpus of headers that must be refused.
 *
 * @module
 */

const text = (s: string) => new TextEncoder().encode(s);

/** The version 2 signature. */
export const SIG = [0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a];

/** A version 2 header: command (0 LOCAL, 1 PROXY), family byte, body (addresses + TLVs). */
export function v2(command: number, family: number, body: number[]): Uint8Array {
  return new Uint8Array([
    ...SIG,
    0x20 | command,
    family,
    body.length >> 8,
    body.length & 0xff,
    ...body,
  ]);
}

/** TCP4 addresses block: src, dst, sport, dport. */
export function tcp4(src: number[], dst: number[], sport: number, dport: number): number[] {
  return [...src, ...dst, sport >> 8, sport & 0xff, dport >> 8, dport & 0xff];
}

/** Headers that must be refused, each with why. */
export const MALFORMED: [string, Uint8Array][] = [
  ["not a header at all", text("GET / HTTP/1.1\r\n\r\n")],
  ["TLS ClientHello", new Uint8Array([0x16, 0x03, 0x01, 0x00, 0xc8, 0x01])],
  ["lower-case signature", text("proxy TCP4 1.2.3.4 1.2.3.4 1 2\r\n")],
  ["v1 UDP4", text("PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n")],
  ["v1 too few fields", text("PROXY TCP4 1.2.3.4 1.2.3.4 1\r\n")],
  ["v1 too many fields", text("PROXY TCP4 1.2.3.4 1.2.3.4 1 2 3\r\n")],
  ["v1 double space", text("PROXY TCP4  1.2.3.4 1.2.3.4 1 2\r\n")],
  ["v1 IPv6 in TCP4", text("PROXY TCP4 ::1 ::1 1 2\r\n")],
  ["v1 IPv4 in TCP6", text("PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n")],
  ["v1 octet above 255", text("PROXY TCP4 1.2.3.256 1.2.3.4 1 2\r\n")],
  ["v1 port above 65535", text("PROXY TCP4 1.2.3.4 1.2.3.4 65536 2\r\n")],
  ["v1 port with leading zero", text("PROXY TCP4 1.2.3.4 1.2.3.4 01 2\r\n")],
  ["v1 negative port", text("PROXY TCP4 1.2.3.4 1.2.3.4 -1 2\r\n")],
  ["v1 scoped IPv6", text("PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n")],
  ["v1 CR without LF", text("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rX")],
  ["v1 bare LF", text("PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n")],
  ["v1 NUL inside", text("PROXY TCP4 1.2.3.4\u0000 1.2.3.4 1 2\r\n")],
  ["v1 non-ASCII", text("PROXY TCP4 1.2.3.4 1.2.3.4 1 2é\r\n")],
  ["v2 version 1", new Uint8Array([...SIG, 0x11, 0x11, 0, 12, ...new Array(12).fill(0)])],
  ["v2 command 2", new Uint8Array([...SIG, 0x22, 0x11, 0, 12, ...new Array(12).fill(0)])],
  ["v2 UDP4", v2(1, 0x12, tcp4([1, 2, 3, 4], [1, 2, 3, 4], 1, 2))],
  ["v2 UNIX stream", v2(1, 0x31, new Array(216).fill(0))],
  ["v2 TCP4 short", v2(1, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1])],
  ["v2 TCP6 short", v2(1, 0x21, new Array(30).fill(0))],
  ["v2 family 0xff", v2(1, 0xff, [])],
  ["v2 length over the cap", new Uint8Array([...SIG, 0x21, 0x11, 0x01, 0xf1])], // 16 + 497
  ["v2 length 65535", new Uint8Array([...SIG, 0x21, 0x11, 0xff, 0xff])],
];
