/**
 * The resolver pipeline's vocabulary: a Handler answers a query, a Middleware wraps a Handler.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";

/** Which front door a query came through: `dns` is plain DNS (UDP and TCP port 53). */
export type Face = "dot" | "doh" | "doq" | "dns";

/**
 * Where an answer came from, as the query log and dnstap tell it: `cache` (fresh), `stale`
 * (served past its TTL while refetched), `local` (local records), `ddr` (discovery), `blocked`
 * (a blocklist; `QueryTrace.list` names it), `upstream` (`QueryTrace.upstream` names it),
 * `refused` (ACL, rate limit, tenant), `error` (SERVFAIL made here).
 */
export type AnswerSource =
  | "cache"
  | "stale"
  | "local"
  | "ddr"
  | "blocked"
  | "upstream"
  | "refused"
  | "error";

/**
 * What the stages tell about one query on its way, for the query log and dnstap: made by the
 * face only when one of them is on (so an untraced query costs nothing), filled in by the stage
 * that answers. Shared by every copy of the context (a stage that makes a new context keeps the
 * same trace object).
 */
export interface QueryTrace {
  /** The stage that answered; unset until one does. */
  source?: AnswerSource;
  /** With `upstream`: the upstream's public name (scheme, host, port, index). */
  upstream?: string;
  /** With `blocked`: the list's name. */
  list?: string;
  /** The tenant whose policy answered (set by the tenant router); unset: the global policy. */
  tenant?: string;
}

/** Per-query facts a handler may use. */
export interface QueryContext {
  readonly face: Face;
  /** Aborts when the answer is no longer wanted (client gone, deadline, shutdown). */
  readonly signal: AbortSignal;
  /** The client's address, for ACLs and rate limits; never logged unless query logging is on. */
  readonly client?: { readonly address: string; readonly port?: number };
  /**
   * From a face: the tenant selector the client sent (SNI label or DoH path: an id or a name).
   * Past the tenant router: the name of the tenant this query belongs to (policy, cache
   * partition). Unset: default.
   */
  readonly tenant?: string;
  /** Where the answer came from, for the query log and dnstap; unset: nobody asks. */
  readonly trace?: QueryTrace;
}

/**
 * Answers one query: a response carrying the query's ID, with its parse (an
 * {@linkcode Answer}: `info` describes `wire` exactly, so nothing downstream walks it again);
 * fails (throws or rejects) only on failure (the `servfailOnError` middleware turns failures into
 * SERVFAIL). A handler never modifies an answer it was given: edits make a new one.
 *
 * The answer comes synchronously when no stage had to wait (a cache hit, a local record, a
 * refusal), else as a promise: the stages run synchronously until the first real wait, so a
 * cache hit makes no promise on the way (a stage that needs the answer checks with
 * {@linkcode isPending}, or awaits it).
 */
export type Handler = (query: Query, ctx: QueryContext) => Answer | Promise<Answer>;

/** True when a handler's answer is still to come (a promise). */
export function isPending(answer: Answer | Promise<Answer>): answer is Promise<Answer> {
  return typeof (answer as Promise<Answer>).then === "function";
}

/** Wraps a handler with one concern (timeout, cache, policy, ...). */
export type Middleware = (next: Handler) => Handler;

/** The middleware that does nothing. */
export const passThrough: Middleware = (next) => next;

/**
 * Composes middlewares around a terminal handler; the first middleware is the outermost.
 *
 * @example
 * ```ts
 * const handler = compose([servfailOnError(), timeout(5000)], fromUpstream(upstream));
 * ```
 */
export function compose(middlewares: readonly Middleware[], terminal: Handler): Handler {
  return middlewares.reduceRight<Handler>((next, mw) => mw(next), terminal);
}
