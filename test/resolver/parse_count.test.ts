/**
 * How many times one bridged query's messages are walked, on a cache miss and on a cache hit:
 * full parses (`parseMessage`) of the query and of the answer, and the other whole-message walks
 * of an answer (TTL ageing, the smallest-TTL scan). The pipeline is the one the Deno edge builds:
 * face processor, built resolver with the cache on, DoH upstream (its transport faked).
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

describe("walks per bridged query", () => {
  beforeEach(reset);

  it("walks the answer once after validation on a miss and once on a hit", async () => {
    const { process, calls, resolver } = bridge();
    const wire = makeQuery({ name: "walks.example.test", id: 7, opt: {} });
    const ctx = { face: "dot" as const, signal: new AbortController().signal };

    reset();
    const miss = await process(wire, ctx);
    const onMiss = { ...counts };
    expect(miss).not.toBeNull();
    expect(calls()).toBe(1);

    await new Promise((r) => setTimeout(r, 1_100)); // so the hit has TTLs to count down
    reset();
    const hit = await process(wire, ctx);
    const onHit = { ...counts };
    expect(hit).not.toBeNull();
    expect(calls()).toBe(1);
    // Before the Answer type: a miss parsed the query twice and walked the answer three times
    // (validation, the TTL scan, the face's shaping); a hit walked it twice (ageing, shaping).
    expect(onMiss).toEqual({ queryParses: 1, answerParses: 1, ageWalks: 0, ttlWalks: 1 });
    expect(onHit).toEqual({ queryParses: 1, answerParses: 0, ageWalks: 1, ttlWalks: 0 });
    await resolver.close();
  });
});
