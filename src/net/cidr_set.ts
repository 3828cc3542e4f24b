/**
 * A set of addresses given as CIDR ranges (or single addresses), and whether an address is in
 * it: the ACL's lists, the peers trusted to send a PROXY protocol header or a forwarded-address
 * header.
 *
 * Runtime-agnostic: no `Deno.*`.
 *
 * @module
 */
import ipaddr from "ipaddr.js";

/** A parsed address. */
export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

type Range = [IpAddress, number];

/**
 * `text` as an address: brackets and a zone index are dropped, and an IPv4-mapped IPv6 address
 * (`::ffff:192.0.2.1`, in any spelling) becomes the IPv4 one. Undefined when it is not one.
 */
export function parseAddress(text: string): IpAddress | undefined {
  try {
    return ipaddr.process(text.replace(/^\[|\]$/g, "").replace(/%.*$/, ""));
  } catch {
    return undefined;
  }
}

/**
 * CIDR ranges, matched by {@linkcode CidrSet.has}. IPv4-mapped IPv6 ranges (`::ffff:10.0.0.0/104`)
 * are taken as the IPv4 ranges they map, as addresses are.
 *
 * @example
 * ```ts
 * const trusted = new CidrSet(["127.0.0.0/8", "::1"], "--trusted-proxy-from");
 * trusted.has("127.0.0.5"); // true
 * trusted.has("::ffff:127.0.0.1"); // true
 * ```
 */
export class CidrSet {
  readonly #ranges: Range[];

  /**
   * @param what names the list in the error, e.g. `"deny"`
   * @throws {RangeError} naming `what` and the bad entry
   */
  constructor(list: readonly string[], what: string) {
    this.#ranges = list.map((text) => {
      const cidr = text.includes("/") ? text : `${text}/${text.includes(":") ? 128 : 32}`;
      let range: Range;
      try {
        range = ipaddr.parseCIDR(cidr);
      } catch {
        throw new RangeError(`${what}: "${text}" is not an address or CIDR range`);
      }
      const [addr, bits] = range;
      if (addr.kind() === "ipv6" && (addr as ipaddr.IPv6).isIPv4MappedAddress()) {
        return [(addr as ipaddr.IPv6).toIPv4Address(), Math.max(0, bits - 96)];
      }
      return range;
    });
  }

  /** Ranges in the set. */
  get size(): number {
    return this.#ranges.length;
  }

  /** Whether `address` is in a range of the set; an unparseable one never is. */
  has(address: string): boolean {
    const addr = parseAddress(address);
    return addr !== undefined && this.contains(addr);
  }

  /** Whether the parsed `addr` is in a range of the set. */
  contains(addr: IpAddress): boolean {
    for (const [net, bits] of this.#ranges) {
      if (net.kind() === addr.kind() && addr.match(net, bits)) return true;
    }
    return false;
  }
}

/**
 * A membership test remembered per address (the last 4096 distinct addresses), so a parse per
 * query becomes a map lookup for the clients a face keeps seeing.
 *
 * @example
 * ```ts
 * const mayUse = memoizedMembership((a) => set.has(a));
 * ```
 */
export function memoizedMembership(
  test: (address: string) => boolean,
  max = 4096,
): (address: string) => boolean {
  const seen = new Map<string, boolean>();
  // The last address asked, for a run of queries from one client (no hashing of its string).
  let lastAddress = "";
  let lastAnswer = false;
  return (address) => {
    if (address === lastAddress) return lastAnswer;
    let known = seen.get(address);
    if (known === undefined) {
      known = test(address);
      if (seen.size >= max) seen.clear();
      seen.set(address, known);
    }
    lastAddress = address;
    lastAnswer = known;
    return known;
  };
}
