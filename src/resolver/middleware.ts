/**
 * The standard middlewares: deadline, SERVFAIL on error, and the privacy rewrite of queries
 * before they leave (no client subnet, no hop-by-hop options, padding).
 *
 * @module
 */
import { EdeCode, EdnsOptionCode, PADDING_BLOCK, Rcode } from "../dns/constants.ts";
import { HOP_BY_HOP_OPTIONS } from "../dns/edns.ts";
import { type Query, withQueryOptions } from "../dns/query.ts";
import { type Answer, errorAnswer } from "../dns/answer.ts";
import type { ExtendedError } from "../dns/response.ts";
import type { Logger } from "../log/mod.ts";
import { DeadlineError, withLazyDeadline } from "../async/deadline.ts";
import { type Upstream, UpstreamError } from "../upstream/types.ts";
import { type Handler, isPending, type Middleware, type QueryContext } from "../pipeline/types.ts";
import { messageOf } from "../errors/message_of.ts";

/**
 * Gives the rest of the pipeline `ms` milliseconds; past that the query rejects with a
 * `TimeoutError` even if the inner handler ignores its signal. The inner signal is made only when
 * something reads `ctx.signal` (a cache hit does not).
 */
export function timeout(ms: number): Middleware {
  return (next) => (query, ctx) =>
    withLazyDeadline(ctx, ms, (signal) => next(query, new DeadlineContext(ctx, signal)));
}

/** Every key of {@linkcode QueryContext}: adding one there fails here until it is copied below. */
const CONTEXT_KEYS: Record<keyof QueryContext, true> = {
  face: true,
  signal: true,
  client: true,
  tenant: true,
  trace: true,
};
void CONTEXT_KEYS;

/**
 * A query's context inside a deadline: the outer one's fields, and a signal made when first
 * read. A class (not an object literal with a getter), so making one per query stays cheap.
 */
class DeadlineContext implements QueryContext {
  readonly face: QueryContext["face"];
  readonly client: QueryContext["client"];
  readonly tenant: QueryContext["tenant"];
  readonly trace: QueryContext["trace"];
  readonly #signal: () => AbortSignal;

  constructor(ctx: QueryContext, signal: () => AbortSignal, tenant = ctx.tenant) {
    this.face = ctx.face;
    this.client = ctx.client;
    this.tenant = tenant;
    this.trace = ctx.trace;
    this.#signal = signal;
  }

  get signal(): AbortSignal {
    return this.#signal();
  }

  /** The same context for another tenant (the signal still made on first read). */
  withTenant(tenant: string | undefined): DeadlineContext {
    return new DeadlineContext(this, this.#signal, tenant);
  }
}

/**
 * `ctx` for `tenant`. Use it rather than `{ ...ctx, tenant }`: a spread would drop a deadline
 * context's signal, which is a getter.
 */
export function withTenant(ctx: QueryContext, tenant: string | undefined): QueryContext {
  return ctx instanceof DeadlineContext ? ctx.withTenant(tenant) : { ...ctx, tenant };
}

/** Maps a failure to the Extended DNS Error its SERVFAIL should carry. */
export function extendedErrorFor(error: unknown): ExtendedError {
  if (error instanceof DeadlineError || (error as Error)?.name === "TimeoutError") {
    return { code: EdeCode.NO_REACHABLE_AUTHORITY, text: "upstream timed out" };
  }
  if (error instanceof UpstreamError) {
    switch (error.kind) {
      case "timeout":
        return { code: EdeCode.NO_REACHABLE_AUTHORITY, text: "upstream timed out" };
      case "http-status":
      case "bad-answer":
        return { code: EdeCode.NETWORK_ERROR, text: "upstream gave an invalid answer" };
      case "unavailable":
        return { code: EdeCode.NO_REACHABLE_AUTHORITY, text: "no upstream available" };
      default:
        return { code: EdeCode.NETWORK_ERROR, text: "upstream unreachable" };
    }
  }
  return { code: EdeCode.OTHER, text: "internal error" };
}

/**
 * Turns any rejection into SERVFAIL for that query, with an RFC 8914 code, and logs the failure
 * (upstream and reason only, never the query name).
 */
export function servfailOnError(logger?: Logger): Middleware {
  function failed(query: Query, ctx: QueryContext, error: unknown): Answer {
    if (ctx.signal.aborted && !(error instanceof DeadlineError)) throw error;
    const ede = extendedErrorFor(error);
    if (ctx.trace) ctx.trace.source = "error";
    logger?.warn("query failed", {
      face: ctx.face,
      error: messageOf(error),
    });
    return errorAnswer(query.wire, query.info, Rcode.SERVFAIL, ede);
  }

  // Not an async function: on every query its frame and await were ~0.5 KB allocated. An answer
  // that came synchronously (a cache hit) passes with no promise and no closure.
  return (next) => (query, ctx) => {
    let answer: Answer | Promise<Answer>;
    try {
      answer = next(query, ctx);
    } catch (error) {
      return failed(query, ctx, error);
    }
    if (!isPending(answer)) return answer;
    return answer.then(undefined, (error) => failed(query, ctx, error));
  };
}

/** Options of {@linkcode upstreamPrivacy}. */
export interface PrivacyOptions {
  /** Forward the client's EDNS Client Subnet option. Default false: it is stripped. */
  keepClientSubnet?: boolean;
  /** Pad queries sent upstream to this block length (RFC 8467). Default 128; 0 turns it off. */
  padBlock?: number;
}

/**
 * Rewrites the query that goes upstream: drops hop-by-hop options (keepalive, the client's
 * padding), drops EDNS Client Subnet unless told to keep it, and pads to a block length. A query
 * without EDNS gets an OPT record for the padding; the face removes it from the answer again.
 */
export function upstreamPrivacy(options: PrivacyOptions = {}): Middleware {
  const keepEcs = options.keepClientSubnet ?? false;
  const padBlock = options.padBlock ?? PADDING_BLOCK.QUERY;
  const keep = (o: { code: number }) =>
    !HOP_BY_HOP_OPTIONS.has(o.code) && (keepEcs || o.code !== EdnsOptionCode.CLIENT_SUBNET);
  return (next) => (query, ctx) => {
    const opts = query.info.opt?.options ?? [];
    if (padBlock === 0 && opts.every(keep)) return next(query, ctx);
    return next(withQueryOptions(query, keep, [], padBlock || undefined), ctx);
  };
}

/**
 * The terminal handler that asks an upstream. A traced query's trace says `upstream`, naming
 * the member that answered when `answeredBy` knows it (a group's), else `upstream` itself.
 */
export function fromUpstream(
  upstream: Upstream,
  answeredBy?: (answer: Answer) => string | undefined,
): Handler {
  return (query, ctx) => {
    const trace = ctx.trace;
    if (!trace) return upstream.exchange(query, ctx.signal);
    return upstream.exchange(query, ctx.signal).then((answer) => {
      trace.source = "upstream";
      trace.upstream = answeredBy?.(answer) ?? upstream.name;
      return answer;
    });
  };
}
