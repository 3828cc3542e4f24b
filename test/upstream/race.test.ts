import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import { parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { RaceGroup, type RaceGroupOptions, RaceLostError } from "../../src/upstream/race.ts";
import { type Upstream, UpstreamError, type UpstreamFailure } from "../../src/upstream/types.ts";
import { makeAnswer, makeQuery } from "../dns/fixtures.ts";

function query(id = 0x4444): Query {
  const c = classifyQuery(makeQuery({ id, name: "race.example" }));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

/** `wait`: pending until the test calls `answer()` or `fail()`, or the signal aborts. */
type Behaviour = "ok" | UpstreamFailure | "wait" | "throw";

/** Tracks how many exchanges are pending across the members of one test. */
interface Tally {
  inFlight: number;
  max: number;
}

/** A fake member whose behaviour the test switches; it answers with its own address. */
class Member implements Upstream {
  calls = 0;
  closed = false;
  signals: AbortSignal[] = [];
  /** Outcomes of exchanges, in call order: "answered", "failed" or "aborted". */
  outcomes: string[] = [];
  #pending: { resolve: (a: Answer) => void; reject: (e: unknown) => void; q: Query }[] = [];

  constructor(
    readonly name: string,
    public behaviour: Behaviour,
    readonly octet: number,
    readonly tally: Tally,
  ) {}

  exchange(q: Query, signal: AbortSignal): Promise<Answer> {
    this.calls++;
    this.signals.push(signal);
    this.tally.inFlight++;
    this.tally.max = Math.max(this.tally.max, this.tally.inFlight);
    const done = (outcome: string) => {
      this.tally.inFlight--;
      this.outcomes.push(outcome);
    };
    let p: Promise<Answer>;
    switch (this.behaviour) {
      case "ok":
        p = Promise.resolve(this.#answer(q));
        break;
      case "wait":
        p = new Promise((resolve, reject) => {
          const entry = { resolve, reject, q };
          this.#pending.push(entry);
          signal.addEventListener("abort", () => {
            this.#pending = this.#pending.filter((e) => e !== entry);
            reject(signal.reason);
          }, { once: true });
        });
        break;
      case "throw":
        p = Promise.reject(new TypeError("not an UpstreamError"));
        break;
      default:
        p = Promise.reject(new UpstreamError(this.name, this.behaviour, "failed"));
    }
    return p.then(
      (a) => (done("answered"), a),
      (e) => {
        done(signal.aborted ? "aborted" : "failed");
        throw e;
      },
    );
  }

  /** Answers the oldest waiting exchange. */
  answer(): void {
    const w = this.#pending.shift()!;
    w.resolve(this.#answer(w.q));
  }

  /** Fails the oldest waiting exchange. */
  fail(kind: UpstreamFailure = "network"): void {
    this.#pending.shift()!.reject(new UpstreamError(this.name, kind, "failed"));
  }

  #answer(q: Query): Answer {
    return answerOf(
      makeAnswer({ id: q.info.id, name: q.question.name, address: `192.0.2.${this.octet}` }),
    );
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

interface Setup {
  g: RaceGroup;
  clock: { now: number };
  members: Member[];
  tally: Tally;
  events: [string, boolean, unknown][];
}

/** A group over members with the given behaviours (named a, b, c..., answering .1, .2, .3...). */
function setup(behaviours: Behaviour[], options: Partial<RaceGroupOptions> = {}): Setup {
  const clock = { now: 1_000_000 };
  const tally: Tally = { inFlight: 0, max: 0 };
  const members = behaviours.map((b, i) =>
    new Member(String.fromCharCode(97 + i), b, i + 1, tally)
  );
  const events: [string, boolean, unknown][] = [];
  const g = new RaceGroup({
    members,
    cooldownMs: 30_000,
    now: () => clock.now,
    onHealthChange: (name, healthy, error) => events.push([name, healthy, error]),
    ...options,
  });
  return { g, clock, members, tally, events };
}

const signal = () => new AbortController().signal;

/** Lets pending promise callbacks run. */
const settle = () => new Promise((r) => setTimeout(r, 0));

describe("RaceGroup racing", () => {
  it("answers with whichever member answers first and aborts the other", async () => {
    const { g, members, events } = setup(["wait", "wait"]);
    const pending = g.exchange(query(), signal());
    await settle();
    expect(members.map((m) => m.calls)).toEqual([1, 1]); // both got the query at once
    members[1].answer();
    const answer = await pending;
    expect(answeredBy(answer.wire)).toBe(2);
    expect(parseMessage(answer.wire).id).toBe(0x4444);
    expect(members[0].signals[0].aborted).toBe(true);
    expect(members[0].signals[0].reason).toBeInstanceOf(RaceLostError);
    expect(members[1].signals[0].aborted).toBe(false);
    await settle();
    expect(members[0].outcomes).toEqual(["aborted"]); // the loser's rejection was handled
    expect(events).toEqual([]); // losing is not failing
  });

  it("ignores a loser that answers after the winner", async () => {
    const { g, members } = setup(["wait", "wait"]);
    const pending = g.exchange(query(), signal());
    await settle();
    members[0].answer();
    members[1].answer(); // too late: its signal aborted, but this fake answers anyway
    expect(answeredBy((await pending).wire)).toBe(1);
    await settle();
    expect(members[1].signals[0].aborted).toBe(true);
  });

  it("survives one failing member", async () => {
    const { g, members, events } = setup(["network", "wait"]);
    const pending = g.exchange(query(), signal());
    await settle();
    members[1].answer();
    expect(answeredBy((await pending).wire)).toBe(2);
    expect(events.map(([n, h]) => [n, h])).toEqual([["a", false]]);
    expect((events[0][2] as UpstreamError).kind).toBe("network");
    expect(g.health()).toEqual([{ name: "a", healthy: false }, { name: "b", healthy: true }]);
  });

  it("hands a failed member's place to the next one, never exceeding the fanout", async () => {
    const { g, members, tally } = setup(["network", "wait", "wait", "wait"]);
    const pending = g.exchange(query(), signal());
    await settle();
    // a failed at once, so c took its place beside the still-waiting b; d was not asked.
    expect(members.map((m) => m.calls)).toEqual([1, 1, 1, 0]);
    members[1].fail();
    await settle();
    expect(members.map((m) => m.calls)).toEqual([1, 1, 1, 1]);
    members[3].answer();
    expect(answeredBy((await pending).wire)).toBe(4);
    expect(members[2].signals[0].aborted).toBe(true);
    expect(tally.max).toBe(2);
  });

  it("tries the next members when the first ones all fail", async () => {
    const { g, members } = setup(["timeout", "bad-answer", "ok"], { fanout: 2 });
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(3);
    expect(members.map((m) => m.calls)).toEqual([1, 1, 1]);
  });

  const kinds: { name: string; last: Behaviour; kind: UpstreamFailure }[] = [
    { name: "network", last: "network", kind: "network" },
    { name: "http-status", last: "http-status", kind: "http-status" },
    { name: "unavailable for a non-upstream error", last: "throw", kind: "unavailable" },
  ];
  for (const c of kinds) {
    it(`throws an UpstreamError with the last kind (${c.name}) when every member fails`, async () => {
      const { g, members } = setup(["wait", "wait", c.last], { fanout: 2 });
      const pending = g.exchange(query(), signal()).catch((e) => e);
      await settle();
      members[0].fail("timeout");
      await settle();
      members[1].fail("bad-answer"); // c, started when a failed, failed before this
      const error = await pending;
      expect(error).toBeInstanceOf(UpstreamError);
      expect(error.kind).toBe("bad-answer");
      expect(error.upstream).toBe("race(a, b, c)");
      expect(error.message).toMatch(/^upstream race\(a, b, c\): all 3 members failed; last: /);
      expect(members.map((m) => m.calls)).toEqual([1, 1, 1]);

      // And when the member of that kind is the last to fail:
      const again = setup(["timeout", "bad-answer", c.last], { fanout: 3 });
      const last = await again.g.exchange(query(), signal()).catch((e) => e);
      expect(last).toBeInstanceOf(UpstreamError);
      expect(last.kind).toBe(c.kind);
      expect(last.cause).toBeDefined();
    });
  }
});

describe("RaceGroup fanout and rotation", () => {
  it("asks two members at once by default", async () => {
    const { g, members, tally } = setup(["wait", "wait", "wait", "wait"]);
    const pending = g.exchange(query(), signal());
    await settle();
    expect(members.map((m) => m.calls)).toEqual([1, 1, 0, 0]);
    members[0].answer();
    await pending;
    expect(tally.max).toBe(2);
  });

  for (const fanout of [1, 3, 4]) {
    it(`asks ${fanout} member(s) at once with fanout ${fanout}`, async () => {
      const { g, members, tally } = setup(["wait", "wait", "wait", "wait"], { fanout });
      const pending = g.exchange(query(), signal());
      await settle();
      expect(members.filter((m) => m.calls === 1)).toHaveLength(fanout);
      members.find((m) => m.calls === 1)!.answer();
      await pending;
      expect(tally.max).toBe(fanout);
    });
  }

  it("asks every member when the fanout exceeds them", async () => {
    const { g, members, tally } = setup(["wait", "wait"], { fanout: 5 });
    const pending = g.exchange(query(), signal());
    await settle();
    expect(members.map((m) => m.calls)).toEqual([1, 1]);
    members[1].answer();
    await pending;
    expect(tally.max).toBe(2);
  });

  it("rotates which members get the query", async () => {
    const { g, members } = setup(["ok", "ok", "ok"], { fanout: 1 });
    const seen: number[] = [];
    for (let i = 0; i < 6; i++) seen.push(answeredBy((await g.exchange(query(), signal())).wire));
    expect(seen).toEqual([1, 2, 3, 1, 2, 3]);
    expect(members.map((m) => m.calls)).toEqual([2, 2, 2]);
  });

  it("spreads pairs evenly over the members", async () => {
    const { g, members } = setup(["wait", "wait", "wait"]);
    for (let i = 0; i < 6; i++) {
      const pending = g.exchange(query(), signal());
      await settle();
      const asked = members.filter((m) => m.signals.at(-1) && !m.signals.at(-1)!.aborted);
      asked.find((m) => m.outcomes.length < m.calls)!.answer();
      await pending;
      await settle();
    }
    expect(members.map((m) => m.calls)).toEqual([4, 4, 4]);
  });
});

describe("RaceGroup health", () => {
  it("leaves a member in cool-down out of the first wave and takes it back after", async () => {
    const { g, members, clock, events } = setup(["network", "ok", "ok"], { fanout: 2 });
    await g.exchange(query(), signal()); // a fails and goes down
    members[0].behaviour = "ok";
    for (let i = 0; i < 4; i++) await g.exchange(query(), signal());
    expect(members[0].calls).toBe(1);

    clock.now += 30_000;
    expect(g.health()[0].healthy).toBe(true);
    for (let i = 0; i < 3; i++) await g.exchange(query(), signal());
    expect(members[0].calls).toBeGreaterThan(1);
    expect(events.map(([n, h]) => `${n}:${h}`)).toEqual(["a:false", "a:true"]);
  });

  it("asks a member in cool-down only after the healthy ones failed", async () => {
    const { g, members } = setup(["network", "ok", "wait"], { fanout: 2 });
    await g.exchange(query(), signal()); // a down; b answered
    members[0].behaviour = "ok";
    members[1].behaviour = "wait";
    const pending = g.exchange(query(), signal());
    await settle();
    expect(members.map((m) => m.calls)).toEqual([1, 2, 2]); // b and c, not a
    members[1].fail();
    await settle();
    expect(members[0].calls).toBe(2); // now a takes b's place
    expect(answeredBy((await pending).wire)).toBe(1);
    expect(members[2].signals.at(-1)!.aborted).toBe(true);
  });

  it("still asks members in cool-down when every member is down", async () => {
    const { g, members } = setup(["network", "network"]);
    await expect(g.exchange(query(), signal())).rejects.toThrow(UpstreamError);
    expect(g.health().every((m) => !m.healthy)).toBe(true);
    members[1].behaviour = "ok";
    expect(answeredBy((await g.exchange(query(), signal())).wire)).toBe(2);
    expect(members.map((m) => m.calls)).toEqual([2, 2]);
  });
});

describe("RaceGroup cancellation and lifetime", () => {
  it("aborts every attempt with the caller's reason and blames no member", async () => {
    const { g, members, events } = setup(["wait", "wait", "wait"]);
    const controller = new AbortController();
    const pending = g.exchange(query(), controller.signal);
    await settle();
    const reason = new Error("client went away");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(members[0].signals[0].reason).toBe(reason);
    expect(members[1].signals[0].reason).toBe(reason);
    expect(members[2].calls).toBe(0);
    await settle();
    expect(events).toEqual([]);
    expect(g.health().every((m) => m.healthy)).toBe(true);
  });

  it("rejects without asking anyone when the signal is already aborted", async () => {
    const { g, members } = setup(["ok", "ok"]);
    const controller = new AbortController();
    controller.abort(new Error("already"));
    await expect(g.exchange(query(), controller.signal)).rejects.toThrow("already");
    expect(members.map((m) => m.calls)).toEqual([0, 0]);
  });

  it("closes every member when closed and rejects queries after", async () => {
    const { g, members } = setup(["ok", "ok"]);
    await g.close();
    expect(members.map((m) => m.closed)).toEqual([true, true]);
    const error = await g.exchange(query(), signal()).catch((e) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.kind).toBe("unavailable");
    expect(members.map((m) => m.calls)).toEqual([0, 0]);
  });

  it("is named after its members", () => {
    expect(setup(["ok", "ok"]).g.name).toBe("race(a, b)");
  });

  const bad: { name: string; options: Partial<RaceGroupOptions> }[] = [
    { name: "no members", options: { members: [] } },
    { name: "fanout 0", options: { fanout: 0 } },
    { name: "a fractional fanout", options: { fanout: 1.5 } },
  ];
  for (const c of bad) {
    it(`refuses to be built with ${c.name}`, () => {
      expect(() => setup(["ok"], c.options)).toThrow(RangeError);
    });
  }
});
