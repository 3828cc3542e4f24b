/**
 * The face-side step around the pipeline: classify what the client sent, run the handler, and
 * shape the answer for this client (its EDNS choices: padding, keepalive, no OPT if it sent none;
 * over UDP, the size it can take). Every face uses it, so they answer the same bytes the same way.
 *
 * @module
 */
import { EdnsOptionCode, PADDING_BLOCK } from "../dns/constants.ts";
import { type Answer, answerWithOpt, errorAnswer, rewriteAnswerOptions } from "../dns/answer.ts";
import { HOP_BY_HOP_OPTIONS, keepaliveOption } from "../dns/edns.ts";
import { headerRcode, type MessageInfo, type Question } from "../dns/message.ts";
import { classifyQuery, type Query } from "../dns/query.ts";
import { udpAnswer, udpAnswerLimit } from "../dns/truncate.ts";
import type { Logger } from "../log/mod.ts";
import type { AbortParent } from "../async/deadline.ts";
import { type Handler, isPending, type QueryContext, type QueryTrace } from "../pipeline/types.ts";

/** Options of {@linkcode createProcessor}. */
export interface ProcessorOptions {
  handler: Handler;
  logger?: Logger;
  /** Log each query's name, type, client and rcode at info level. Default false (privacy). */
  logQueries?: boolean;
  /**
   * Idle timeout to announce in edns-tcp-keepalive when the client asks (RFC 7828). Set it for
   * stream faces (DoT); leave it unset for DoH.
   */
  keepaliveMs?: number;
  /** Response padding block when the client padded its query. Default 468 (RFC 8467). */
  responsePadBlock?: number;
  /** Told when a query starts and when its answer is ready (metrics). */
  observer?: QueryObserver;
  /**
   * Told of every answered query with where its answer came from (the query log, dnstap). Set,
   * each query gets a {@linkcode QueryTrace} the stages fill in; unset, none is made.
   */
  tap?: QueryTap;
  /**
   * For UDP (the plain DNS face): the largest answer a client may get, however large an EDNS
   * size it asks for. An answer over the client's size (512 bytes without EDNS, else its EDNS
   * size up to this) goes out truncated (`src/dns/truncate.ts`). Unset: no limit (streams).
   */
  udpMaxSize?: number;
  /** With `udpMaxSize`: told of each answer that went out truncated (metrics). */
  onTruncated?: () => void;
  /**
   * For the plain DNS face, which serves UDP and TCP under one face name: which one this
   * processor serves, handed to the tap (dnstap's socket protocol). Unset on the other faces.
   */
  transport?: "udp" | "tcp";
}

/** One answered query, as the query log and dnstap see it. */
export interface TappedQuery {
  /** The face's context: face, client, the tenant selector the face saw. */
  readonly ctx: QueryContext;
  /** For the plain DNS face: UDP or TCP (`ProcessorOptions.transport`). */
  readonly transport?: "udp" | "tcp";
  /** Where the answer came from (and the tenant that answered), as the stages told it. */
  readonly trace: QueryTrace;
  /** The client's message as it arrived. */
  readonly query: Uint8Array;
  /** Its question, when it parsed. */
  readonly question?: Question;
  /** The answer as the client gets it. */
  readonly answer: Answer;
  /** `performance.now()` when the query arrived (`performance.timeOrigin +` it: wall clock). */
  readonly startedAt: number;
  /** Milliseconds from arrival to answer. */
  readonly ms: number;
}

/**
 * Receives every answered query. Called on the answer's way out, so it must return at once:
 * queue, never wait, never throw.
 */
export type QueryTap = (query: TappedQuery) => void;

/** Receives every query's start and end, for metrics. Must not throw. */
export interface QueryObserver {
  start(ctx: QueryContext): void;
  /** `rcode` of the answer (from the header), `ms` since `start`; `query` as the client sent it. */
  end(ctx: QueryContext, rcode: number, ms: number, query?: Query): void;
}

/**
 * Turns a client's message into the answer to send, or `null` to close the connection. The
 * answer comes with its parse (`info` describes `wire` exactly, `minTtl` included), so a face
 * needs no walk of its own: DoT and DoQ write `wire`, the DoH face takes `Cache-Control` from
 * `info.minTtl` and the JSON API its header fields from `info`.
 */
export type Processor = (wire: Uint8Array, ctx: QueryContext) => Promise<Answer | null>;

/**
 * A query's context with its own trace: the face's context is often shared by every query on a
 * connection (DoT), so the trace cannot live there. Fields are copied, the signal is the face's
 * (read only when asked: a DoT connection makes its signal on first read).
 */
class TracedContext implements QueryContext {
  readonly face: QueryContext["face"];
  readonly client: QueryContext["client"];
  readonly tenant: QueryContext["tenant"];
  readonly trace: QueryTrace = {};
  protected readonly parent: QueryContext;

  constructor(parent: QueryContext) {
    this.face = parent.face;
    this.client = parent.client;
    this.tenant = parent.tenant;
    this.parent = parent;
  }

  get signal(): AbortSignal {
    return this.parent.signal;
  }
}

/** A traced context over a face context that can be watched (`AbortParent`), watchable too. */
class WatchableTracedContext extends TracedContext implements AbortParent {
  watch(onAbort: (reason: unknown) => void): void {
    (this.parent as AbortParent).watch!(onAbort);
  }

