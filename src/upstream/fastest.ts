/**
 * A group that sends each query to the member that has been answering fastest, measured as a
 * moving average of its exchange times, and still samples the others now and then.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";
import { withDeadline } from "../async/deadline.ts";
import { type MemberHealth, MemberHealthBook, type MemberHealthOptions } from "./health.ts";
import { allMembersFailed, type Upstream, UpstreamError } from "./types.ts";

/** Options of {@linkcode FastestGroup}. */
export interface FastestGroupOptions extends MemberHealthOptions {
  members: readonly Upstream[];
  /**
   * Weight of the newest sample in the exponentially weighted moving average of a member's
   * exchange time, in (0, 1]. Higher reacts faster, lower smooths more. Default 0.3.
   */
  alpha?: number;
  /**
   * About one query in this many goes first to a member that is not the fastest (taken in turn),
   * so one that recovered or got faster is noticed. 0 turns exploring off. Default 20.
   */
  exploreEvery?: number;
  /** Time one member gets before the next is tried. Default: no per-member limit. */
  attemptTimeoutMs?: number;
  /** Milliseconds clock for exchange times and cool-downs. Default `performance.now`. */
  now?: () => number;
  /** Uniform random number in [0, 1), deciding when to explore. Default `Math.random`. */
  random?: () => number;
}

/** One member's numbers, as {@linkcode FastestGroup.stats} reports them. */
export interface FastestMemberStats {
  name: string;
  /** Smoothed exchange time in ms; `null` until the member has answered or failed once. */
  ewmaMs: number | null;
  /** Not in a cool-down. */
  healthy: boolean;
}

/**
 * The sample a failure counts as when it came quicker than this (or than `attemptTimeoutMs`,
 * when set): a refused connection is fast but must not look like a fast member.
 */
const FAILURE_PENALTY_MS = 1_000;

interface Member extends MemberHealth {
  /** Smoothed exchange time (ms), undefined before the first sample. */
  ewma?: number;
}

/**
 * Sends each query to the member with the lowest smoothed exchange time; on failure, to the
 * next fastest within the same query, like failover.
 *
 * - Members that have no sample yet go first (in turn), so each gets measured.
 * - About one query in `exploreEvery` goes first to a member that is not the fastest, taken in
 *   turn, so a member that got faster or recovered is noticed.
 * - A failure counts as a large sample (at least 1 s, or `attemptTimeoutMs`) and starts a
 *   cool-down, during which the member is passed over. When every member is cooling down they
 *   are still tried, soonest recovery first. A member's first answer after an outage restarts
 *   its average, since the outage says nothing about its latency.
 * - The caller's abort is not a member's fault: it records no sample.
 *
 * Safe for concurrent use. Closing the group closes its members.
 *
 * @example
 * ```ts
 * const group = new FastestGroup({ members: [a, b, c], attemptTimeoutMs: 2000 });
 * const answer = await group.exchange(query, AbortSignal.timeout(5000));
 * console.log(group.stats()); // [{ name: "https://a.example/dns-query", ewmaMs: 12.5, healthy: true }, ...]
 * ```
 */
export class FastestGroup implements Upstream {
  readonly name: string;
  readonly #book: MemberHealthBook<Member>;
  readonly #alpha: number;
  readonly #exploreEvery: number;
  readonly #attemptMs?: number;
  readonly #now: () => number;
  readonly #random: () => number;
  /** Rotation among members without a sample. */
  #nextFresh = 0;
  /** Index into #members of the last member explored. */
  #lastExplored = -1;
  #closed = false;

