/**
 * Two bridges (each with its own memory cache) sharing one real redis-server: an answer fetched
 * through one is served by the other with the upstream stopped; Redis killed while queries run
 * costs no SERVFAIL and sharing resumes when it returns; a stalled Redis (SIGSTOP) does not hold
 * answers back by much more than the budget.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aRecords,
  buildQuery,
  type DotClient,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { HAVE_REDIS, requireRedis, startRedis, type TestRedis } from "../support/redis_server.ts";
import { octetFor } from "../support/zone.ts";

const SERVFAIL = 2;

describe.skipIf(!HAVE_REDIS && Deno.env.get("CI") !== "true")("bridges sharing Redis", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let redis: TestRedis;
  let a: TestBridge;
  let b: TestBridge;
  let ca: DotClient;
  let cb: DotClient;
  let nextId = 1;

  async function until(check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error("condition not met in time");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  function metric(bridge: TestBridge, line: string): number | undefined {
    const text = bridge.bridge.metrics.registry.render();
    const hit = text.split("\n").find((l) => l.startsWith(line + " "));
    return hit === undefined ? undefined : Number(hit.slice(line.length + 1));
  }

  async function ask(c: DotClient, name: string): Promise<Uint8Array> {
    const id = nextId++ & 0xffff;
    await c.send(buildQuery(name, { id }));
    return await c.waitFor(id);
  }

  /** True once `name`'s answer is in Redis (the write is not awaited on the answer path). */
  async function inRedis(name: string): Promise<boolean> {
    const reply = new TextDecoder().decode(
      await redis.command("EXISTS", `dotbridge:v2::1:1:0::${name}`),
    );
    return reply.startsWith(":1");
  }

  beforeAll(async () => {
    requireRedis();
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    redis = await startRedis();
    // A generous budget for the sharing tests (they run beside others on a loaded machine); the
    // stalled-Redis test starts its own bridge with a small one.
    const args = ["--cache-redis", redis.url, "--cache-redis-budget", "1s"];
    a = await startTestBridge(pki, upstream, args);
    b = await startTestBridge(pki, upstream, args);
    await until(() =>
      metric(a, "dotbridge_cache_redis_up") === 1 && metric(b, "dotbridge_cache_redis_up") === 1
    );
    ca = await a.connect();
    cb = await b.connect();
  });

  afterAll(async () => {
    ca?.close();
    cb?.close();
    await a?.close();
    await b?.close();
    await upstream?.close();
    await redis?.kill();
  });

  it("serves an answer fetched through one bridge from the other, the upstream stopped", async () => {
    const name = "fleet-shared.example.test";
    const first = await ask(ca, name);
    expect(rcodeOf(first)).toBe(0);
    await until(() => inRedis(name));
    const port = upstream.port;
    await upstream.close();
    try {
      const second = await ask(cb, name);
      expect(rcodeOf(second)).toBe(0);
      expect(aRecords(second)).toEqual([`192.0.2.${octetFor(name)}`]);
      // And a name nobody fetched fails there, so the answer above did come from Redis.
      expect(rcodeOf(await ask(cb, "fleet-unfetched.example.test"))).toBe(SERVFAIL);
    } finally {
      upstream = await startDohUpstream(pki, "/dns-query", { port });
    }
  });

  it("keeps answering (no SERVFAIL) while Redis is killed and back, then shares again", async () => {
    const rcodes: number[] = [];
    let stop = false;
    const load = (async () => {
      for (let i = 0; !stop; i++) {
        // A mix of repeated names (memory hits) and new ones (Redis lookups and writes).
        const name = i % 3 === 0
          ? `outage-new-${i}.example.test`
          : `outage-hot-${i % 7}.example.test`;
        const ids = [nextId++ & 0xffff, nextId++ & 0xffff];
        await ca.send(buildQuery(name, { id: ids[0] }), buildQuery(name, { id: ids[1] }));
        for (const id of ids) rcodes.push(rcodeOf(await ca.waitFor(id)));
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    await redis.kill();
    await until(() => metric(a, "dotbridge_cache_redis_up") === 0);
    await new Promise((r) => setTimeout(r, 500));
    await redis.restart();
    await until(() =>
      metric(a, "dotbridge_cache_redis_up") === 1 && metric(b, "dotbridge_cache_redis_up") === 1
    );
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await load;
    expect(rcodes.length).toBeGreaterThan(50);
    expect(rcodes.filter((r) => r === SERVFAIL)).toEqual([]);
    expect(new Set(rcodes)).toEqual(new Set([0]));
    // One line each way in the log, not one per query.
    expect(a.logs.filter((l) => l.includes("cache redis down"))).toHaveLength(1);
    expect(a.logs.filter((l) => l.includes("cache redis up")).length).toBe(2); // start, return
    // Sharing resumes: fetched through b after the restart, served by a without the upstream.
    const name = "after-outage.example.test";
    await ask(cb, name);
    await until(() => inRedis(name));
    const asked = upstream.requests.filter((r) => r.name === name).length;
    expect(rcodeOf(await ask(ca, name))).toBe(0);
    expect(upstream.requests.filter((r) => r.name === name).length).toBe(asked);
  });

  it("does not hold answers back on a stalled Redis much past the budget", async () => {
    const c = await startTestBridge(pki, upstream, [
      "--cache-redis",
      redis.url,
      "--cache-redis-budget",
      "100ms",
    ]);
    await until(() => metric(c, "dotbridge_cache_redis_up") === 1);
    const client = await c.connect();
    redis.pause();
    const times: number[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const t0 = performance.now();
        const answer = await ask(client, `stalled-${i}.example.test`);
        times.push(performance.now() - t0);
        expect(rcodeOf(answer)).toBe(0);
        expect(idOf(answer)).toBeGreaterThan(0);
      }
    } finally {
      redis.resume();
      client.close();
      await c.close();
    }
    // Budget 100 ms plus the upstream round trip; generous for a loaded CI machine. Without the
    // budget each answer would wait for SIGCONT (never, within this loop).
    expect(Math.max(...times)).toBeLessThan(600);
    expect(metric(c, 'dotbridge_cache_redis_trouble_total{kind="timeout"}')).toBeGreaterThanOrEqual(
      10,
    );
  });
});
