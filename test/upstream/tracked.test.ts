/**
 * A lone upstream's health (`TrackedUpstream`): down after a failure, up again on the next
 * answer or when a background probe finds it back; the wrapped upstream's answers, errors and
 * name pass through unchanged, and a client's abort is not a failure.
 *
 * @module
 */
import { describe, expect, it } from "vitest";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { TrackedUpstream } from "../../src/upstream/tracked.ts";
import { type Upstream, UpstreamError } from "../../src/upstream/types.ts";
import { makeQuery } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";

class Switchable implements Upstream {
  readonly name = "https://one.test";
  failing = false;
  probes = 0;
  exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (query.question.name === "") this.probes++;
    if (signal.aborted) return Promise.reject(signal.reason);
    if (this.failing) return Promise.reject(new UpstreamError(this.name, "network", "refused"));
    return Promise.resolve(answerOf(answerFromZone(query.wire)));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function query(): Query {
  const c = classifyQuery(makeQuery({ name: "a.example.test" }));
  if (c.kind !== "query") throw new Error("not a query");
  return c.query;
}

describe("TrackedUpstream", () => {
  it("is down after a failure and up again after an answer, passing both through", async () => {
    const inner = new Switchable();
    const changes: [string, boolean][] = [];
    const tracked = new TrackedUpstream({
      upstream: inner,
      cooldownMs: 60_000,
      onHealthChange: (name, healthy) => changes.push([name, healthy]),
    });
    const signal = new AbortController().signal;
    expect(tracked.name).toBe(inner.name);
    expect(tracked.health()).toEqual([{ name: inner.name, healthy: true }]);
    inner.failing = true;
    await expect(tracked.exchange(query(), signal)).rejects.toThrow(UpstreamError);
    expect(tracked.health()[0].healthy).toBe(false);
    inner.failing = false;
    const answer = await tracked.exchange(query(), signal);
    expect(answer.info.question?.name).toBe("a.example.test");
    expect(tracked.health()[0].healthy).toBe(true);
    expect(changes).toEqual([[inner.name, false], [inner.name, true]]);
    await tracked.close();
  });

  it("does not count a client's abort as a failure", async () => {
    const tracked = new TrackedUpstream({ upstream: new Switchable(), cooldownMs: 60_000 });
    const gone = new AbortController();
    gone.abort(new Error("client left"));
    await expect(tracked.exchange(query(), gone.signal)).rejects.toThrow("client left");
    expect(tracked.health()[0].healthy).toBe(true);
    await tracked.close();
  });

  it("probes a down upstream in the background until it answers", async () => {
    const inner = new Switchable();
    const tracked = new TrackedUpstream({
      upstream: inner,
      cooldownMs: 60_000,
      probeIntervalMs: 20,
    });
    inner.failing = true;
    await expect(tracked.exchange(query(), new AbortController().signal)).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 70));
    expect(inner.probes).toBeGreaterThan(0);
    expect(tracked.health()[0].healthy).toBe(false);
    inner.failing = false;
    const end = Date.now() + 2_000;
    while (!tracked.health()[0].healthy && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(tracked.health()[0].healthy).toBe(true);
    await tracked.close();
  });
});
