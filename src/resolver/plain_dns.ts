/**
 * The policy of the plain DNS face (`face: "dns"`), which the encrypted faces do not need: it is
 * not an open resolver unless the operator says so, and it answers ANY minimally.
 *
 * - **Who**: with no `--allow`, only clients in the local ranges (`--dns-default-allow`: loopback,
 *   RFC 1918, RFC 6598, ULA, link-local) are answered; others get REFUSED with Extended DNS Error
 *   18 (Prohibited). An `--allow` list replaces this (the ACL in front already applied it).
 * - **ANY** (RFC 8482 §4.2): a question of type ANY gets one synthesized `HINFO "RFC8482" ""`
 *   record instead of every record at the name, so it cannot be used to amplify.
 *
 * Queries from the other faces pass through untouched.
 *
 * @module
 */
import { EdeCode, Rcode, RrType } from "../dns/constants.ts";
import { errorAnswer } from "../dns/answer.ts";
import { type Prepared, preparedOf } from "../records/build.ts";
import { assembleAnswer } from "../dns/assemble.ts";
import { memoizedMembership } from "../net/cidr_set.ts";

export { memoizedMembership };
import type { Middleware } from "../pipeline/types.ts";

/** The TTL of the synthesized HINFO: an hour, so a client does not ask again soon (§4.2). */
export const ANY_HINFO_TTL = 3600;

/** The EDE text of a refusal to a client outside the allowed ranges. */
export const NOT_OPEN_TEXT = "not an open resolver";

/**
 * The answer body to ANY: `<qname> IN HINFO "RFC8482" ""`, the owner a pointer to the question's
 * name (offset 12).
 */
const ANY_BODY: Prepared = (() => {
  const cpu = [..."RFC8482"].map((c) => c.charCodeAt(0));
  const rdata = [cpu.length, ...cpu, 0];
  const ttl = ANY_HINFO_TTL;
  return preparedOf(
    Rcode.NOERROR,
    1,
    0,
    Uint8Array.from([
      0xc0,
      0x0c,
      0,
      RrType.HINFO,
      0,
      1,
      ttl >>> 24,
      (ttl >>> 16) & 0xff,
      (ttl >>> 8) & 0xff,
      ttl & 0xff,
      0,
      rdata.length,
      ...rdata,
    ]),
  );
})();

/** Options of {@linkcode plainDnsPolicy}. */
export interface PlainDnsPolicyOptions {
  /**
   * Whether a client may use the plain face (`--dns-default-allow`, when no `--allow` is set);
   * unset: everyone the ACL let through. Called once per query: make it cheap.
   */
  readonly mayUse?: (address: string) => boolean;
}

/**
 * The plain DNS face's policy, placed after the ACL and the rate limit.
 *
 * @example
 * ```ts
 * const policy = plainDnsPolicy({ mayUse: (a) => isPrivateAddress(a) });
 * const handler = compose([aclMiddleware(acl), policy], next);
 * ```
 */
export function plainDnsPolicy(options: PlainDnsPolicyOptions = {}): Middleware {
  const { mayUse } = options;
  return (next) => (query, ctx) => {
    if (ctx.face !== "dns") return next(query, ctx);
    if (mayUse && ctx.client && !mayUse(ctx.client.address)) {
      if (ctx.trace) ctx.trace.source = "refused";
      return errorAnswer(query.wire, query.info, Rcode.REFUSED, {
        code: EdeCode.PROHIBITED,
        text: NOT_OPEN_TEXT,
      });
    }
    if (query.question.type === RrType.ANY) {
      if (ctx.trace) ctx.trace.source = "local";
      return assembleAnswer(query, ANY_BODY);
    }
    return next(query, ctx);
  };
}