  constructor(options: FastestGroupOptions) {
    if (options.members.length === 0) throw new RangeError("fastest group: no members");
    const alpha = options.alpha ?? 0.3;
    if (!(alpha > 0 && alpha <= 1)) {
      throw new RangeError(`fastest group: alpha must be in (0, 1], got ${alpha}`);
    }
    const exploreEvery = options.exploreEvery ?? 20;
    if (!(exploreEvery === 0 || exploreEvery >= 1)) {
      throw new RangeError(
        `fastest group: exploreEvery must be 0 or at least 1, got ${exploreEvery}`,
      );
    }
    this.#alpha = alpha;
    this.#exploreEvery = exploreEvery;
    this.#attemptMs = options.attemptTimeoutMs;
    this.#now = options.now ?? (() => performance.now());
    this.#random = options.random ?? Math.random;
    this.#book = new MemberHealthBook(options.members, options, this.#now);
    this.name = `fastest(${options.members.map((m) => m.name).join(", ")})`;
  }

  /** Member names with whether each is currently considered healthy. */
  health(): { name: string; healthy: boolean }[] {
    return this.stats().map(({ name, healthy }) => ({ name, healthy }));
  }

  /** Each member's smoothed exchange time and whether it is currently considered healthy. */
  stats(): FastestMemberStats[] {
    const now = this.#now();
    return this.#book.members.map((m) => ({
      name: m.upstream.name,
      ewmaMs: m.ewma ?? null,
      healthy: this.#book.isHealthy(m, now),
    }));
  }

  /** The order members are asked in for the next query. */
  #order(): Member[] {
    const { healthy, down } = this.#book.split();
    const fresh = healthy.filter((m) => m.ewma === undefined);
    const measured = healthy.filter((m) => m.ewma !== undefined);
    measured.sort((a, b) => a.ewma! - b.ewma!);
    if (fresh.length > 1) {
      const start = this.#nextFresh++ % fresh.length;
      if (this.#nextFresh >= Number.MAX_SAFE_INTEGER) this.#nextFresh = 0;
      fresh.push(...fresh.splice(0, start));
    }
    if (
      fresh.length === 0 && measured.length > 1 && this.#exploreEvery > 0 &&
      this.#random() * this.#exploreEvery < 1
    ) {
      const explored = this.#nextToExplore(measured[0]);
      measured.splice(measured.indexOf(explored), 1);
      measured.unshift(explored);
    }
    return fresh.concat(measured, down);
  }

  /** The next healthy member after the last one explored, in member order, other than `best`. */
  #nextToExplore(best: Member): Member {
    const now = this.#now();
    const members = this.#book.members;
    const n = members.length;
    for (let step = 1; step <= n; step++) {
      const i = (this.#lastExplored + step) % n;
      const m = members[i];
      if (m !== best && this.#book.isHealthy(m, now)) {
        this.#lastExplored = i;
        return m;
      }
    }
    return best; // unreachable: the caller saw at least two healthy members
  }

  async exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (this.#closed) throw new UpstreamError(this.name, "unavailable", "closed");
    let last: unknown;
    for (const member of this.#order()) {
      if (signal.aborted) throw signal.reason;
      const started = this.#now();
      try {
        const answer = this.#attemptMs === undefined
          ? await member.upstream.exchange(query, signal)
          : await withDeadline(signal, this.#attemptMs, (s) => member.upstream.exchange(query, s));
        this.#succeeded(member, this.#now() - started);
        return answer;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        last = error;
        this.#failed(member, this.#now() - started, error);
      }
    }
    throw allMembersFailed(this.name, this.#book.members.length, last);
  }

  #sample(member: Member, ms: number): void {
    member.ewma = member.ewma === undefined
      ? ms
      : this.#alpha * ms + (1 - this.#alpha) * member.ewma;
  }

  #succeeded(member: Member, elapsed: number): void {
    const ms = Math.max(0, elapsed);
    // Back from an outage, its penalties are no latency: start over from this answer.
    if (this.#book.succeeded(member)) member.ewma = ms;
    else this.#sample(member, ms);
  }

  #failed(member: Member, elapsed: number, error: unknown): void {
    this.#sample(member, Math.max(elapsed, this.#attemptMs ?? 0, FAILURE_PENALTY_MS));
    this.#book.failed(member, error);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#book.members.map((m) => m.upstream.close()));
  }
}
