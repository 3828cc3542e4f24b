import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import { parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { DeadlineError } from "../../src/async/deadline.ts";
import { FastestGroup, type FastestGroupOptions } from "../../src/upstream/fastest.ts";
import { type Upstream, UpstreamError, type UpstreamFailure } from "../../src/upstream/types.ts";
import { makeAnswer, makeQuery } from "../dns/fixtures.ts";

function query(id = 0x3333): Query {
  const c = classifyQuery(makeQuery({ id, name: "fastest.example" }));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

type Behaviour = "ok" | UpstreamFailure | "hang" | "throw";

/** The fake clock every member of a test shares: an answer "takes" `latency` ms on it. */
interface Clock {
  now: number;
}

/**
 * A fake member that answers with its own address after advancing the shared fake clock by its
 * latency, so the group measures exactly that latency.
 */
class Member implements Upstream {
  calls = 0;
  closed = false;
  signals: AbortSignal[] = [];
  behaviour: Behaviour = "ok";
  constructor(
    readonly name: string,
    readonly octet: number,
    public latency: number,
    readonly clock: Clock,
  ) {}

  exchange(q: Query, signal: AbortSignal): Promise<Answer> {
    this.calls++;
    this.signals.push(signal);
    this.clock.now += this.latency;
    switch (this.behaviour) {
      case "ok":
        return Promise.resolve(answerOf(
          makeAnswer({ id: q.info.id, name: q.question.name, address: `192.0.2.${this.octet}` }),
        ));
      case "hang":
        return new Promise((_resolve, reject) => {
          signal.addEventListener("abort", () => reject(signal.reason), { once: true });
        });
      case "throw":
        return Promise.reject(new TypeError("not an UpstreamError"));
      default:
        return Promise.reject(new UpstreamError(this.name, this.behaviour, "failed"));
    }
  }

  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** Which member answered: the last octet of the A record. */
function answeredBy(answer: Uint8Array): number {
  return answer[answer.length - 1];
}

/** A small seeded PRNG (mulberry32), so "about 1 in N" is the same on every run. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Setup {
  g: FastestGroup;
  clock: Clock;
  members: Member[];
  events: [string, boolean, unknown][];
}

/** A group over members with the given latencies (named a, b, c..., answering .1, .2, .3...). */
function setup(latencies: number[], options: Partial<FastestGroupOptions> = {}): Setup {
  const clock: Clock = { now: 1_000_000 };
  const members = latencies.map((ms, i) =>
    new Member(String.fromCharCode(97 + i), i + 1, ms, clock)
  );
  const events: [string, boolean, unknown][] = [];
  const g = new FastestGroup({
    members,
    cooldownMs: 30_000,
    exploreEvery: 0,
    now: () => clock.now,
    onHealthChange: (name, healthy, error) => events.push([name, healthy, error]),
    ...options,
  });
  return { g, clock, members, events };
}

const signal = () => new AbortController().signal;

/** Sends `n` queries one after another and returns which member answered each. */
async function run(g: FastestGroup, n: number): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < n; i++) seen.push(answeredBy((await g.exchange(query(), signal())).wire));
  return seen;
}

const count = (seen: number[], octet: number) => seen.filter((o) => o === octet).length;

describe("FastestGroup warm-up and preference", () => {
  it("asks every member once before trusting any", async () => {
    const { g, members } = setup([50, 5, 20]);
    const seen = await run(g, 3);
    expect(seen.toSorted()).toEqual([1, 2, 3]);
    expect(members.map((m) => m.calls)).toEqual([1, 1, 1]);
    expect(g.stats()).toEqual([
      { name: "a", ewmaMs: 50, healthy: true },
      { name: "b", ewmaMs: 5, healthy: true },
      { name: "c", ewmaMs: 20, healthy: true },
    ]);
  });

  it("reports no average for a member not asked yet", () => {
    const { g } = setup([5, 5]);
    expect(g.stats().map((s) => s.ewmaMs)).toEqual([null, null]);
  });

  it("sends every query to the fastest member after the warm-up", async () => {
    const { g, members } = setup([50, 5, 20]);
    await run(g, 3);
    const seen = await run(g, 30);
    expect(count(seen, 2)).toBe(30);
    expect(members.map((m) => m.calls)).toEqual([1, 31, 1]);
  });

  it("restores the query's id on the answer", async () => {
    const { g } = setup([5]);
    expect(parseMessage((await g.exchange(query(0x4242), signal())).wire).id).toBe(0x4242);
  });

  it("smooths latency with alpha", async () => {
    const { g, members } = setup([10], { alpha: 0.5 });
    await run(g, 1);
    members[0].latency = 20;
    await run(g, 1);
    expect(g.stats()[0].ewmaMs).toBe(15);
    members[0].latency = 35;
    await run(g, 1);
    expect(g.stats()[0].ewmaMs).toBe(25);
  });

  it("uses alpha 0.3 by default", async () => {
    const { g, members } = setup([10]);
    await run(g, 1);
    members[0].latency = 20;
    await run(g, 1);
    expect(g.stats()[0].ewmaMs).toBeCloseTo(13, 10);
  });

  it("switches to another member when the fastest becomes slow", async () => {
    const { g, members } = setup([5, 20]);
    await run(g, 2);
    expect(count(await run(g, 5), 1)).toBe(5);
    members[0].latency = 100;
    const seen = await run(g, 10);
    // a's average climbs past b's 20 ms within a few samples (5 → 33.5 → 53.5); then b only.
    const switchedAt = seen.indexOf(2);
    expect(switchedAt).toBeGreaterThan(0);
    expect(switchedAt).toBeLessThanOrEqual(3);
    expect(seen.slice(switchedAt).every((o) => o === 2)).toBe(true);
  });
});

describe("FastestGroup exploring", () => {
  it("sends about one query in exploreEvery to a member that is not the fastest", async () => {
    const { g, members } = setup([5, 50], { exploreEvery: 10, random: seeded(7) });
    await run(g, 2);
    const seen = await run(g, 2_000);
    // Expected 200 (binomial, sd ≈ 13); the bound is wide enough for any seed.
    expect(count(seen, 2)).toBeGreaterThan(120);
    expect(count(seen, 2)).toBeLessThan(280);
    expect(members[1].calls).toBe(1 + count(seen, 2));
  });

  it("explores with the default of one in 20", async () => {
    const { g } = setup([5, 50], { exploreEvery: undefined, random: seeded(11) });
    await run(g, 2);
    const seen = await run(g, 2_000);
    // Expected 100 (sd ≈ 10).
    expect(count(seen, 2)).toBeGreaterThan(50);
    expect(count(seen, 2)).toBeLessThan(150);
  });

  it("takes the members that are not the fastest in turn when exploring", async () => {
    const { g } = setup([5, 50, 60, 70], { exploreEvery: 2, random: () => 0 });
    await run(g, 4);
    // random() = 0 explores on every query; a (fastest) is never the one explored.
    expect(await run(g, 6)).toEqual([2, 3, 4, 2, 3, 4]);
  });

  it("never explores with exploreEvery 0", async () => {
    const { g } = setup([5, 50], { exploreEvery: 0, random: () => 0 });
    await run(g, 2);
    expect(count(await run(g, 50), 2)).toBe(0);
  });

  it("notices a member that became faster through exploring", async () => {
    const { g, members } = setup([20, 50], { exploreEvery: 10, random: seeded(3) });
    await run(g, 2);
    members[1].latency = 2;
    const seen = await run(g, 300);
    // Three explorations bring b's average below a's 20 ms (50 → 35.6 → 25.5 → 18.5) and b
    // takes over; a is then the one explored, about 1 in 10.
    expect(count(seen.slice(-100), 2)).toBeGreaterThan(75);
    expect(g.stats()[1].ewmaMs).toBeLessThan(20);
  });
});

describe("FastestGroup failures", () => {
  it("falls back to the next fastest within the same query", async () => {
    const { g, members, events } = setup([5, 20, 50]);
    await run(g, 3);
    members[0].behaviour = "network";
    const before = members.map((m) => m.calls);
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(2);
    expect(members.map((m, i) => m.calls - before[i])).toEqual([1, 1, 0]);
    expect(events.map(([n, h]) => [n, h])).toEqual([["a", false]]);
    expect((events[0][2] as UpstreamError).kind).toBe("network");
  });

  it("skips a dead member during its cool-down and counts its failure as a large sample", async () => {
    const { g, members, clock } = setup([5, 20]);
    members[0].behaviour = "network";
    members[0].latency = 0; // a refused connection fails at once
    const seen = await run(g, 1);
    expect(seen).toEqual([2]); // a (unmeasured) first, failed, b answered the same query
    expect(members[0].calls).toBe(1);
    expect(g.stats()[0]).toEqual({ name: "a", ewmaMs: 1_000, healthy: false });

    expect(count(await run(g, 20), 2)).toBe(20);
    expect(members[0].calls).toBe(1);

    clock.now += 30_000;
    // Cool-down over, but its penalty still ranks it last: without exploring it is not asked.
    expect(g.stats()[0].healthy).toBe(true);
    expect(count(await run(g, 20), 2)).toBe(20);
    expect(members[0].calls).toBe(1);
  });

  it("takes a recovered member back at its real latency once exploring reaches it", async () => {
    const { g, members, clock, events } = setup([5, 20], { exploreEvery: 2, random: () => 0.9 });
    members[0].behaviour = "network";
    await run(g, 1);
    members[0].behaviour = "ok";
    clock.now += 30_000;
    expect(await run(g, 3)).toEqual([2, 2, 2]); // 0.9 * 2 ≥ 1: no exploring

    const explore = setup([5, 20], { exploreEvery: 2, random: () => 0 });
    explore.members[0].behaviour = "network";
    await run(explore.g, 1);
    explore.members[0].behaviour = "ok";
    explore.clock.now += 30_000;
    expect(await run(explore.g, 1)).toEqual([1]); // explored: answered in 5 ms
    expect(explore.g.stats()[0].ewmaMs).toBe(5); // the outage's penalty is forgotten
    expect(explore.events.map(([n, h]) => `${n}:${h}`)).toEqual(["a:false", "a:true"]);
    expect(events.map(([n, h]) => `${n}:${h}`)).toEqual(["a:false"]);
  });

  it("still tries members that are cooling down when all are, soonest recovery first", async () => {
    const { g, members, clock } = setup([5, 20]);
    await run(g, 2);
    members[0].behaviour = "network";
    members[1].behaviour = "network";
    await expect(g.exchange(query(), signal())).rejects.toThrow(UpstreamError);
    clock.now += 10;
    members[1].behaviour = "ok";
    const before = members.map((m) => m.calls);
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(2);
    // a failed first, so it recovers first and is asked first.
    expect(members.map((m, i) => m.calls - before[i])).toEqual([1, 1]);
  });

  it("moves on after attemptTimeoutMs and counts the timeout against the member", async () => {
    const { g, members, events } = setup([5, 20], { attemptTimeoutMs: 30 });
    await run(g, 2);
    members[0].behaviour = "hang";
    const started = performance.now();
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(2);
    expect(performance.now() - started).toBeLessThan(5_000); // moved on, not hung
    const hung = members[0].signals.at(-1)!;
    expect(hung.aborted).toBe(true);
    expect(hung.reason).toBeInstanceOf(DeadlineError);
    expect(events[0][2]).toBeInstanceOf(DeadlineError);
    expect(g.stats()[0].ewmaMs).toBeGreaterThan(20);
  });

  const kinds: { name: string; last: Behaviour; kind: UpstreamFailure }[] = [
    { name: "network", last: "network", kind: "network" },
    { name: "bad-answer", last: "bad-answer", kind: "bad-answer" },
    { name: "unavailable for a non-upstream error", last: "throw", kind: "unavailable" },
  ];
  for (const c of kinds) {
    it(`throws an UpstreamError with the last kind (${c.name}) when every member fails`, async () => {
      const { g, members } = setup([5, 20]);
      await run(g, 2);
      members[0].behaviour = "timeout";
      members[1].behaviour = c.last;
      const error = await g.exchange(query(), signal()).catch((e) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error.kind).toBe(c.kind);
      expect(error.upstream).toBe("fastest(a, b)");
      expect(error.message).toMatch(/^upstream fastest\(a, b\): all 2 members failed; last: /);
      expect(error.cause).toBeDefined();
      expect(members.map((m) => m.calls)).toEqual([2, 2]);
    });
  }
});

describe("FastestGroup cancellation and lifetime", () => {
  it("propagates the caller's abort without blaming or measuring the member", async () => {
    const { g, members, events } = setup([5, 20]);
    await run(g, 2);
    members[0].behaviour = "hang";
    const controller = new AbortController();
    const pending = g.exchange(query(), controller.signal);
    const reason = new Error("client went away");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(members[1].calls).toBe(1);
    expect(events).toEqual([]);
    expect(g.stats()).toEqual([
      { name: "a", ewmaMs: 5, healthy: true },
      { name: "b", ewmaMs: 20, healthy: true },
    ]);
  });

  it("rejects without asking anyone when the signal is already aborted", async () => {
    const { g, members } = setup([5]);
    const controller = new AbortController();
    controller.abort(new Error("already"));
    await expect(g.exchange(query(), controller.signal)).rejects.toThrow("already");
    expect(members[0].calls).toBe(0);
  });

  it("closes every member when closed and rejects queries after", async () => {
    const { g, members } = setup([5, 20]);
    await g.close();
    expect(members.map((m) => m.closed)).toEqual([true, true]);
    const error = await g.exchange(query(), signal()).catch((e) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.kind).toBe("unavailable");
    expect(members.map((m) => m.calls)).toEqual([0, 0]);
  });

  it("is named after its members", () => {
    expect(setup([1, 1]).g.name).toBe("fastest(a, b)");
  });

  const bad: { name: string; options: Partial<FastestGroupOptions> }[] = [
    { name: "no members", options: { members: [] } },
    { name: "alpha 0", options: { alpha: 0 } },
    { name: "alpha above 1", options: { alpha: 1.5 } },
    { name: "exploreEvery between 0 and 1", options: { exploreEvery: 0.5 } },
    { name: "negative exploreEvery", options: { exploreEvery: -1 } },
  ];
  for (const c of bad) {
    it(`refuses to be built with ${c.name}`, () => {
      expect(() => setup([1], c.options)).toThrow(RangeError);
    });
  }
});
