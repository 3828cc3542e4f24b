/**
 * The local records middleware: answers from the table chosen for each query, else passes the
 * query on.
 *
 * @module
 */
import type { Middleware, QueryContext } from "../pipeline/types.ts";
import type { LocalRecords } from "./table.ts";

/**
 * Answers from the local set chosen for each query (e.g. per tenant), else passes the query on.
 * Put it after policy (ACL, rate limit) and before the cache, so a reload shows at once and
 * local answers never sit in the cache.
 *
 * @param select the set for this query; `undefined` skips local records
 * @example
 * ```ts
 * const watch = watchLocalRecords({ path: "home.zone", logger });
 * const handler = compose([aclMiddleware(acl), localRecordsMiddleware(() => watch.current()),
 *   cacheMiddleware(cache)], upstreamHandler);
 * ```
 */
export function localRecordsMiddleware(
  select: (ctx: QueryContext) => LocalRecords | undefined,
): Middleware {
  return (next) => (query, ctx) => {
    const answer = select(ctx)?.answer(query);
    if (!answer) return next(query, ctx);
    if (ctx.trace) ctx.trace.source = "local";
    return answer;
  };
}
