/**
 * Routing queries to tenant policies. A client chooses a tenant by a selector: the face's (the
 * DoT or DoQ SNI's first label, the DoH path) as `ctx.tenant`, or else an EDNS option carrying
 * it (default code 65011, as Cloudflare Gateway's per-location option); the option is removed
 * before the query goes further. A selector is the tenant's id when it has one, else its name.
 *
 * Selecting a tenant is a routing device, not authentication: a tenant's `allow` ranges are what
 * keep other clients out. A selector that names no tenant and one that names a tenant the client
 * may not use get the same answer, built the same way, so a client cannot tell which it was.
 *
 * @module
 */
import { EdeCode, Rcode } from "../dns/constants.ts";
import { type Query, withQueryOptions } from "../dns/query.ts";
import { errorAnswer } from "../dns/answer.ts";
import { Acl } from "./acl.ts";
import { withTenant } from "./middleware.ts";
import type { Handler, Middleware, QueryContext } from "../pipeline/types.ts";

/** One tenant as the router sees it. */
export interface TenantRoute {
  /** The tenant's name: `ctx.tenant` past the router (cache partition, metrics). */
  readonly name: string;
  /** What a client sends to choose it (lower case): its id when it has one, else its name. */
  readonly selector: string;
  readonly handler: Handler;
  /** Client addresses and CIDR ranges that may use it; unset: every client. */
  readonly allow?: readonly string[];
}

/** Options of {@linkcode tenantRouter}. */
export interface TenantRouterOptions {
  /** The tenants (selectors are unique), or a table made of them and `defaultTenant`. */
  tenants: readonly TenantRoute[] | TenantTable;
  /** EDNS option code whose data is a tenant selector. Default 65011; 0 turns it off. */
  ednsOption?: number;
  /**
   * The name of the tenant for queries that choose none; unset: `next` (the global policy).
   * A {@linkcode TenantTable} in `tenants` brings its own.
   */
  defaultTenant?: string;
  /**
   * A query choosing a tenant that is unknown, or that the client may not use: `refuse`
   * (REFUSED, EDE 18, the default) or `default` (as if it had chosen none).
   */
  unknown?: "refuse" | "default";
}

/** The answer's EDE text for an unknown or not-allowed tenant alike; it names no tenant. */
export const TENANT_UNAVAILABLE = "tenant not available";

interface Entry {
  readonly route: TenantRoute;
  /** `undefined`: every client. */
  readonly acl?: Acl;
}

const decoder = new TextDecoder();

/** What an unknown selector is checked against (see {@linkcode TenantTable.choose}). */
const DECOY: Entry = {
  route: { name: "", selector: "", handler: () => Promise.reject(new Error("decoy")) },
  acl: new Acl({ allow: ["192.0.2.0/24", "2001:db8::/32"] }),
};

/**
 * The tenant selector a query's EDNS option `code` carries (lower case), if any; nothing is
 * changed (see {@linkcode takeEdnsSelector} for the router, which also removes it).
 */
export function ednsSelector(query: Query, code: number): string | undefined {
  if (code <= 0 || !query.info.opt) return undefined;
  const option = query.info.opt.options.find((o) => o.code === code);
  return option ? decoder.decode(option.data).trim().toLowerCase() : undefined;
}

/** Removes the tenant option from the query, returning the selector it carried. */
function takeEdnsSelector(query: Query, code: number): { selector?: string; query: Query } {
  const option = query.info.opt?.options.find((o) => o.code === code);
  if (!option) return { query };
  const selector = decoder.decode(option.data).trim().toLowerCase();
  return { selector, query: withQueryOptions(query, (o) => o.code !== code) };
}

/**
 * The tenants by selector, with each one's client check: what the router decides, and the same
 * decision for metric labels.
 *
 * @throws {RangeError} on a bad `allow` entry, or a `defaultTenant` that is no tenant's name
 */
export class TenantTable {
  readonly #bySelector = new Map<string, Entry>();
  readonly #default?: Entry;

