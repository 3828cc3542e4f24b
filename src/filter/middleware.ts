/**
 * The filter stage: a query whose name a blocklist lists (and no allowlist allows) is answered
 * here, never fetched; an answer coming back whose CNAME chain passes through a blocked name is
 * replaced by the blocked answer too (CNAME cloaking: trackers behind first-party aliases).
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import { HEADER_LENGTH, RrType } from "../dns/constants.ts";
import { skipName } from "../dns/wire.ts";
import type { Query } from "../dns/query.ts";
import { type Middleware, passThrough, type QueryContext } from "../pipeline/types.ts";
import type { BlockedAnswers } from "./blocked_answer.ts";
import type { Blocked, FilterPolicy } from "./policy.ts";

/** Options of {@linkcode filterMiddleware}. */
export interface FilterStageOptions {
  /** The policy's lists. */
  readonly policy: FilterPolicy;
  /** What a blocked query gets. */
  readonly answers: BlockedAnswers;
  /** Check the CNAME chains of answers from further down. Default true. */
  readonly cnameCloaking?: boolean;
  /** Told of each blocked query, with the list that blocked it. Must not throw. */
  readonly onBlocked?: (list: string, ctx: QueryContext) => void;
}

/**
 * The filter stage. Put it after policy (ACL, rate limit, tenant router) and local records, and
 * before the cache: a blocked name costs no upstream query, a reloaded list applies at once, and
 * cached answers are checked for cloaking on their way out as well. A name an allowlist allows
 * (or an `@@` exception, or an RPZ passthru) is not checked further, its CNAME chain included.
 * With no lists at all it is a pass-through.
 *
 * @example
 * ```ts
 * const stage = filterMiddleware({
 *   policy: new FilterPolicy({ hasher, blocklists: [ads] }),
 *   answers: new BlockedAnswers("nxdomain", 60),
 * });
 * const handler = compose([aclMiddleware(acl), stage, cacheMiddleware(cache)], upstream);
 * ```
 */
export function filterMiddleware(options: FilterStageOptions): Middleware {
  const { policy, answers, onBlocked } = options;
  if (policy.empty) return passThrough;
  const cloaking = options.cnameCloaking ?? true;

  function block(query: Query, ctx: QueryContext, blocked: Blocked): Answer {
    const list = blocked.list.name;
    if (ctx.trace) {
      ctx.trace.source = "blocked";
      ctx.trace.list = list;
    }
    onBlocked?.(list, ctx);
    return answers.answer(query, blocked.action);
  }

  /** The blocked answer when a CNAME in `answer` points at a blocked name, else `answer`. */
  function uncloak(answer: Answer, query: Query, ctx: QueryContext): Answer {
    const { wire, info } = answer;
    let pos = info.questionEnd;
    for (let i = 0; i < info.ancount; i++) {
      const typeAt = skipName(wire, pos);
      if (typeAt + 10 > wire.length) break;
      const rdlength = (wire[typeAt + 8] << 8) | wire[typeAt + 9];
      if (((wire[typeAt] << 8) | wire[typeAt + 1]) === RrType.CNAME) {
        const verdict = policy.check(wire, typeAt + 10);
        if (verdict !== null && !verdict.allowed) return block(query, ctx, verdict);
      }
      pos = typeAt + 10 + rdlength;
    }
    return answer;
  }

  return (next) => (query, ctx) => {
    const verdict = policy.check(query.wire, HEADER_LENGTH);
    if (verdict !== null) {
      return verdict.allowed ? next(query, ctx) : Promise.resolve(block(query, ctx, verdict));
    }
    if (!cloaking) return next(query, ctx);
    return next(query, ctx).then((answer) =>
      answer.info.ancount > 0 ? uncloak(answer, query, ctx) : answer
    );
  };
}
