/**
 * Access control by CIDR: who may use the bridge.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { EdeCode, Rcode } from "../dns/constants.ts";
import { errorAnswer } from "../dns/answer.ts";
import type { Middleware } from "./types.ts";

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseRanges(list: readonly string[], what: string): Range[] {
  return list.map((text) => {
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

function matches(addr: ipaddr.IPv4 | ipaddr.IPv6, ranges: readonly Range[]): boolean {
  for (const [net, bits] of ranges) {
    if (net.kind() === addr.kind() && addr.match(net, bits)) return true;
  }
  return false;
}

/**
 * An allow list and a deny list of CIDR ranges. A client is allowed when it matches no deny
 * range and either the allow list is empty (everyone) or it matches an allow range. IPv4-mapped
 * IPv6 addresses (`::ffff:192.0.2.1`) are treated as the IPv4 address.
 *
 * @example
 * ```ts
 * const acl = new Acl({ allow: ["192.0.2.0/24", "2001:db8::/32"], deny: ["192.0.2.66"] });
 * acl.allows("192.0.2.10"); // true
 * ```
 */
export class Acl {
  readonly #allow: Range[];
  readonly #deny: Range[];

  /** @throws {RangeError} naming the bad entry */
  constructor(options: { allow?: readonly string[]; deny?: readonly string[] } = {}) {
    this.#allow = parseRanges(options.allow ?? [], "allow");
    this.#deny = parseRanges(options.deny ?? [], "deny");
  }

  /** True when the ACL lets everyone in (no allow list, no deny list). */
  get open(): boolean {
    return this.#allow.length === 0 && this.#deny.length === 0;
  }

  /** Whether `address` may use the bridge. Unparseable addresses are refused unless open. */
  allows(address: string): boolean {
    if (this.open) return true;
    let addr: ipaddr.IPv4 | ipaddr.IPv6;
    try {
      addr = ipaddr.process(address.replace(/^\[|\]$/g, "").replace(/%.*$/, ""));
    } catch {
      return false;
    }
    if (matches(addr, this.#deny)) return false;
    return this.#allow.length === 0 || matches(addr, this.#allow);
  }
}

/** Answers REFUSED (RFC 8914 code 18, Prohibited) to clients the ACL does not allow. */
export function aclMiddleware(acl: Acl): Middleware {
  if (acl.open) return (next) => next;
  return (next) => (query, ctx) => {
    if (ctx.client && !acl.allows(ctx.client.address)) {
      return Promise.resolve(
        errorAnswer(query.wire, query.info, Rcode.REFUSED, { code: EdeCode.PROHIBITED }),
      );
    }
    return next(query, ctx);
  };
}
