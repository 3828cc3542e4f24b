/**
 * Groups of upstreams that are upstreams themselves: ordered failover and round-robin, both
 * with a cool-down for members that fail.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import { parseMessage } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";
import { withDeadline } from "../async/deadline.ts";
import {
  type MemberHealth,
  MemberHealthBook,
  type MemberHealthOptions,
  type MemberState,
} from "./health.ts";
import { allMembersFailed, type Upstream } from "./types.ts";

/** How a group picks the member that gets a query first. */
export type GroupStrategy = "failover" | "round-robin";

/** Options of {@linkcode UpstreamGroup}. */
export interface UpstreamGroupOptions extends MemberHealthOptions {
  members: readonly Upstream[];
  /** `failover` (default): always the first healthy member. `round-robin`: rotate. */
  strategy?: GroupStrategy;
  /** Time one member gets before the next is tried. Default: no per-member limit. */
  attemptTimeoutMs?: number;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
  /**
   * Probe members that are down in the background, every this many ms, with a query for the
   * root NS set; a member that answers is healthy again at once, without waiting for its
   * cool-down or risking a client's query. 0 or unset: no probes.
   */
  probeIntervalMs?: number;
}

/** The probe query: `. IN NS`, RD set, ID 0. */
const PROBE_WIRE = new Uint8Array([0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1]);
/** The query a background health probe sends: `. IN NS`, RD set, ID 0. */
export const PROBE_QUERY: Query = (() => {
  const info = parseMessage(PROBE_WIRE);
  return { wire: PROBE_WIRE, info, question: info.question! };
})();

interface Member extends MemberHealth {
  /** Pending background probe. */
  probe?: ReturnType<typeof setTimeout>;
}

/**
 * Tries members one after another until one answers. Members that failed recently go to the
 * back of the order until their cool-down passes; when every member is cooling down, they are
 * still tried (soonest recovery first), since an answer beats a certain SERVFAIL.
 *
 * Safe for concurrent use. Closing the group closes its members.
 *
 * @example
 * ```ts
 * const group = new UpstreamGroup({ members: [primary, secondary], strategy: "failover" });
 * ```
 */
export class UpstreamGroup implements Upstream {
  readonly name: string;
  readonly #book: MemberHealthBook<Member>;
  readonly #strategy: GroupStrategy;
  readonly #attemptMs?: number;
  readonly #now: () => number;
  readonly #probeMs: number;
  #next = 0;
  #closed = false;

  constructor(options: UpstreamGroupOptions) {
    if (options.members.length === 0) throw new RangeError("upstream group: no members");
    this.#strategy = options.strategy ?? "failover";
    this.#attemptMs = options.attemptTimeoutMs;
    this.#now = options.now ?? Date.now;
    this.#book = new MemberHealthBook(options.members, options, this.#now);
    this.#probeMs = options.probeIntervalMs ?? 0;
    this.name = `${this.#strategy}(${options.members.map((m) => m.name).join(", ")})`;
  }

  /** Member names with whether each is currently considered healthy. */
  health(): MemberState[] {
    return this.#book.states();
  }

  #order(): Member[] {
    const { healthy, down } = this.#book.split();
    if (this.#strategy === "round-robin" && healthy.length > 1) {
      const start = this.#next++ % healthy.length;
      if (this.#next >= Number.MAX_SAFE_INTEGER) this.#next = 0;
      return healthy.slice(start).concat(healthy.slice(0, start), down);
    }
    return healthy.concat(down);
  }

  async exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    let last: unknown;
    for (const member of this.#order()) {
      if (signal.aborted) throw signal.reason;
      try {
        const answer = this.#attemptMs === undefined
          ? await member.upstream.exchange(query, signal)
          : await withDeadline(signal, this.#attemptMs, (s) => member.upstream.exchange(query, s));
        this.#markUp(member);
        return answer;
      } catch (error) {
        if (signal.aborted) throw signal.reason;
        last = error;
        this.#markDown(member, error);
      }
    }
    throw allMembersFailed(this.name, this.#book.members.length, last);
  }

  #markUp(member: Member): void {
    if (member.probe !== undefined) {
      clearTimeout(member.probe);
      member.probe = undefined;
    }
    this.#book.succeeded(member);
  }

  #markDown(member: Member, error: unknown): void {
    this.#book.failed(member, error);
    if (this.#probeMs > 0 && member.probe === undefined && !this.#closed) {
      this.#scheduleProbe(member);
    }
  }

  #scheduleProbe(member: Member): void {
    member.probe = setTimeout(async () => {
      if (this.#closed || member.up) {
        member.probe = undefined;
        return;
      }
      try {
        await withDeadline(
          new AbortController().signal,
          this.#attemptMs ?? this.#probeMs,
          (s) => member.upstream.exchange(PROBE_QUERY, s),
        );
        member.probe = undefined;
        if (!this.#closed) this.#markUp(member);
      } catch {
        if (this.#closed) return;
        member.downUntil = Math.max(member.downUntil, this.#now() + this.#probeMs);
        this.#scheduleProbe(member);
      }
    }, this.#probeMs);
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const m of this.#book.members) {
      if (m.probe !== undefined) clearTimeout(m.probe);
      m.probe = undefined;
    }
    await Promise.all(this.#book.members.map((m) => m.upstream.close()));
  }
}
