/**
 * A group that sends each query to several members at once and takes the first answer.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import type { Query } from "../dns/query.ts";
import {
  type MemberHealth,
  MemberHealthBook,
  type MemberHealthOptions,
  type MemberState,
} from "./health.ts";
import { allMembersFailed, type Upstream, UpstreamError } from "./types.ts";

/** Options of {@linkcode RaceGroup}. */
export interface RaceGroupOptions extends MemberHealthOptions {
  members: readonly Upstream[];
  /** How many members get each query at once (at most the number of members). Default 2. */
  fanout?: number;
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number;
}

/** The reason the signals of members that lost a race abort with. */
export class RaceLostError extends Error {
  constructor(readonly winner: string) {
    super(`${winner} answered first`);
    this.name = "AbortError";
  }
}

type Member = MemberHealth;

/**
 * Sends each query to `fanout` members at once, taken in rotation from the healthy ones, and
 * answers with the first answer; the others' signals abort (with {@linkcode RaceLostError}) and
 * whatever they settle with later is ignored. Each member that fails hands its place to the next
 * member, so up to `fanout` are asking until one answers or every member has failed; then it
 * rejects with an {@linkcode UpstreamError} of the last failure's kind.
 *
 * Members that failed recently are passed over until their cool-down ends; they are asked only
 * after every healthy member failed (soonest recovery first), or first when none is healthy. The
 * caller's abort aborts every attempt and marks no member down.
 *
 * This trades upstream load (`fanout` times the queries) for the latency of the fastest of the
 * chosen members and for riding out one member's failure without delay.
 *
 * Safe for concurrent use. Closing the group closes its members.
 *
 * @example
 * ```ts
 * const group = new RaceGroup({ members: [a, b, c], fanout: 2 });
 * const answer = await group.exchange(query, AbortSignal.timeout(5000));
 * ```
 */
export class RaceGroup implements Upstream {
  readonly name: string;
  readonly #book: MemberHealthBook<Member>;
  readonly #fanout: number;
  #next = 0;
  #closed = false;

  constructor(options: RaceGroupOptions) {
    if (options.members.length === 0) throw new RangeError("race group: no members");
    const fanout = options.fanout ?? 2;
    if (!Number.isInteger(fanout) || fanout < 1) {
      throw new RangeError(
        `race group: fanout must be a whole number of at least 1, got ${fanout}`,
      );
    }
    this.#book = new MemberHealthBook(options.members, options, options.now ?? Date.now);
    this.#fanout = Math.min(fanout, options.members.length);
    this.name = `race(${options.members.map((m) => m.name).join(", ")})`;
  }

  /** Member names with whether each is currently considered healthy. */
  health(): MemberState[] {
    return this.#book.states();
  }

  /** Healthy members rotated, then those cooling down; and how many are healthy. */
  #order(): { order: Member[]; healthy: number } {
    const { healthy, down } = this.#book.split();
    if (healthy.length > 1) {
      const start = this.#next++ % healthy.length;
      if (this.#next >= Number.MAX_SAFE_INTEGER) this.#next = 0;
      healthy.push(...healthy.splice(0, start));
    }
    return { order: healthy.concat(down), healthy: healthy.length };
  }

  exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (this.#closed) {
      return Promise.reject(new UpstreamError(this.name, "unavailable", "closed"));
    }
    if (signal.aborted) return Promise.reject(signal.reason);
    const { order, healthy } = this.#order();
    return new Promise<Answer>((resolve, reject) => {
      const running = new Map<Member, AbortController>();
      let next = 0;
      let settled = false;
      let last: unknown;

      const settle = (fn: () => void) => {
        settled = true;
        signal.removeEventListener("abort", onAbort);
        fn();
      };
      const abortAll = (reason: unknown) => {
        for (const controller of running.values()) controller.abort(reason);
        running.clear();
      };
      const onAbort = () => {
        if (settled) return;
        abortAll(signal.reason);
        settle(() => reject(signal.reason));
      };

      const start = (member: Member) => {
        const controller = new AbortController();
        running.set(member, controller);
        let attempt: Promise<Answer>;
        try {
          attempt = member.upstream.exchange(query, controller.signal);
        } catch (error) {
          attempt = Promise.reject(error);
        }
        attempt.then(
          (answer) => {
            this.#book.succeeded(member); // a late answer still shows the member works
            if (settled) return;
            running.delete(member);
            abortAll(new RaceLostError(member.upstream.name));
            settle(() => resolve(answer));
          },
          (error) => {
            if (settled) return;
            running.delete(member);
            last = error;
            this.#book.failed(member, error);
            fill();
          },
        );
      };

      const fill = () => {
        while (running.size < this.#fanout && next < order.length) start(order[next++]);
        if (running.size === 0) settle(() => reject(this.#allFailed(last)));
      };

      signal.addEventListener("abort", onAbort, { once: true });
      // The first wave: healthy members only, unless none is healthy.
      const first = Math.min(this.#fanout, healthy > 0 ? healthy : order.length);
      while (next < first) start(order[next++]);
    });
  }

  #allFailed(last: unknown): UpstreamError {
    return allMembersFailed(this.name, this.#book.members.length, last);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all(this.#book.members.map((m) => m.upstream.close()));
  }
}
