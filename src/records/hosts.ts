/**
 * The hosts file format: `IP name [aliases...]`, `#` comments. IPv4 gives A, IPv6 gives AAAA (a
 * `%zone` suffix is dropped), and every name also gets a PTR under in-addr.arpa / ip6.arpa (at
 * most {@linkcode MAX_HOSTS_PTR_NAMES} per address, none for 0.0.0.0 and ::, the sinkhole
 * addresses of block lists).
 *
 * @module
 */
import { canonicalName, fail, ipv4Bytes, ipv6Bytes, type LocalRecord } from "./record.ts";

/** Most PTR names a hosts file gives one address. */
export const MAX_HOSTS_PTR_NAMES = 16;

/** The reverse-lookup name of an address: `d.c.b.a.in-addr.arpa` or nibbles under ip6.arpa. */
export function reverseName(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${[...bytes].reverse().join(".")}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = bytes.length - 1; i >= 0; i--) {
    nibbles.push((bytes[i] & 0x0f).toString(16), (bytes[i] >> 4).toString(16));
  }
  return `${nibbles.join(".")}.ip6.arpa`;
}

/**
 * Parses a hosts file into records: A or AAAA for every name on a line, and PTRs for the
 * address (see the module doc for the limits).
 *
 * @throws {SyntaxError} `line N: ...` for a bad address, a bad name or a line without names
 * @example
 * ```ts
 * parseHosts("10.0.0.2 nas.home.arpa nas # the NAS\n"); // A ×2, PTR ×2
 * ```
 */
export function parseHosts(text: string): LocalRecord[] {
  const records: LocalRecord[] = [];
  const ptrCount = new Map<string, number>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const hash = lines[i].indexOf("#");
    const tokens = (hash >= 0 ? lines[i].slice(0, hash) : lines[i]).split(/\s+/).filter(Boolean);
    if (tokens.length === 0) continue;
    const [addressText, ...names] = tokens;
    const address = addressText.includes(":") ? addressText.replace(/%.*$/, "") : addressText;
    const bytes = ipv4Bytes(address) ?? ipv6Bytes(address);
    if (!bytes) fail(line, `bad address "${addressText}"`);
    if (names.length === 0) fail(line, `address "${addressText}" has no host names`);
    const type = bytes.length === 4 ? "A" : "AAAA";
    const sinkhole = bytes.every((b) => b === 0);
    const reverse = reverseName(bytes);
    for (const text of names) {
      const name = canonicalName(text);
      if (!name) fail(line, `bad name "${text}"`);
      records.push({ name, type, address, line });
      const count = ptrCount.get(reverse) ?? 0;
      if (sinkhole || count >= MAX_HOSTS_PTR_NAMES) continue;
      ptrCount.set(reverse, count + 1);
      records.push({ name: reverse, type: "PTR", target: name, line });
    }
  }
  return records;
}
