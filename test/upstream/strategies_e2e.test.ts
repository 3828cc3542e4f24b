/**
 * The fastest and race groups over real DoH upstreams: local HTTPS servers on loopback, one of
 * them slowed down per request, reached through the node:http2 transport.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { createH2Transport } from "../../src/deno/h2_transport.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { DohUpstream } from "../../src/upstream/doh.ts";
import { FastestGroup } from "../../src/upstream/fastest.ts";
import { RaceGroup } from "../../src/upstream/race.ts";
import { type Upstream, UpstreamError } from "../../src/upstream/types.ts";
import { decodePacket, makeQuery } from "../dns/fixtures.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { answerFromZone, octetFor } from "../support/zone.ts";

/** A local DoH server that waits `delayMs` before every answer. */
interface DelayedDoh {
  readonly url: string;
  /** Requests received. */
  requests: number;
  /** Requests whose client went away before the answer (HTTP/2 stream reset). */
  cancelled: number;
  close(): Promise<void>;
}

function startDelayedDoh(pki: TestPki, delayMs: number): DelayedDoh {
  const wakers = new Set<() => void>();
  const state = { requests: 0, cancelled: 0 };
  const server = Deno.serve(
    {
      hostname: "127.0.0.1",
      port: 0,
      cert: pki.server.chainPem,
      key: pki.server.keyPem,
      onListen: () => {},
    },
    async (req) => {
      if (new URL(req.url).pathname !== "/dns-query" || req.method !== "POST") {
        return new Response("not found", { status: 404 });
      }
      const query = new Uint8Array(await req.arrayBuffer());
      state.requests++;
      let cancelled = false;
      if (delayMs > 0) {
        await new Promise<void>((resolve) => {
          const onAbort = () => {
            cancelled = true;
            state.cancelled++;
            wake();
          };
          const wake = () => {
            clearTimeout(timer);
            wakers.delete(wake);
            req.signal.removeEventListener("abort", onAbort);
            resolve();
          };
          const timer = setTimeout(wake, delayMs);
          wakers.add(wake);
          req.signal.addEventListener("abort", onAbort, { once: true });
        });
      }
      if (cancelled) return new Response(null, { status: 499 });
      return new Response(answerFromZone(query).slice(), {
        headers: { "content-type": "application/dns-message" },
      });
    },
  );
  const port = (server.addr as Deno.NetAddr).port;
  return {
    url: `https://localhost:${port}/dns-query`,
    get requests() {
      return state.requests;
    },
    get cancelled() {
      return state.cancelled;
    },
    async close() {
      for (const wake of [...wakers]) wake();
      await server.shutdown();
    },
  };
}

/** A URL where nothing listens: a port that was just free. */
function deadUrl(): string {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return `https://localhost:${port}/dns-query`;
}

function query(i: number): { query: Query; name: string } {
  const name = `q${i}.strategies.example.test`;
  const c = classifyQuery(makeQuery({ id: 0x1000 + i, name }));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return { query: c.query, name };
}

/** Asks `upstream` query `i` and checks the answer is the zone's, with the query's ID. */
async function ask(upstream: Upstream, i: number): Promise<void> {
  const q = query(i);
  const answer = decodePacket((await upstream.exchange(q.query, AbortSignal.timeout(10_000))).wire);
  expect(answer.id).toBe(0x1000 + i);
  const a = answer.answers?.[0];
  expect(a?.type === "A" ? a.data : undefined).toBe(`192.0.2.${octetFor(q.name)}`);
}

let pki: TestPki;
let h2: ReturnType<typeof createH2Transport>;
const servers: DelayedDoh[] = [];
const groups: Upstream[] = [];

function server(delayMs: number): DelayedDoh {
  const s = startDelayedDoh(pki, delayMs);
  servers.push(s);
  return s;
}

function doh(url: string): DohUpstream {
  return new DohUpstream({ url, transport: h2.transport });
}

/** Sends one query straight to each member, so connection set-up is not what gets measured. */
async function warm(members: DohUpstream[]): Promise<void> {
  await Promise.all(members.map((m, i) => ask(m, 900 + i)));
}

