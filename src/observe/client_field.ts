/**
 * What the query log says about a client (`--query-log-client`): `none` (nothing), `truncated`
 * (the network: IPv4 /24, IPv6 /56, as Google Public DNS and Cloudflare keep them), `hashed` (a
 * keyed hash that changes every UTC day with a key never written anywhere, as dnscrypt-proxy and
 * Cloudflare do: lines of one day can be grouped by client, lines of two days cannot be linked)
 * or `full` (the address).
 *
 * @module
 */

/** The `--query-log-client` choices. */
export type ClientPrivacy = "none" | "truncated" | "hashed" | "full";

/** What `hashed` needs from the runtime. */
export interface ClientHashing {
  /** A fresh random key (at least 16 bytes); one is made for each UTC day. */
  randomKey: () => Uint8Array;
  /** A keyed hash of `text` (HMAC-SHA-256, say), as lower-case hex. */
  hmac: (key: Uint8Array, text: string) => string;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
}

const DAY_MS = 86_400_000;
/** Most addresses remembered per field before the memo starts over (bounded memory). */
const MEMO_MAX = 4_096;

/**
 * The network part of `address`: IPv4 `a.b.c.0/24`, IPv6 its /56 (`2001:db8:0:ab00::/56`); an
 * IPv4-mapped IPv6 address is taken as IPv4. Anything that is no address gives `"?"`.
 *
 * @example
 * ```ts
 * truncateAddress("192.0.2.77"); // "192.0.2.0/24"
 * truncateAddress("2001:db8:1:2ab::1"); // "2001:db8:1:200::/56"
 * ```
 */
export function truncateAddress(address: string): string {
  let a = address;
  if (a.startsWith("[")) a = a.slice(1, a.indexOf("]"));
  const pct = a.indexOf("%");
  if (pct >= 0) a = a.slice(0, pct);
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(a);
  if (mapped) a = mapped[1];
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(a);
  if (v4) {
    if (v4.slice(1).some((o) => Number(o) > 255)) return "?";
    return `${Number(v4[1])}.${Number(v4[2])}.${Number(v4[3])}.0/24`;
  }
  const groups = ipv6Groups(a);
  if (!groups) return "?";
  const kept = [groups[0], groups[1], groups[2], groups[3] & 0xff00];
  while (kept.length > 0 && kept[kept.length - 1] === 0) kept.pop();
  return `${kept.map((g) => g.toString(16)).join(":")}::/56`;
}

/** The eight 16-bit groups of an IPv6 address (a dotted IPv4 tail allowed), or undefined. */
function ipv6Groups(text: string): number[] | undefined {
  if (!text.includes(":") || !/^[0-9a-f:.]+$/i.test(text)) return undefined;
  let t = text;
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(t);
  if (v4) {
    const o = v4.slice(1).map(Number);
    if (o.some((x) => x > 255)) return undefined;
    t = `${t.slice(0, v4.index)}${((o[0] << 8) | o[1]).toString(16)}:${
      ((o[2] << 8) | o[3]).toString(16)
    }`;
  }
  return expand(t.split("::"));
}

function expand(parts: string[]): number[] | undefined {
  if (parts.length > 2) return undefined;
  const head = parts[0] ? parts[0].split(":") : [];
  const rest = parts.length === 2 && parts[1] ? parts[1].split(":") : [];
  const missing = 8 - head.length - rest.length;
  if (parts.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...Array(parts.length === 2 ? missing : 0).fill("0"), ...rest];
  const out: number[] = [];
  for (const g of all) {
    if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
    out.push(parseInt(g, 16));
  }
  return out;
}

/**
 * The client field for one privacy level: a function of the client's address giving what the
 * query log writes, or `undefined` for nothing. Results are remembered per address (a bounded
 * memo, emptied when full and, for `hashed`, when the day changes).
 *
 * @throws {TypeError} for `hashed` without `hashing`
 * @example
 * ```ts
 * const field = clientField("truncated");
 * field("198.51.100.23"); // "198.51.100.0/24"
 * ```
 */
export function clientField(
  privacy: ClientPrivacy,
  hashing?: ClientHashing,
): (address: string | undefined) => string | undefined {
  switch (privacy) {
    case "none":
      return () => undefined;
    case "full":
      return (address) => address;
    case "truncated":
      return memo(truncateAddress);
    case "hashed": {
      if (!hashing) throw new TypeError("query log: hashed clients need a keyed hash");
      const now = hashing.now ?? Date.now;
      let day = -1;
      let key: Uint8Array = new Uint8Array();
      let hashed = memo((a) => hashing.hmac(key, a).slice(0, 16));
      return (address) => {
        if (address === undefined) return undefined;
        const today = Math.floor(now() / DAY_MS);
        if (today !== day) {
          day = today;
          key = hashing.randomKey();
          hashed = memo((a) => hashing.hmac(key, a).slice(0, 16));
        }
        return hashed(address);
      };
    }
  }
}

function memo(
  fn: (address: string) => string,
): (address: string | undefined) => string | undefined {
  const seen = new Map<string, string>();
  return (address) => {
    if (address === undefined) return undefined;
    let out = seen.get(address);
    if (out === undefined) {
      if (seen.size >= MEMO_MAX) seen.clear();
      out = fn(address);
      seen.set(address, out);
    }
    return out;
  };
}
