/**
 * What the cache holds, bounded (issue #19, finding 7 and the client-subnet note), against a real
 * redis-server and running bridges:
 *
 * - an answer larger than `--cache-max-entry-bytes` is served but not written to Redis, nor kept
 *   in memory;
 * - the memory cache holds no more than `--cache-max-bytes`: past it the least recently used
 *   answers go (and are asked upstream again), the recently used stay;
 * - with `--keep-client-subnet`, answers for different client subnets are kept apart (the subnet
 *   is in the key, in memory and in Redis).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildQuery,
  type EdnsOptionInput,
  Opt,
  type QueryOptions,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { HAVE_REDIS, requireRedis, startRedis, type TestRedis } from "../support/redis_server.ts";

describe.skipIf(!HAVE_REDIS && Deno.env.get("CI") !== "true")("cache bounds", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let redis: TestRedis;
  const bridges: TestBridge[] = [];
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

  async function bridge(args: string[], withRedis = true): Promise<TestBridge> {
    const shared = withRedis ? ["--cache-redis", redis.url, "--cache-redis-budget", "1s"] : [];
    const b = await startTestBridge(pki, upstream, [...shared, ...args]);
    bridges.push(b);
    if (withRedis) await until(() => metric(b, "dotbridge_cache_redis_up") === 1);
    return b;
  }

  async function ask(b: TestBridge, name: string, options: QueryOptions = {}) {
    const c = await b.connect();
    try {
      const id = nextId++ & 0xffff;
      await c.send(buildQuery(name, { ...options, id }));
      return await c.waitFor(id);
    } finally {
      c.close();
    }
  }

  /** How often the upstream was asked `name`. */
  const asked = (name: string) => upstream.requests.filter((r) => r.name === name).length;

  /** The keys in Redis ending in `name`. */
  async function keysFor(name: string): Promise<string[]> {
    const reply = new TextDecoder().decode(await redis.command("KEYS", `*${name}`));
    return reply.split("\r\n").filter((l) => l.startsWith("dotbridge:"));
  }

  beforeAll(async () => {
    requireRedis();
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    redis = await startRedis();
  });

  afterAll(async () => {
    for (const b of bridges) await b.close();
    await upstream?.close();
    await redis?.kill();
  });

  it("does not write an answer over --cache-max-entry-bytes to Redis, nor keep it", async () => {
    const b = await bridge(["--cache-max-entry-bytes", "16384"]);
    const small = "big-10000-cap.example.test";
    const large = "big-30000-cap.example.test";
    for (const name of [small, large]) {
      const answer = await ask(b, name, { type: "TXT" });
      expect(rcodeOf(answer)).toBe(0);
    }
    await until(async () => (await keysFor(small)).length === 1);
    await new Promise((r) => setTimeout(r, 200)); // the large one's write would be as quick
    expect(await keysFor(large)).toEqual([]);
    // Asked again: the small one from memory, the large one upstream again.
    const answer = await ask(b, large, { type: "TXT" });
    expect(answer.length).toBeGreaterThan(30_000);
    await ask(b, small, { type: "TXT" });
    expect([asked(small), asked(large)]).toEqual([1, 2]);
  });

  it("does not write one by default (16 KiB) either: 60 KB answers are served, not kept", async () => {
    const b = await bridge(["--cache-size", "1000"]);
    const name = "big-60000-default.example.test";
    expect((await ask(b, name, { type: "TXT" })).length).toBeGreaterThan(60_000);
    expect((await ask(b, name, { type: "TXT" })).length).toBeGreaterThan(60_000);
    expect(asked(name)).toBe(2);
    expect(await keysFor(name)).toEqual([]);
  });

  it("keeps the memory cache within --cache-max-bytes, the least recently used going first", async () => {
    // 128 KiB holds four answers of ~30 KB (each costs its bytes, its key and ~0.7 KiB).
    const b = await bridge(
      ["--cache-max-bytes", "131072", "--cache-max-entry-bytes", "65535"],
      false,
    );
    const names = [1, 2, 3, 4, 5, 6].map((i) => `big-30000-budget${i}.example.test`);
    for (const name of names.slice(0, 4)) await ask(b, name, { type: "TXT" });
    await ask(b, names[0], { type: "TXT" }); // a hit: used since
    expect(names.slice(0, 4).map(asked)).toEqual([1, 1, 1, 1]);
    for (const name of names.slice(4)) await ask(b, name, { type: "TXT" });
    // Two had to go: the oldest not used since (2 and 3); 1 was read, 5 and 6 are newest.
    for (const name of [names[0], names[3], names[4], names[5]]) {
      await ask(b, name, { type: "TXT" });
    }
    expect(names.map(asked)).toEqual([1, 1, 1, 1, 1, 1]);
    await ask(b, names[1], { type: "TXT" });
    expect(asked(names[1])).toBe(2);
  });

  it("with --keep-client-subnet, keeps each client subnet's answer apart", async () => {
    const b = await bridge(["--keep-client-subnet"]);
    const name = "ecs-kept.example.test";
    const subnet = (c: number): QueryOptions => ({
      options: [Opt.clientSubnet(10, 0, c) satisfies EdnsOptionInput],
    });
    expect(rcodeOf(await ask(b, name, subnet(1)))).toBe(0);
    expect(rcodeOf(await ask(b, name, subnet(2)))).toBe(0);
    expect(asked(name)).toBe(2);
    expect(upstream.requests.filter((r) => r.name === name).every((r) => r.ecs)).toBe(true);
    await ask(b, name, subnet(1));
    await ask(b, name, subnet(2));
    expect(asked(name)).toBe(2);
    await until(async () => (await keysFor(name)).length === 2);
    expect((await keysFor(name)).sort()).toEqual([
      `dotbridge:v2::1:1:0:1/24/0a0001:${name}`,
      `dotbridge:v2::1:1:0:1/24/0a0002:${name}`,
    ]);
  });
});
