/**
 * The contract every upstream keeps, single servers and groups alike.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";
import { messageOf } from "../errors/message_of.ts";

/**
 * Something that answers DNS queries: a DoH server, a DoT server, or a group of upstreams.
 *
 * - **Concurrency**: `exchange` is safe to call many times at once; implementations multiplex.
 * - **The query is not modified**: implementations copy before changing the ID or anything else.
 * - **The answer** is a validated response to the query (a response, same question) carrying the
 *   query's own message ID, whatever ID went on the wire. It comes with its parse (an
 *   {@linkcode Answer}): the upstream walks the bytes once, to validate them, and hands that walk
 *   on, so `info` describes `wire` exactly (ID included) and nobody downstream parses it again.
 *   The caller owns the answer's bytes.
 * - **Errors**: `exchange` rejects with {@linkcode UpstreamError} when no valid answer was had,
 *   and with the signal's reason when `signal` aborts. It never resolves with a made-up answer:
 *   turning failure into SERVFAIL is the resolver's job.
 * - **Lifetime**: whoever constructed an upstream closes it; `close` releases connections and
 *   timers, and `exchange` after `close` rejects.
 */
export interface Upstream {
  /**
   * A label for logs and metrics: scheme, host and port (and a group's member index), never
   * credentials, path or query (see {@linkcode redactUrl}).
   */
  readonly name: string;
  exchange(query: Query, signal: AbortSignal): Promise<Answer>;
  close(): Promise<void>;
}

/** Why an upstream gave no answer. `ede` is the RFC 8914 code a SERVFAIL for it should carry. */
export type UpstreamFailure =
  | "network" // could not connect, reset, TLS failure
  | "http-status" // non-200
  | "bad-answer" // wrong content type, too large, malformed, wrong ID or question
  | "timeout"
  | "unavailable"; // every member of a group is down

/** An upstream failed to answer a query. Callers catch this one. */
export class UpstreamError extends Error {
  /**
   * @param upstream the upstream's {@linkcode Upstream.name}
   * @param kind what went wrong, for metrics and the Extended DNS Error
   */
  constructor(
    readonly upstream: string,
    readonly kind: UpstreamFailure,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`upstream ${upstream}: ${message}`, options);
    this.name = "UpstreamError";
  }
}

/**
 * The public name of an upstream URL: scheme, host and port only. No user info, query string or
 * fragment (credentials), and no path either: a path may hold an account ID (NextDNS's
 * `https://dns.nextdns.io/<id>`, ControlD's `https://dns.controld.com/<id>`), and this name ends
 * up in metric labels (public with `--doh-metrics`) and log lines.
 *
 * @example
 * ```ts
 * redactUrl("https://user:secret@dns.example/abc123?token=x"); // "https://dns.example"
 * ```
 */
export function redactUrl(url: string | URL): string {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

/**
 * The name of the `index`-th (from 0) of several configured upstreams: its public name and its
 * place in the list, so two upstreams on one host (two accounts of one service) stay apart.
 *
 * @example
 * ```ts
 * memberName("https://dns.nextdns.io", 1); // "https://dns.nextdns.io [2]"
 * ```
 */
export function memberName(name: string, index: number): string {
  return `${name} [${index + 1}]`;
}

/**
 * The error a group throws when every member failed: the last member's failure kind (a
 * deadline counts as "timeout", anything else as "unavailable"), the last error as `cause`.
 */
export function allMembersFailed(group: string, members: number, last: unknown): UpstreamError {
  const kind: UpstreamFailure = last instanceof UpstreamError
    ? last.kind
    : (last as Error)?.name === "TimeoutError"
    ? "timeout"
    : "unavailable";
  return new UpstreamError(
    group,
    kind,
    `all ${members} members failed; last: ${messageOf(last)}`,
    { cause: last },
  );
}