beforeAll(async () => {
  pki = await testPki();
});

afterEach(async () => {
  await Promise.all(groups.splice(0).map((g) => g.close()));
  h2?.close();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("fastest over real DoH upstreams", () => {
  it("ends up sending most queries to the fast upstream", async () => {
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
    const slow = server(100);
    const fast = server(0);
    const members = [doh(slow.url), doh(fast.url)];
    await warm(members);
    const before = { slow: slow.requests, fast: fast.requests };
    const group = new FastestGroup({ members });
    groups.push(group);

    for (let i = 0; i < 100; i++) await ask(group, i);

    const sent = { slow: slow.requests - before.slow, fast: fast.requests - before.fast };
    expect(sent.slow + sent.fast).toBe(100);
    expect(sent.slow).toBeGreaterThanOrEqual(1); // measured, and explored now and then
    expect(sent.fast).toBeGreaterThanOrEqual(80); // about 95 expected with 1 in 20 exploring
    const [s, f] = group.stats();
    expect(s.ewmaMs).toBeGreaterThan(f.ewmaMs!);
    expect(s.ewmaMs).toBeGreaterThanOrEqual(100);
  });

  it("skips a dead upstream after its first failure, within the same query", async () => {
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
    const fast = server(0);
    const events: string[] = [];
    const group = new FastestGroup({
      members: [doh(deadUrl()), doh(fast.url)],
      onHealthChange: (name, healthy) => events.push(`${new URL(name).port}:${healthy}`),
    });
    groups.push(group);

    for (let i = 0; i < 10; i++) await ask(group, i);

    expect(fast.requests).toBe(10);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatch(/:false$/);
    expect(group.stats().map((s) => s.healthy)).toEqual([false, true]);
  });

  it("fails with an UpstreamError when every upstream is dead", async () => {
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
    const group = new FastestGroup({ members: [doh(deadUrl()), doh(deadUrl())] });
    groups.push(group);
    const error = await group.exchange(query(1).query, AbortSignal.timeout(10_000)).catch((e) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error.kind).toBe("network");
  });
});

describe("race over real DoH upstreams", () => {
  it("answers at the fast upstream's pace while both receive the query", async () => {
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
    const slow = server(20_000);
    const fast = server(0);
    const group = new RaceGroup({ members: [doh(slow.url), doh(fast.url)] });
    groups.push(group);

    const started = performance.now();
    for (let i = 0; i < 5; i++) await ask(group, i);
    // Far below one slow answer: nobody waited for the slow upstream.
    expect(performance.now() - started).toBeLessThan(10_000);

    expect(fast.requests).toBe(5);
    expect(slow.requests).toBe(5);
    // The losing requests were cancelled (HTTP/2 stream reset), not left to run 20 s.
    const deadline = performance.now() + 5_000;
    while (slow.cancelled < 5 && performance.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(slow.cancelled).toBe(5);
  });

  it("answers through the live upstream when the other is dead", async () => {
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
    const fast = server(0);
    const events: boolean[] = [];
    const group = new RaceGroup({
      members: [doh(deadUrl()), doh(fast.url)],
      onHealthChange: (_name, healthy) => events.push(healthy),
    });
    groups.push(group);

    for (let i = 0; i < 10; i++) await ask(group, i);

    expect(fast.requests).toBe(10);
    expect(events).toEqual([false]);
    expect(group.health().map((h) => h.healthy)).toEqual([false, true]);
  });

  it("skips a dead upstream with a fanout of one, answering every query", async () => {
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
    const a = server(0);
    const b = server(0);
    const group = new RaceGroup({ members: [doh(deadUrl()), doh(a.url), doh(b.url)], fanout: 1 });
    groups.push(group);

    for (let i = 0; i < 12; i++) await ask(group, i);

    expect(a.requests + b.requests).toBe(12);
    expect(a.requests).toBeGreaterThan(0);
    expect(b.requests).toBeGreaterThan(0);
  });
});
