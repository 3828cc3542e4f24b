/**
 * Routes by name (split DNS): names under a suffix go to that suffix's upstream, the longest
 * matching suffix winning, and every other name to the default upstream. The router is an
 * Upstream built from Upstreams, like the groups, so the pipeline never knows it is there.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";
import { UpstreamGroup } from "./group.ts";
import type { MemberState } from "./health.ts";
import type { Upstream } from "./types.ts";

/**
 * Suffixes to values, looked up by the longest suffix of a name. Suffixes and names are in
 * presentation form without the final dot, compared ASCII case-insensitively, label by label
 * (`ample.lan` is no suffix of `example.lan`; an escaped dot `\.` does not end a label).
 *
 * @example
 * ```ts
 * const table = new RouteTable([["lan", "router"], ["168.192.in-addr.arpa", "router"]]);
 * table.lookup("nas.lan"); // "router"
 * table.lookup("example.com"); // undefined
 * ```
 */
export class RouteTable<T> {
  readonly #bySuffix = new Map<string, T>();

  /** @throws {RangeError} for an empty suffix or one given twice */
  constructor(entries: Iterable<readonly [string, T]>) {
    for (const [suffix, value] of entries) {
      const key = suffix.toLowerCase().replace(/\.$/, "");
      if (key === "") throw new RangeError("route: the root is no suffix (it is the default)");
      if (this.#bySuffix.has(key)) throw new RangeError(`route: "${key}" given twice`);
      this.#bySuffix.set(key, value);
    }
  }

  /** Routes in the table. */
  get size(): number {
    return this.#bySuffix.size;
  }

  /** The value of the longest suffix of `name` in the table (the name itself included). */
  lookup(name: string): T | undefined {
    if (this.#bySuffix.size === 0 || name === "") return undefined;
    const lower = name.toLowerCase();
    for (let k = 0; k >= 0; k = labelAfter(lower, k)) {
      const hit = this.#bySuffix.get(k === 0 ? lower : lower.slice(k));
      if (hit !== undefined) return hit;
    }
    return undefined;
  }
}

/** The offset of the label after the one starting at `k`, or -1 after the last; skips `\.`. */
function labelAfter(name: string, k: number): number {
  for (let i = k; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 0x5c) i++; // an escape: the next character is part of the label
    else if (c === 0x2e) return i + 1;
  }
  return -1;
}

/** Options of {@linkcode NameRouter}. */
export interface NameRouterOptions {
  /** Names under no route go here. */
  readonly fallback: Upstream;
  /** Suffix → upstream; several suffixes may share one upstream. */
  readonly routes: Iterable<readonly [string, Upstream]>;
  /**
   * Whether `close()` closes the upstreams too. Default false: routes' upstreams are usually
   * shared (built once for every policy that routes to them), so their builder closes them.
   */
  readonly ownsUpstreams?: boolean;
}

/**
 * Sends each query to the upstream of the longest route suffix its question name has, or to
 * `fallback`. Safe for concurrent use (it holds no per-query state); never modifies the query.
 * Errors are the chosen upstream's. Its name lists the routes, e.g.
 * `routes(lan, 168.192.in-addr.arpa; else https://dns.example:443)`.
 *
 * @example
 * ```ts
 * const upstream = new NameRouter({ fallback: doh, routes: [["lan", router], ["168.192.in-addr.arpa", router]] });
 * ```
 */
export class NameRouter implements Upstream {
  readonly name: string;
  readonly #fallback: Upstream;
  readonly #table: RouteTable<Upstream>;
  readonly #all: Upstream[];
  readonly #owns: boolean;

  /** @throws {RangeError} as {@linkcode RouteTable} */
  constructor(options: NameRouterOptions) {
    const routes = [...options.routes];
    this.#fallback = options.fallback;
    this.#table = new RouteTable(routes);
    this.#all = [...new Set([options.fallback, ...routes.map(([, u]) => u)])];
    this.#owns = options.ownsUpstreams ?? false;
    this.name = `routes(${routes.map(([s]) => s).join(", ")}; else ${options.fallback.name})`;
  }

  /** The upstream a name goes to. */
  route(name: string): Upstream {
    return this.#table.lookup(name) ?? this.#fallback;
  }

  exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    return (this.#table.lookup(query.question.name) ?? this.#fallback).exchange(query, signal);
  }

  /**
   * Health of the members of every failover or round-robin group routed to (fallback included),
   * each group once.
   */
  health(): MemberState[] {
    return this.#all.flatMap((u) => u instanceof UpstreamGroup ? u.health() : []);
  }

  async close(): Promise<void> {
    if (this.#owns) await Promise.all(this.#all.map((u) => u.close()));
  }
}
