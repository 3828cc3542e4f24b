/**
 * Health for a single upstream, as groups keep it for their members: a lone upstream that fails
 * is reported down (`dotbridge_upstream_up` 0, `/ready` 503) until it answers again, a client's
 * query or a background probe. Queries still go to it while it is down: there is nobody else.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";
import { withDeadline } from "../async/deadline.ts";
import { PROBE_QUERY } from "./group.ts";
import {
  type MemberHealth,
  MemberHealthBook,
  type MemberHealthOptions,
  type MemberState,
} from "./health.ts";
import type { Upstream } from "./types.ts";

/** Options of {@linkcode TrackedUpstream}. */
export interface TrackedUpstreamOptions extends MemberHealthOptions {
  upstream: Upstream;
  /** While down, probe it this often with `. IN NS` (0 or unset: no probes). */
  probeIntervalMs?: number;
  /** A probe's deadline. Default `probeIntervalMs`. */
  probeTimeoutMs?: number;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
}

/**
 * Wraps one upstream with a health record; everything else is the wrapped upstream's (name,
 * answers, errors). Safe for concurrent use; closing it closes the upstream.
 *
 * @example
 * ```ts
 * const tracked = new TrackedUpstream({ upstream: doh, cooldownMs: 30_000, probeIntervalMs: 5_000 });
 * tracked.health(); // [{ name: "https://dns.example", healthy: true }]
 * ```
 */
export class TrackedUpstream implements Upstream {
  readonly name: string;
  readonly #book: MemberHealthBook<MemberHealth>;
  readonly #member: MemberHealth;
  readonly #probeMs: number;
  readonly #probeTimeoutMs: number;
  #probe: ReturnType<typeof setTimeout> | undefined;
  #closed = false;

  constructor(options: TrackedUpstreamOptions) {
    this.name = options.upstream.name;
    this.#book = new MemberHealthBook([options.upstream], options, options.now ?? Date.now);
    this.#member = this.#book.members[0];
    this.#probeMs = options.probeIntervalMs ?? 0;
    this.#probeTimeoutMs = options.probeTimeoutMs ?? this.#probeMs;
  }

  /** The upstream's name and whether it is out of its cool-down. */
  health(): MemberState[] {
    return this.#book.states();
  }

  // Not an async function: on every bridged query, its frame and awaits were ~0.9 KB allocated.
  exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    let sent: Promise<Answer>;
    try {
      sent = this.#member.upstream.exchange(query, signal);
    } catch (error) {
      sent = Promise.reject(error);
    }
    return sent.then(this.#answered, (error) => {
      if (!signal.aborted) this.#down(error);
      throw error;
    });
  }

  readonly #answered = (answer: Answer): Answer => {
    if (!this.#member.up || this.#member.downUntil !== 0) this.#up();
    return answer;
  };

  #up(): void {
    if (this.#probe !== undefined) clearTimeout(this.#probe);
    this.#probe = undefined;
    this.#book.succeeded(this.#member);
  }

  #down(error: unknown): void {
    this.#book.failed(this.#member, error);
    if (this.#probeMs > 0 && this.#probe === undefined && !this.#closed) this.#scheduleProbe();
  }

  #scheduleProbe(): void {
    this.#probe = setTimeout(async () => {
      if (this.#closed || this.#member.up) {
        this.#probe = undefined;
        return;
      }
      try {
        await withDeadline(
          new AbortController().signal,
          this.#probeTimeoutMs,
          (s) => this.#member.upstream.exchange(PROBE_QUERY, s),
        );
        this.#probe = undefined;
        if (!this.#closed) this.#book.succeeded(this.#member);
      } catch {
        if (this.#closed) return;
        this.#book.failed(this.#member, undefined);
        this.#scheduleProbe();
      }
    }, this.#probeMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#probe !== undefined) clearTimeout(this.#probe);
    this.#probe = undefined;
    await this.#member.upstream.close();
  }
}
