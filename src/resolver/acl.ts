/**
 * Access control by CIDR: who may use the bridge.
 *
 * @module
 */
import { EdeCode, Rcode } from "../dns/constants.ts";
import { errorAnswer } from "../dns/answer.ts";
import { CidrSet, memoizedMembership, parseAddress } from "../net/cidr_set.ts";
import type { Middleware } from "../pipeline/types.ts";

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
  readonly #allow: CidrSet;
  readonly #deny: CidrSet;
  /** The verdict per address, remembered: the ACL, a tenant's and the metrics' label ask. */
  readonly #allows: (address: string) => boolean;

  /** @throws {RangeError} naming the bad entry */
  constructor(options: { allow?: readonly string[]; deny?: readonly string[] } = {}) {
    this.#allow = new CidrSet(options.allow ?? [], "allow");
    this.#deny = new CidrSet(options.deny ?? [], "deny");
    this.#allows = memoizedMembership((address) => this.#decide(address));
  }

  /** True when the ACL lets everyone in (no allow list, no deny list). */
  get open(): boolean {
    return this.#allow.size === 0 && this.#deny.size === 0;
  }

  /** Whether `address` may use the bridge. Unparseable addresses are refused unless open. */
  allows(address: string): boolean {
    return this.open || this.#allows(address);
  }

  #decide(address: string): boolean {
    const addr = parseAddress(address);
    if (addr === undefined || this.#deny.contains(addr)) return false;
    return this.#allow.size === 0 || this.#allow.contains(addr);
  }
}

/** Answers REFUSED (RFC 8914 code 18, Prohibited) to clients the ACL does not allow. */
export function aclMiddleware(acl: Acl): Middleware {
  if (acl.open) return (next) => next;
  return (next) => (query, ctx) => {
    if (ctx.client && !acl.allows(ctx.client.address)) {
      if (ctx.trace) ctx.trace.source = "refused";
      return errorAnswer(query.wire, query.info, Rcode.REFUSED, { code: EdeCode.PROHIBITED });
    }
    return next(query, ctx);
  };
}