  /** @param defaultTenant the name of the tenant for queries that choose none */
  constructor(tenants: readonly TenantRoute[], defaultTenant?: string) {
    for (const route of tenants) {
      const acl = route.allow ? new Acl({ allow: route.allow }) : undefined;
      const entry = { route, acl };
      this.#bySelector.set(route.selector, entry);
      if (route.name === defaultTenant) this.#default = entry;
    }
    if (defaultTenant !== undefined && !this.#default) {
      throw new RangeError(`default tenant "${defaultTenant}" is not a tenant`);
    }
  }

  /**
   * Where a query choosing `selector` (`undefined` or `""`: none) from `client` goes: its
   * tenant, or `undefined` for the global policy, or `null` when the selector names no tenant
   * or one the client may not use (the two are not told apart). Without a selector the default
   * tenant answers, when there is one and the client may use it (else `null`).
   */
  choose(
    selector: string | undefined,
    client: QueryContext["client"],
  ): TenantRoute | undefined | null {
    const entry = selector ? this.#bySelector.get(selector) : this.#default;
    if (entry === undefined) {
      if (!selector) return undefined;
      // The client check a known tenant would cost (parsing the address dominates), so an
      // unknown selector takes as long to refuse as a not-allowed one.
      this.#allows(DECOY, client);
      return null;
    }
    return this.#allows(entry, client) ? entry.route : null;
  }

  /** The default tenant if the client may use it, else the global policy. */
  fallback(client: QueryContext["client"]): TenantRoute | undefined {
    const entry = this.#default;
    return entry && this.#allows(entry, client) ? entry.route : undefined;
  }

  /**
   * The metric label of a query's tenant as the client chose it (the face's selector, else the
   * EDNS option's): `""` for none, the tenant's name, or `unknown` for a selector that names no
   * tenant or one the client may not use (never the selector itself), whichever way it came.
   */
  label(ctx: QueryContext, ednsSelector?: string): string {
    const selector = ctx.tenant || ednsSelector;
    if (!selector) return "";
    const choice = this.choose(selector, ctx.client);
    return choice ? choice.name : "unknown";
  }

  /** A client without an address may not use a tenant that has an allow list. */
  #allows(entry: Entry, client: QueryContext["client"]): boolean {
    return !entry.acl || (client !== undefined && entry.acl.allows(client.address));
  }
}

/**
 * Sends each query to its tenant's handler. Queries without a selector go to the default
 * tenant, or to `next` when there is none.
 *
 * @example
 * ```ts
 * const route = tenantRouter({
 *   tenants: [{ name: "kids", selector: "kids", handler: kidsHandler, allow: ["192.0.2.0/24"] }],
 * });
 * const handler = compose([servfailOnError(), timeout(5000), route], globalHandler);
 * ```
 */
export function tenantRouter(options: TenantRouterOptions): Middleware {
  const code = options.ednsOption ?? 65011;
  const unknown = options.unknown ?? "refuse";
  const tenants = options.tenants instanceof TenantTable
    ? options.tenants
    : new TenantTable(options.tenants, options.defaultTenant);
  return (next) => (query, ctx) => {
    let selector = ctx.tenant;
    let q = query;
    if (code > 0 && query.info.opt) {
      const taken = takeEdnsSelector(query, code);
      q = taken.query;
      selector ||= taken.selector;
    }
    let choice = tenants.choose(selector, ctx.client);
    if (choice === null) {
      if (unknown === "refuse") {
        if (ctx.trace) ctx.trace.source = "refused";
        return errorAnswer(query.wire, query.info, Rcode.REFUSED, {
          code: EdeCode.PROHIBITED,
          text: TENANT_UNAVAILABLE,
        });
      }
      choice = tenants.fallback(ctx.client);
    }
    if (choice === undefined) {
      return next(q, ctx.tenant === undefined ? ctx : withTenant(ctx, undefined));
    }
    const { name, handler } = choice;
    if (ctx.trace) ctx.trace.tenant = name;
    return handler(q, ctx.tenant === name ? ctx : withTenant(ctx, name));
  };
}
