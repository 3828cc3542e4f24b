/**
 * A client's query, parsed once at the face and handed unchanged through the pipeline.
 *
 * @module
 */
import { Flag, Opcode, Rcode } from "./constants.ts";
import { infoWithOpt, NEW_OPT_FIELDS, rewrittenOptions, setOpt } from "./edns.ts";
import type { EdnsOption, MessageInfo, Question } from "./message.ts";
import { headerOpcode, parseMessage } from "./message.ts";
import { messageOf } from "../errors/message_of.ts";

/** A query that passed {@linkcode classifyQuery}: exactly one question, opcode QUERY. */
export interface Query {
  /** The query as the client sent it (its own ID, its own EDNS options). */
  readonly wire: Uint8Array;
  readonly info: MessageInfo;
  readonly question: Question;
}

/** The outcome of looking at a client's message before resolving it. */
export type Classified =
  | { readonly kind: "query"; readonly query: Query }
  /** Answer at once with this rcode (FORMERR, NOTIMP); `info` is set when the body parsed. */
  | {
    readonly kind: "reject";
    readonly rcode: number;
    readonly info?: MessageInfo;
    readonly reason: string;
  }
  /** Not even a DNS header: the connection should be closed. */
  | { readonly kind: "drop"; readonly reason: string };

/**
 * Decides what to do with bytes a client sent as a query.
 *
 * @example
 * ```ts
 * const c = classifyQuery(wire);
 * if (c.kind === "query") await handler(c.query, ctx);
 * ```
 */
export function classifyQuery(wire: Uint8Array): Classified {
  if (wire.length < 12) return { kind: "drop", reason: `message of ${wire.length} bytes` };
  let info: MessageInfo;
  try {
    info = parseMessage(wire);
  } catch (e) {
    return { kind: "reject", rcode: Rcode.FORMERR, reason: messageOf(e) };
  }
  if (info.flags & Flag.QR) {
    return { kind: "reject", rcode: Rcode.FORMERR, info, reason: "message is a response" };
  }
  if (headerOpcode(info.flags) !== Opcode.QUERY) {
    return { kind: "reject", rcode: Rcode.NOTIMP, info, reason: "opcode is not QUERY" };
  }
  if (info.qdcount !== 1 || !info.question) {
    return { kind: "reject", rcode: Rcode.FORMERR, info, reason: `qdcount is ${info.qdcount}` };
  }
  if (info.ancount !== 0 || info.nscount !== 0) {
    return { kind: "reject", rcode: Rcode.FORMERR, info, reason: "query carries answer records" };
  }
  if (info.opt && ((info.opt.ttl >>> 16) & 0xff) !== 0) {
    return { kind: "reject", rcode: Rcode.BADVERS, info, reason: "unsupported EDNS version" };
  }
  return { kind: "query", query: { wire, info, question: info.question } };
}

/**
 * The same query with its EDNS options rewritten (see `rewriteOptions` in `edns.ts`): keeps the
 * options `keep` accepts, adds `extra`, pads to `padBlock` if given. The question is unchanged.
 *
 * @example
 * ```ts
 * const withoutEcs = withQueryOptions(query, (o) => o.code !== EdnsOptionCode.CLIENT_SUBNET);
 * ```
 */
export function withQueryOptions(
  query: Query,
  keep: (option: EdnsOption) => boolean,
  extra: readonly EdnsOption[] = [],
  padBlock?: number,
): Query {
  // The new info is computed from the old one (no second walk of the query). Unlike an answer's
  // (answerWithOpt), its options are the objects passed in, not views into the new bytes: a query
  // is short-lived, so holding on to the old buffer costs nothing, and every upstream query
  // comes this way (padding), where the views and their array were ~0.4 KB.
  const { wire, info } = query;
  const options = rewrittenOptions(wire, info, keep, extra, padBlock);
  const out = setOpt(wire, info, options);
  const old = info.opt;
  const start = old ? old.start : wire.length;
  return {
    wire: out,
    info: infoWithOpt(info, start, options, old ?? NEW_OPT_FIELDS, options),
    question: query.question,
  };
}
