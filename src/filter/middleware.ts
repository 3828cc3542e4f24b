/**
 * The filter's two stages. Above the cache, a query whose name a blocklist lists (and no
 * allowlist allows) is answered at once, never fetched. Below the cache, an upstream answer
 * whose CNAME chain passes through a blocked name is replaced by the blocked answer (CNAME
 * cloaking: trackers behind first-party aliases), before the cache keeps it.
 *
 * The CNAME check sits below the cache because above it every cache hit would pay for it (a
 * promise reaction and a walk of the answer: ~0.2 µs in process, a few percent of a cached DoT
 * query), while a chain only changes when the answer is fetched again. So a cloaked name is
 * counted and traced as blocked when it is fetched, and answered from the cache for the block
 * TTL after that; and a list change reaches the CNAME chains of answers already cached when they
 * expire, where it reaches query names at once.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import { HEADER_LENGTH, RrType } from "../dns/constants.ts";
import { skipName } from "../dns/wire.ts";
import type { Query } from "../dns/query.ts";
import { isPending, type Middleware, passThrough, type QueryContext } from "../pipeline/types.ts";
import type { BlockedAnswers } from "./blocked_answer.ts";
import type { Blocked, FilterPolicy } from "./policy.ts";

/** Options of {@linkcode filterMiddleware} and {@linkcode cnameFilterMiddleware}. */
export interface FilterStageOptions {
  /** The policy's lists. */
  readonly policy: FilterPolicy;
  /** What a blocked query gets. */
  readonly answers: BlockedAnswers;
  /** Told of each blocked query, with the list that blocked it. Must not throw. */
  readonly onBlocked?: (list: string, ctx: QueryContext) => void;
}

/** The blocked answer to `query`, with the trace and the hook told. */
function block(options: FilterStageOptions, query: Query, ctx: QueryContext, b: Blocked): Answer {
  const list = b.list.name;
  if (ctx.trace) {
    ctx.trace.source = "blocked";
    ctx.trace.list = list;
  }
  options.onBlocked?.(list, ctx);
  return options.answers.answer(query, b.action);
}

/**
 * The query-name stage. Put it after policy (ACL, rate limit, tenant router) and local records,
 * and before the cache: a blocked name costs no cache entry and no upstream query, and a
 * reloaded list applies at once, to names already cached too. With no lists it is a
 * pass-through.
 *
 * @example
 * ```ts
 * const options = {
 *   policy: new FilterPolicy({ hasher, blocklists: [ads] }),
 *   answers: new BlockedAnswers("nxdomain", 60),
 * };
 * const handler = compose(
 *   [aclMiddleware(acl), filterMiddleware(options), cacheMiddleware(cache),
 *     cnameFilterMiddleware(options)],
 *   upstream,
 * );
 * ```
 */
export function filterMiddleware(options: FilterStageOptions): Middleware {
  const { policy } = options;
  if (policy.empty) return passThrough;
  return (next) => (query, ctx) => {
    const verdict = policy.check(query.wire, HEADER_LENGTH);
    if (verdict === null || verdict.allowed) return next(query, ctx);
    return block(options, query, ctx, verdict);
  };
}

/**
 * The CNAME stage, below the cache (see the module's notes): an answer from further down whose
 * CNAME chain passes through a name the policy blocks becomes the blocked answer for the query.
 * A query name the policy allows explicitly (allowlist, `@@` exception, RPZ passthru) keeps its
 * chain unchecked. With no lists it is a pass-through.
 */
export function cnameFilterMiddleware(options: FilterStageOptions): Middleware {
  const { policy } = options;
  if (policy.empty) return passThrough;

  /** The blocked answer when a CNAME in `answer` points at a blocked name, else `answer`. */
  function uncloak(answer: Answer, query: Query, ctx: QueryContext): Answer {
    const { wire, info } = answer;
    if (info.ancount === 0) return answer;
    let pos = info.questionEnd;
    for (let i = 0; i < info.ancount; i++) {
      const typeAt = skipName(wire, pos);
      if (typeAt + 10 > wire.length) break;
      const rdlength = (wire[typeAt + 8] << 8) | wire[typeAt + 9];
      if (((wire[typeAt] << 8) | wire[typeAt + 1]) === RrType.CNAME) {
        const verdict = policy.check(wire, typeAt + 10);
        if (verdict !== null && !verdict.allowed) {
          // An allowed query name keeps its answer, whatever its CNAMEs; asked only now, as
          // most answers have no blocked CNAME at all.
          if (policy.check(query.wire, HEADER_LENGTH)?.allowed) return answer;
          return block(options, query, ctx, verdict);
        }
      }
      pos = typeAt + 10 + rdlength;
    }
    return answer;
  }

  return (next) => (query, ctx) => {
    const answer = next(query, ctx);
    return isPending(answer)
      ? answer.then((answer) => uncloak(answer, query, ctx))
      : uncloak(answer, query, ctx);
  };
}
