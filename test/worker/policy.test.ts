/**
 * The Worker runs the same resolver as the Deno edge (`buildResolver`), in workerd through
 * `wrangler dev --local`: the cache (Workers Cache API) with TTLs counted down, tenants by DoH
 * path, local records from a variable, and the per-isolate rate limit.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { aRecords, buildQuery, edeCode, idOf, rcodeOf } from "../support/dot_client.ts";
import {
  type PlainDohUpstream,
  startPlainDohUpstream,
  startWorkerDev,
  type WorkerDev,
} from "../support/worker.ts";
import { octetFor } from "../support/zone.ts";

const DNS_MESSAGE = "application/dns-message";
const STARTUP_MS = 60_000;

let doh: PlainDohUpstream;
let dev: WorkerDev | undefined;

beforeAll(async () => {
  doh = startPlainDohUpstream();
  dev = await startWorkerDev({
    startupMs: STARTUP_MS,
    vars: {
      DOTBRIDGE_UPSTREAM: doh.url,
      DOTBRIDGE_TENANTS_JSON: JSON.stringify({ tenants: { kids: { upstream: [doh.url] } } }),
      DOTBRIDGE_LOCAL_RECORDS_TEXT: "10.0.0.2 nas.home.arpa",
      // Per isolate; the flood at the end is well past it, the other tests well under it.
      DOTBRIDGE_RATE_LIMIT: "1",
      DOTBRIDGE_RATE_LIMIT_BURST: "30",
    },
  });
}, STARTUP_MS + 30_000);

afterAll(async () => {
  await dev?.stop();
  await doh?.close();
}, 30_000);

async function post(query: Uint8Array, path = "/dns-query"): Promise<Uint8Array> {
  if (!dev) throw new Error("the Worker did not start");
  const response = await fetch(`${dev.url}${path}`, {
    method: "POST",
    headers: { "content-type": DNS_MESSAGE, accept: DNS_MESSAGE },
    body: query.slice(),
  });
  expect(response.status).toBe(200);
  return new Uint8Array(await response.arrayBuffer());
}

function ttlOf(wire: Uint8Array): number {
  const answer = dnsPacket.decode(Buffer.from(wire)).answers?.[0] as { ttl?: number } | undefined;
  return answer?.ttl ?? -1;
}

describe("the Worker's resolver in workerd (wrangler dev)", () => {
  it("answers a repeated question from the cache, TTL counted down, without the upstream", async () => {
    const first = await post(buildQuery("cached.example.test", { id: 1 }));
    expect(ttlOf(first)).toBe(300);
    const asked = doh.requests.length;
    await new Promise((r) => setTimeout(r, 1_100));
    const second = await post(buildQuery("cached.example.test", { id: 2 }));
    expect(doh.requests.length).toBe(asked);
    expect(idOf(second)).toBe(2);
    expect(aRecords(second)).toEqual([`192.0.2.${octetFor("cached.example.test")}`]);
    expect(ttlOf(second)).toBeLessThan(300);
    expect(ttlOf(second)).toBeGreaterThan(290);
    await dev!.waitForOutput(/worker configured.*cache=workers-cache/); // caches.default
  });

  it("refuses an unknown tenant path with EDE 18, and answers a known one", async () => {
    const asked = doh.requests.length;
    const refused = await post(
      buildQuery("t.example.test", { id: 3, edns: true }),
      "/dns-query/nobody",
    );
    expect(rcodeOf(refused)).toBe(5); // REFUSED
    expect(edeCode(refused)).toBe(18); // Prohibited
    expect(doh.requests.length).toBe(asked);
    const kids = await post(buildQuery("kids.example.test", { id: 4 }), "/dns-query/kids");
    expect(rcodeOf(kids)).toBe(0);
    expect(aRecords(kids)).toEqual([`192.0.2.${octetFor("kids.example.test")}`]);
  });

  it("answers local records without asking the upstream", async () => {
    const asked = doh.requests.length;
    const answer = await post(buildQuery("nas.home.arpa", { id: 5 }));
    expect(rcodeOf(answer)).toBe(0);
    expect(aRecords(answer)).toEqual(["10.0.0.2"]);
    expect(doh.requests.length).toBe(asked);
  });

  it("refuses a flood past the rate limit", async () => {
    const rcodes: number[] = [];
    for (let i = 0; i < 60; i++) {
      rcodes.push(rcodeOf(await post(buildQuery("nas.home.arpa", { id: 100 + i }))));
    }
    expect(rcodes.filter((r) => r === 5).length).toBeGreaterThan(20);
    expect(rcodes.filter((r) => r === 0).length).toBeGreaterThan(0);
  });
});
