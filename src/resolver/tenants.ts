/**
 * Routing queries to tenant policies. The tenant comes from the face (the DoT SNI's first
 * label, the DoH path) as `ctx.tenant`, or else from an EDNS option carrying the tenant name
 * (default code 65011, as Cloudflare Gateway's per-location option); the option is removed
 * before the query goes further.
 *
 * @module
 */
import { EdeCode, Rcode } from "../dns/constants.ts";
import { type Query, withQueryOptions } from "../dns/query.ts";
import { errorAnswer } from "../dns/answer.ts";
import { withTenant } from "./middleware.ts";
import type { Handler, Middleware } from "./types.ts";

/** Options of {@linkcode tenantRouter}. */
export interface TenantRouterOptions {
  /** One handler per tenant name (lower case). */
  tenants: ReadonlyMap<string, Handler>;
  /** EDNS option code whose data is a tenant name. Default 65011; 0 turns it off. */
  ednsOption?: number;
  /** The tenant for queries that name none; unset: `next` (the global policy) answers. */
  defaultTenant?: string;
  /** A query naming an unknown tenant: `refuse` (REFUSED, EDE 18, the default) or `default`. */
  unknown?: "refuse" | "default";
}

const decoder = new TextDecoder();

/** Removes the tenant option from the query, returning the tenant name it carried. */
function takeEdnsTenant(query: Query, code: number): { name?: string; query: Query } {
  const option = query.info.opt?.options.find((o) => o.code === code);
  if (!option) return { query };
  const name = decoder.decode(option.data).trim().toLowerCase();
  return { name, query: withQueryOptions(query, (o) => o.code !== code) };
}

/**
 * Sends each query to its tenant's handler. Queries without a tenant go to `defaultTenant`, or
 * to `next` when there is none.
 *
 * @example
 * ```ts
 * const route = tenantRouter({ tenants: new Map([["kids", kidsHandler]]) });
 * const handler = compose([servfailOnError(), timeout(5000), route], globalHandler);
 * ```
 */
export function tenantRouter(options: TenantRouterOptions): Middleware {
  const code = options.ednsOption ?? 65011;
  const unknown = options.unknown ?? "refuse";
  return (next) => (query, ctx) => {
    let name = ctx.tenant;
    let q = query;
    if (code > 0 && query.info.opt) {
      const taken = takeEdnsTenant(query, code);
      q = taken.query;
      name ??= taken.name;
    }
    if (name === undefined || name === "") {
      const fallback = options.defaultTenant;
      if (fallback === undefined) return next(q, ctx);
      return options.tenants.get(fallback)!(q, withTenant(ctx, fallback));
    }
    const handler = options.tenants.get(name);
    if (handler) return handler(q, ctx.tenant === name ? ctx : withTenant(ctx, name));
    if (unknown === "default") {
      const fallback = options.defaultTenant;
      return fallback === undefined
        ? next(q, withTenant(ctx, undefined))
        : options.tenants.get(fallback)!(q, withTenant(ctx, fallback));
    }
    return Promise.resolve(
      errorAnswer(query.wire, query.info, Rcode.REFUSED, {
        code: EdeCode.PROHIBITED,
        text: "unknown tenant",
      }),
    );
  };
}
