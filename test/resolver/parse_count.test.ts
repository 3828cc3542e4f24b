/**
 * How many times one bridged query's messages are walked, on a cache miss and on a cache hit:
 * full parses (`parseMessage`) of the query and of the answer, and the other whole-message walks
 * of an answer (TTL ageing, the smallest-TTL scan). The pipeline is the one the Deno edge builds:
 * face processor, built resolver with the cache on, DoH upstream (its transport faked); then the
 * DoH face's handler and the JSON API on top of it.
 *
 * @module
 */
import { beforeEach, describe, expect, it, vi } from "vitest";
import { Flag } from "../../src/dns/constants.ts";
import { makeQuery } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";

const counts = { queryParses: 0, answerParses: 0, ageWalks: 0, ttlWalks: 0 };

vi.mock("../../src/dns/message.ts", async (importOriginal) => {
  const mod = await importOriginal<typeof import("../../src/dns/message.ts")>();
  return {
    ...mod,
    parseMessage: (wire: Uint8Array) => {
      if (wire.length >= 4 && wire[2] & (Flag.QR >> 8)) counts.answerParses++;
      else counts.queryParses++;
      return mod.parseMessage(wire);
    },
  };
});
vi.mock("../../src/dns/ttl.ts", async (importOriginal) => {
  const mod = await importOriginal<typeof import("../../src/dns/ttl.ts")>();
  return {
    ...mod,
    ageTtls: (wire: Uint8Array, seconds: number, floor = 0) => {
      if (seconds > 0 || floor > 0) counts.ageWalks++;
      return mod.ageTtls(wire, seconds, floor);
    },
    minAnswerTtl: (wire: Uint8Array) => {
      counts.ttlWalks++;
      return mod.minAnswerTtl(wire);
    },
  };
});

const { buildResolver, upstreamsFrom } = await import("../../src/resolver/build.ts");
const { createProcessor } = await import("../../src/resolver/processor.ts");
const { parseConfig } = await import("../../src/config/parse.ts");
const { createDohApp } = await import("../../src/http/app.ts");
const { dohFaceHandler } = await import("../../src/http/face.ts");

function bridge() {
  const result = parseConfig({ args: ["--upstream", "https://dns.test/dns-query"], env: {} });
  if (result.help) throw new Error("help");
  let upstreamCalls = 0;
  const transport = (request: { body?: Uint8Array }) => {
    upstreamCalls++;
    return Promise.resolve({
      status: 200,
      contentType: "application/dns-message",
      body: new Uint8Array(answerFromZone(request.body!)),
    });
  };
  const resolver = buildResolver(result.config, {
    upstreamFor: upstreamsFrom({
      doh: () => transport,
      dot: () => () => Promise.reject(new Error("no DoT")),
    }),
  });
  const process = createProcessor({ handler: resolver.handler, keepaliveMs: 10_000 });
  return { process, calls: () => upstreamCalls, resolver };
}

function reset() {
  counts.queryParses = 0;
  counts.answerParses = 0;
  counts.ageWalks = 0;
  counts.ttlWalks = 0;
}

/** Runs `ask` once on a miss and, a second later (TTLs to count down), once on a hit. */
async function missThenHit(calls: () => number, ask: () => Promise<unknown>) {
  reset();
  await ask();
  const onMiss = { ...counts };
  expect(calls()).toBe(1);
  await new Promise((r) => setTimeout(r, 1_100));
  reset();
  await ask();
  const onHit = { ...counts };
  expect(calls()).toBe(1);
  return { onMiss, onHit };
}

// Before the Answer type: a miss parsed the query twice and walked the answer three times
// (validation, the TTL scan, the face's shaping); a hit walked it twice (ageing, shaping).
// Before the answer's parse reached the face: the cache's TTL scan on a miss, and the DoH face's
// and the JSON API's own (Cache-Control) on a miss and on a hit, one walk each.
const MISS = { queryParses: 1, answerParses: 1, ageWalks: 0, ttlWalks: 0 };
const HIT = { queryParses: 1, answerParses: 0, ageWalks: 1, ttlWalks: 0 };

describe("walks per bridged query", () => {
  beforeEach(reset);

  it("walks the answer once (validation) on a miss and once (ageing) on a hit", async () => {
    const { process, calls, resolver } = bridge();
    const wire = makeQuery({ name: "walks.example.test", id: 7, opt: {} });
    const ctx = { face: "dot" as const, signal: new AbortController().signal };
    const { onMiss, onHit } = await missThenHit(calls, async () => {
      expect(await process(wire, ctx)).not.toBeNull();
    });
    expect(onMiss).toEqual(MISS);
    expect(onHit).toEqual(HIT);
    await resolver.close();
  });

  it("adds no walk at the DoH face: Cache-Control comes with the answer", async () => {
    const { process, calls, resolver } = bridge();
    const handle = dohFaceHandler({
      app: createDohApp({ process }),
      fast: { process, path: "/dns-query" },
    });
    const wire = makeQuery({ name: "face.example.test", id: 0, opt: {} });
    const path = `/dns-query?dns=${wire.toBase64({ alphabet: "base64url", omitPadding: true })}`;
    const replies: string[] = [];
    const { onMiss, onHit } = await missThenHit(calls, async () => {
      const reply = await handle({
        method: "GET",
        path,
        authority: "dns.example",
        headers: [],
        body: undefined,
        signal: new AbortController().signal,
      }, "192.0.2.1");
      expect(reply.status).toBe(200);
      replies.push(reply.headers.find(([n]) => n === "cache-control")![1]);
    });
    expect(onMiss).toEqual(MISS);
    expect(onHit).toEqual(HIT);
    expect(replies[0]).toMatch(/^max-age=\d+$/);
    expect(replies[1]).not.toBe(replies[0]); // counted down a second
    await resolver.close();
  });

  it("adds no walk of the header or TTLs at the JSON API", async () => {
    const { process, calls, resolver } = bridge();
    const app = createDohApp({ process });
    const { onMiss, onHit } = await missThenHit(calls, async () => {
      const response = await app.request("/dns-query?name=json.example.test&type=A");
      expect(response.status).toBe(200);
      expect(response.headers.get("cache-control")).toMatch(/^max-age=\d+$/);
      expect((await response.json()).Status).toBe(0);
    });
    expect(onMiss).toEqual(MISS);
    expect(onHit).toEqual(HIT);
    await resolver.close();
  });
});
