/**
 * The health every group (failover and round-robin, fastest, race) keeps of its members: a
 * member that fails is passed over for a cool-down, its change of state is reported once, and
 * the group can list who is healthy. One {@linkcode MemberHealthBook} per group.
 *
 * @module
 */
import type { Upstream } from "./types.ts";

/** One member's health. */
export interface MemberHealth {
  readonly upstream: Upstream;
  /** Passed over until this time (ms) after a failure. */
  downUntil: number;
  /** Last reported state: false from a failure until the next success. */
  up: boolean;
}

/** Told when a member is reported down or back. */
export type HealthListener = (member: string, healthy: boolean, error?: unknown) => void;

/** The health options every group takes. */
export interface MemberHealthOptions {
  /** How long a failed member is passed over before it gets queries again. Default 30 000 ms. */
  cooldownMs?: number;
  /** Called when a member is marked down or comes back. */
  onHealthChange?: HealthListener;
}

/** A member's name and whether it is out of its cool-down, as groups list them. */
export interface MemberState {
  name: string;
  healthy: boolean;
}

/**
 * A group's members with their health. A member is passed over until `downUntil` after a
 * failure; `up` is what was last reported, so a member whose cool-down lapsed and that fails
 * again is not reported down twice, and one that answers is reported back once.
 *
 * `M` is the group's member record: {@linkcode MemberHealth} and whatever else the group keeps
 * per member (optional fields, unset at the start).
 *
 * @example
 * ```ts
 * const book = new MemberHealthBook(upstreams, { cooldownMs: 30_000, onHealthChange }, Date.now);
 * const { healthy, down } = book.split();
 * for (const member of healthy.concat(down)) {
 *   try {
 *     const answer = await member.upstream.exchange(query, signal);
 *     book.succeeded(member);
 *     return answer;
 *   } catch (error) {
 *     book.failed(member, error);
 *   }
 * }
 * ```
 */
export class MemberHealthBook<M extends MemberHealth = MemberHealth> {
  /** Every member, in the order given. */
  readonly members: readonly M[];
  readonly #cooldownMs: number;
  readonly #onChange?: HealthListener;
  readonly #now: () => number;

  /**
   * @param upstreams the members, each healthy at the start
   * @param now the group's milliseconds clock
   */
  constructor(upstreams: readonly Upstream[], options: MemberHealthOptions, now: () => number) {
    this.members = upstreams.map((upstream) => ({ upstream, downUntil: 0, up: true }) as M);
    this.#cooldownMs = options.cooldownMs ?? 30_000;
    this.#onChange = options.onHealthChange;
    this.#now = now;
  }

  /** Whether `member` is out of its cool-down at `now` (default: the clock's now). */
  isHealthy(member: M, now: number = this.#now()): boolean {
    return member.downUntil <= now;
  }

  /** Each member's name and whether it is out of its cool-down now, in member order. */
  states(): MemberState[] {
    const now = this.#now();
    return this.members.map((m) => ({ name: m.upstream.name, healthy: m.downUntil <= now }));
  }

  /**
   * The members out of their cool-down, in member order, and those in it, soonest recovery
   * first (tried last, but tried: an answer beats a certain SERVFAIL).
   */
  split(): { healthy: M[]; down: M[] } {
    const now = this.#now();
    const healthy: M[] = [];
    const down: M[] = [];
    for (const m of this.members) (m.downUntil <= now ? healthy : down).push(m);
    down.sort((a, b) => a.downUntil - b.downUntil);
    return { healthy, down };
  }

  /**
   * The member answered: no cool-down; reported back if it was down.
   *
   * @returns true when this is a recovery (it was reported down)
   */
  succeeded(member: M): boolean {
    member.downUntil = 0;
    if (member.up) return false;
    member.up = true;
    this.#onChange?.(member.upstream.name, true);
    return true;
  }

  /** The member failed: passed over for the cool-down from now; reported down if it was up. */
  failed(member: M, error: unknown): void {
    member.downUntil = this.#now() + this.#cooldownMs;
    if (!member.up) return;
    member.up = false;
    this.#onChange?.(member.upstream.name, false, error);
  }
}