  unwatch(onAbort: (reason: unknown) => void): void {
    (this.parent as AbortParent).unwatch?.(onAbort);
  }
}

/** `ctx` with a fresh trace. */
function traced(ctx: QueryContext): TracedContext {
  return typeof (ctx as AbortParent).watch === "function"
    ? new WatchableTracedContext(ctx)
    : new TracedContext(ctx);
}

/**
 * Creates the face-side processor.
 *
 * @example
 * ```ts
 * const process = createProcessor({ handler, keepaliveMs: 10_000 });
 * const answer = await process(wire, { face: "dot", signal }); // { wire, info } or null
 * ```
 */
export function createProcessor(options: ProcessorOptions): Processor {
  const { handler, logger, udpMaxSize } = options;
  const padBlock = options.responsePadBlock ?? PADDING_BLOCK.RESPONSE;

  /**
   * The answer as this client gets it: its EDNS choices applied, using what `answer` knows. The
   * edits are byte-level and their info is computed, not walked (`answer.ts`); an answer that
   * needs none is handed on as it is, with no new object.
   */
  function shape(answer: Answer, client: MessageInfo): Answer {
    const shaped = shapeEdns(answer, client);
    if (udpMaxSize === undefined) return shaped;
    const sent = udpAnswer(shaped, udpAnswerLimit(client, udpMaxSize));
    if (sent !== shaped) options.onTruncated?.();
    return sent;
  }

  function shapeEdns(answer: Answer, client: MessageInfo): Answer {
    const { info } = answer;
    if (!client.opt) return info.opt ? answerWithOpt(answer, null) : answer;
    const wantsPadding = client.opt.options.some((o) => o.code === EdnsOptionCode.PADDING);
    const wantsKeepalive = options.keepaliveMs !== undefined &&
      client.opt.options.some((o) => o.code === EdnsOptionCode.TCP_KEEPALIVE);
    const hasHopByHop = info.opt?.options.some((o) => HOP_BY_HOP_OPTIONS.has(o.code)) ?? false;
    if (!wantsPadding && !wantsKeepalive && !hasHopByHop && info.opt) return answer;
    const extra = wantsKeepalive ? [keepaliveOption(options.keepaliveMs!)] : [];
    return rewriteAnswerOptions(
      answer,
      (o) => !HOP_BY_HOP_OPTIONS.has(o.code),
      extra,
      wantsPadding ? padBlock : undefined,
    );
  }

  const { tap, transport } = options;

  /** The handler's answer on its way to the client: shaped, counted, tapped, logged. */
  function finish(
    wire: Uint8Array,
    faceCtx: QueryContext,
    ctx: QueryContext,
    query: Query,
    started: number,
    answer: Answer,
  ): Answer {
    answer = shape(answer, query.info);
    const ms = performance.now() - started;
    options.observer?.end(ctx, headerRcode(answer.info.flags), ms, query);
    if (tap) {
      tap({
        ctx: faceCtx,
        transport,
        trace: ctx.trace!,
        query: wire,
        question: query.question,
        answer,
        startedAt: started,
        ms,
      });
    }
    if (options.logQueries) {
      logger?.info("query", {
        face: ctx.face,
        client: ctx.client?.address,
        name: query.question.name,
        type: query.question.type,
        rcode: headerRcode(answer.info.flags),
        ms: Math.round(ms * 10) / 10,
      });
    }
    return answer;
  }

  function answer(wire: Uint8Array, faceCtx: QueryContext): Promise<Answer | null> {
    const classified = classifyQuery(wire);
    if (classified.kind === "drop") {
      logger?.debug("dropping connection", { face: faceCtx.face, reason: classified.reason });
      return Promise.resolve(null);
    }
    if (classified.kind === "reject") {
      logger?.debug("rejecting query", { face: faceCtx.face, reason: classified.reason });
      const rejected = classified.info
        ? shape(errorAnswer(wire, classified.info, classified.rcode), classified.info)
        : errorAnswer(wire, undefined, classified.rcode);
      tap?.({
        ctx: faceCtx,
        transport,
        trace: { source: "error" },
        query: wire,
        question: classified.info?.question,
        answer: rejected,
        startedAt: performance.now(),
        ms: 0,
      });
      return Promise.resolve(rejected);
    }
    const { query } = classified;
    const observer = options.observer;
    // Only a tap asks where the answer came from: without one, no trace and no new context.
    const ctx = tap ? traced(faceCtx) : faceCtx;
    const started = options.logQueries || observer || tap ? performance.now() : 0;
    observer?.start(ctx);
    let answer: Answer | Promise<Answer>;
    try {
      answer = handler(query, ctx);
    } catch (error) {
      observer?.end(ctx, -1, performance.now() - started, query);
      throw error;
    }
    // A cache hit comes synchronously: one resolved promise for the face, no closures.
    if (!isPending(answer)) {
      return Promise.resolve(finish(wire, faceCtx, ctx, query, started, answer));
    }
    return answer.then(
      (answer) => finish(wire, faceCtx, ctx, query, started, answer),
      (error) => {
        observer?.end(ctx, -1, performance.now() - started, query);
        throw error;
      },
    );
  }

  // Not an async function: its frame and await were ~0.5 KB allocated on every query.
  return (wire, faceCtx) => {
    try {
      return answer(wire, faceCtx);
    } catch (error) {
      return Promise.reject(error);
    }
  };
}
