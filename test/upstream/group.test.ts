import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import { parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { DeadlineError } from "../../src/async/deadline.ts";
import { UpstreamGroup, type UpstreamGroupOptions } from "../../src/upstream/group.ts";
import { type Upstream, UpstreamError, type UpstreamFailure } from "../../src/upstream/types.ts";
import { makeAnswer, makeQuery } from "../dns/fixtures.ts";

function query(id = 0x2222): Query {
  const c = classifyQuery(makeQuery({ id, name: "group.example" }));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

type Behaviour = "ok" | UpstreamFailure | "hang" | "throw";

/** A fake member whose behaviour the test switches; it answers with its own address. */
class Member implements Upstream {
  calls = 0;
  closed = false;
  signals: AbortSignal[] = [];
  constructor(readonly name: string, public behaviour: Behaviour = "ok", readonly octet = 1) {}

  exchange(q: Query, signal: AbortSignal): Promise<Answer> {
    this.calls++;
    this.signals.push(signal);
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

function group(
  members: Member[],
  options: Partial<UpstreamGroupOptions> = {},
): { g: UpstreamGroup; clock: { now: number }; events: [string, boolean, unknown][] } {
  const clock = { now: 1_000_000 };
  const events: [string, boolean, unknown][] = [];
  const g = new UpstreamGroup({
    members,
    cooldownMs: 30_000,
    now: () => clock.now,
    onHealthChange: (name, healthy, error) => events.push([name, healthy, error]),
    ...options,
  });
  return { g, clock, events };
}

const signal = () => new AbortController().signal;

describe("UpstreamGroup failover", () => {
  it("asks the first member and only it when it answers", async () => {
    const a = new Member("a", "ok", 1);
    const b = new Member("b", "ok", 2);
    const { g } = group([a, b]);
    const answer = await g.exchange(query(), signal());
    expect(answeredBy(answer.wire)).toBe(1);
    expect(parseMessage(answer.wire).id).toBe(0x2222);
    expect([a.calls, b.calls]).toEqual([1, 0]);
  });

  it("moves to the next member in order when one fails", async () => {
    const a = new Member("a", "network", 1);
    const b = new Member("b", "http-status", 2);
    const c = new Member("c", "ok", 3);
    const { g } = group([a, b, c]);
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(3);
    expect([a.calls, b.calls, c.calls]).toEqual([1, 1, 1]);
  });

  it("skips a failed member during its cool-down and takes it back after", async () => {
    const a = new Member("a", "network", 1);
    const b = new Member("b", "ok", 2);
    const { g, clock } = group([a, b]);
    await g.exchange(query(), signal());
    expect(a.calls).toBe(1);
    a.behaviour = "ok";

    clock.now += 29_999;
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(2);
    expect(a.calls).toBe(1);
    expect(g.health()).toEqual([{ name: "a", healthy: false }, { name: "b", healthy: true }]);

    clock.now += 1;
    expect(g.health()[0].healthy).toBe(true);
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(1);
    expect(a.calls).toBe(2);
  });

  it("tries a cooling-down member last rather than not at all", async () => {
    const a = new Member("a", "network", 1);
    const b = new Member("b", "ok", 2);
    const { g } = group([a, b]);
    await g.exchange(query(), signal()); // a is now down
    a.behaviour = "ok";
    b.behaviour = "timeout";
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(1);
    expect([a.calls, b.calls]).toEqual([2, 2]);
  });

  it("still tries every member when all are down, soonest recovery first", async () => {
    const a = new Member("a", "network", 1);
    const b = new Member("b", "network", 2);
    const { g, clock } = group([a, b]);
    await expect(g.exchange(query(), signal())).rejects.toThrow(UpstreamError);
    // a went down first, so it recovers first.
    clock.now += 10;
    b.behaviour = "network";
    a.behaviour = "ok";
    const order: string[] = [];
    const origA = a.exchange.bind(a);
    const origB = b.exchange.bind(b);
    a.exchange = (q, s) => (order.push("a"), origA(q, s));
    b.exchange = (q, s) => (order.push("b"), origB(q, s));
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(1);
    expect(order).toEqual(["a"]);

    // Now only b is down; b failed at t+10 so it is tried after a healthy a.
    a.behaviour = "network";
    b.behaviour = "ok";
    order.length = 0;
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(2);
    expect(order).toEqual(["a", "b"]);
  });

  const kinds: { name: string; last: Behaviour; kind: UpstreamFailure }[] = [
    { name: "the last member's kind (network)", last: "network", kind: "network" },
    { name: "the last member's kind (bad-answer)", last: "bad-answer", kind: "bad-answer" },
    { name: "the last member's kind (http-status)", last: "http-status", kind: "http-status" },
    { name: "unavailable for a non-upstream error", last: "throw", kind: "unavailable" },
  ];
  for (const c of kinds) {
    it(`throws an UpstreamError with ${c.name} when every member fails`, async () => {
      const a = new Member("a", "timeout");
      const b = new Member("b", c.last);
      const { g } = group([a, b]);
      const error = await g.exchange(query(), signal()).catch((e) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error.kind).toBe(c.kind);
      expect(error.upstream).toBe("failover(a, b)");
      expect(error.message).toMatch(/^upstream failover\(a, b\): all 2 members failed; last: /);
      expect(error.cause).toBeDefined();
      expect([a.calls, b.calls]).toEqual([1, 1]);
    });
  }
});

describe("UpstreamGroup round-robin", () => {
  it("rotates the first member asked", async () => {
    const members = [new Member("a", "ok", 1), new Member("b", "ok", 2), new Member("c", "ok", 3)];
    const { g } = group(members, { strategy: "round-robin" });
    const firsts: number[] = [];
    for (let i = 0; i < 6; i++) firsts.push(answeredBy((await g.exchange(query(), signal())).wire));
    expect(firsts).toEqual([1, 2, 3, 1, 2, 3]);
    expect(members.map((m) => m.calls)).toEqual([2, 2, 2]);
    expect(g.name).toBe("round-robin(a, b, c)");
  });

  it("passes over a member in cool-down and fails over to the next in rotation", async () => {
    const members = [
      new Member("a", "ok", 1),
      new Member("b", "network", 2),
      new Member("c", "ok", 3),
    ];
    const { g } = group(members, { strategy: "round-robin" });
    const firsts: number[] = [];
    for (let i = 0; i < 6; i++) firsts.push(answeredBy((await g.exchange(query(), signal())).wire));
    // 1st: a. 2nd: b fails -> c. From then on b is passed over; a and c both keep answering.
    expect(firsts.slice(0, 2)).toEqual([1, 3]);
    expect(members[1].calls).toBe(1);
    expect(firsts.slice(2).every((o) => o === 1 || o === 3)).toBe(true);
    expect(firsts.slice(2)).toContain(1);
    expect(firsts.slice(2)).toContain(3);
  });
});

describe("UpstreamGroup deadlines and cancellation", () => {
  it("moves on to the next member after attemptTimeoutMs", async () => {
    const a = new Member("a", "hang", 1);
    const b = new Member("b", "ok", 2);
    const { g, events } = group([a, b], { attemptTimeoutMs: 30 });
    const started = performance.now();
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(2);
    expect(performance.now() - started).toBeLessThan(5_000); // moved on, not hung
    expect(a.signals[0].aborted).toBe(true);
    expect(a.signals[0].reason).toBeInstanceOf(DeadlineError);
    expect(events.map(([n, h]) => [n, h])).toEqual([["a", false]]);
    expect(events[0][2]).toBeInstanceOf(DeadlineError);
  });

  it("reports kind timeout when every member runs out of time", async () => {
    const { g } = group([new Member("a", "hang"), new Member("b", "hang")], {
      attemptTimeoutMs: 20,
    });
    const error = await g.exchange(query(), signal()).catch((e) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.kind).toBe("timeout");
  });

  it("propagates the caller's abort at once and tries no further member", async () => {
    const a = new Member("a", "hang", 1);
    const b = new Member("b", "ok", 2);
    const { g, events } = group([a, b]);
    const controller = new AbortController();
    const pending = g.exchange(query(), controller.signal);
    const reason = new Error("client went away");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(b.calls).toBe(0);
    expect(a.signals[0].aborted).toBe(true);
    expect(events).toEqual([]); // a caller's abort is not the member's fault
    expect(g.health().every((m) => m.healthy)).toBe(true);
  });

  it("propagates the caller's abort through a per-attempt deadline too", async () => {
    const a = new Member("a", "hang", 1);
    const b = new Member("b", "ok", 2);
    const { g } = group([a, b], { attemptTimeoutMs: 10_000 });
    const controller = new AbortController();
    const pending = g.exchange(query(), controller.signal);
    controller.abort(new Error("stop"));
    await expect(pending).rejects.toThrow("stop");
    expect(b.calls).toBe(0);
    expect(a.signals[0].aborted).toBe(true);
  });

  it("rejects without asking anyone when the signal is already aborted", async () => {
    const a = new Member("a");
    const { g } = group([a]);
    const controller = new AbortController();
    controller.abort(new Error("already"));
    await expect(g.exchange(query(), controller.signal)).rejects.toThrow("already");
    expect(a.calls).toBe(0);
  });
});

describe("UpstreamGroup health events and lifetime", () => {
  it("reports a member going down once and coming back once", async () => {
    const a = new Member("a", "network", 1);
    const b = new Member("b", "ok", 2);
    const { g, clock, events } = group([a, b]);
    await g.exchange(query(), signal());
    expect(events).toHaveLength(1);
    expect(events[0][0]).toBe("a");
    expect(events[0][1]).toBe(false);
    expect((events[0][2] as UpstreamError).kind).toBe("network");

    await g.exchange(query(), signal()); // a is skipped: no new event
    expect(events).toHaveLength(1);

    a.behaviour = "ok";
    clock.now += 30_000;
    await g.exchange(query(), signal());
    expect(events.map(([n, h]) => [n, h])).toEqual([["a", false], ["a", true]]);

    await g.exchange(query(), signal()); // healthy and answering: no event
    expect(events).toHaveLength(2);
  });

  it("does not report a member down again while it is still cooling down", async () => {
    const a = new Member("a", "network");
    const b = new Member("b", "network");
    const { g, events } = group([a, b]);
    await g.exchange(query(), signal()).catch(() => {});
    await g.exchange(query(), signal()).catch(() => {});
    expect(events.map(([n, h]) => [n, h])).toEqual([["a", false], ["b", false]]);
  });

  it("closes every member when closed", async () => {
    const members = [new Member("a"), new Member("b")];
    const { g } = group(members);
    await g.close();
    expect(members.map((m) => m.closed)).toEqual([true, true]);
  });

  it("refuses to be built without members", () => {
    expect(() => new UpstreamGroup({ members: [] })).toThrow(RangeError);
  });

  it("is named after its strategy and members", () => {
    expect(group([new Member("x"), new Member("y")]).g.name).toBe("failover(x, y)");
  });
});

describe("UpstreamGroup fairness and health state", () => {
  it("spreads round-robin load evenly over the healthy members while one is down", async () => {
    const a = new Member("a", "ok", 1);
    const b = new Member("b", "network", 2);
    const c = new Member("c", "ok", 3);
    const { g } = group([a, b, c], { strategy: "round-robin" });
    const seen: number[] = [];
    for (let i = 0; i < 60; i++) seen.push(answeredBy((await g.exchange(query(), signal())).wire));
    const count = (n: number) => seen.filter((x) => x === n).length;
    expect(count(2)).toBe(0);
    expect(Math.abs(count(1) - count(3))).toBeLessThanOrEqual(2);
  });

  it("reports down once per outage, even when the cool-down lapses and it fails again", async () => {
    const a = new Member("a", "network", 1);
    const b = new Member("b", "ok", 2);
    const { g, clock, events } = group([a, b]);
    await g.exchange(query(), signal());
    clock.now += 31_000; // cool-down over: a is tried first again, and fails again
    await g.exchange(query(), signal());
    expect(events.map(([n, h]) => `${n}:${h}`)).toEqual(["a:false"]);
    a.behaviour = "ok";
    clock.now += 31_000;
    await g.exchange(query(), signal());
    expect(events.map(([n, h]) => `${n}:${h}`)).toEqual(["a:false", "a:true"]);
  });
});
