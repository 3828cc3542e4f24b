/**
 * What a bridge takes from a shared Redis that someone else can write to (issue #19, finding 4),
 * against a real redis-server and running bridges, with the upstream failing so that anything
 * answered came from the cache:
 *
 * - with `--cache-redis-secret`, a planted unsigned entry, or one signed with another secret, is
 *   not served, and one a peer signed with the same secret is;
 * - a planted entry with a 68-year TTL and expiry is served with its TTL capped to
 *   `--cache-max-ttl`, and no longer from the bridge's memory once that has passed (after
 *   FLUSHALL);
 * - a real entry copied under another tenant's key, or the key of the other DO bit, is not served;
 * - the Redis ACL user of docs/configuration.md#what-a-bridge-takes-from-redis (its keys,
 *   `GETRANGE`, `SET`, `DEL`) is all the bridges need.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Buffer } from "node:buffer";
import { encodeEntry } from "../../src/cache/redis.ts";
import { cacheKey } from "../../src/cache/store.ts";
import { classifyQuery } from "../../src/dns/query.ts";
import {
  buildQuery,
  decode,
  type QueryOptions,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { HAVE_REDIS, requireRedis, startRedis, type TestRedis } from "../support/redis_server.ts";
import { answerFromZone } from "../support/zone.ts";

const SERVFAIL = 2;
const SECRET = "one secret the fleet shares, 32 bytes or more";
const TENANT_OPTION = 65011;

/** The key a bridge uses for `name` asked with `options` (by `tenant`). */
function keyOf(name: string, options: QueryOptions = {}, tenant = ""): string {
  const c = classifyQuery(buildQuery(name, options));
  if (c.kind !== "query") throw new Error("not a query");
  return cacheKey(c.query, tenant);
}

/** The bytes of a RESP bulk-string reply (`$N\r\n...\r\n`), or undefined for a nil one. */
function bulk(reply: Uint8Array): Uint8Array | undefined {
  const head = new TextDecoder().decode(reply.subarray(0, 12));
  const m = /^\$(-?\d+)\r\n/.exec(head);
  if (!m || Number(m[1]) < 0) return undefined;
  return reply.slice(m[0].length, m[0].length + Number(m[1]));
}

describe.skipIf(!HAVE_REDIS && Deno.env.get("CI") !== "true")("trust in a shared Redis", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let redis: TestRedis;
  let dir: string;
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

  /** A bridge on the test Redis, ready (connected) when it returns. */
  async function bridge(args: string[] = []): Promise<TestBridge> {
    const b = await startTestBridge(pki, upstream, [
      "--cache-redis",
      redis.url,
      // Generous: these tests are about what is served, not timing, beside others on the machine.
      "--cache-redis-budget",
      "1s",
      ...args,
    ]);
    bridges.push(b);
    await until(() => metric(b, "dotbridge_cache_redis_up") === 1);
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

  async function inRedis(key: string): Promise<boolean> {
    return new TextDecoder().decode(await redis.command("EXISTS", key)).startsWith(":1");
  }

  /** Runs `body` with the upstream answering HTTP 500, so only the cache can answer NOERROR. */
  async function upstreamDown<T>(body: () => Promise<T>): Promise<T> {
    upstream.mode = "http-500";
    try {
      return await body();
    } finally {
      upstream.mode = "ok";
    }
  }

  beforeAll(async () => {
    requireRedis();
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    redis = await startRedis();
    dir = await Deno.makeTempDir({ prefix: "dotbridge-redis-trust-" });
    await Deno.writeTextFile(
      `${dir}/tenants.json`,
      JSON.stringify({ tenants: { kids: { upstream: [upstream.url] } } }),
    );
  });

  afterAll(async () => {
    for (const b of bridges) await b.close();
    await upstream?.close();
    await redis?.kill();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("with a secret, serves no planted unsigned entry, nor one signed with another secret", async () => {
    const signing = await bridge(["--cache-redis-secret", SECRET]);
    const peer = await bridge(["--cache-redis-secret", SECRET]);
    const stranger = await bridge(["--cache-redis-secret", SECRET.toUpperCase()]);

    // Planted: the zone's own answer, unsigned, fresh for five minutes.
    const planted = "planted-unsigned.example.test";
    const key = keyOf(planted);
    const wire = answerFromZone(buildQuery(planted, { id: 0 }));
    const value = encodeEntry({ wire, storedAt: Date.now(), expiresAt: Date.now() + 300_000 }, key);
    await redis.command("SET", key, value);
    await upstreamDown(async () => {
      expect(rcodeOf(await ask(signing, planted))).toBe(SERVFAIL);
    });
    expect(metric(signing, 'dotbridge_cache_redis_trouble_total{kind="rejected"}')).toBe(1);

    // Signed by a peer with the same secret: shared. With another secret: not served.
    const shared = "signed-shared.example.test";
    expect(rcodeOf(await ask(peer, shared))).toBe(0);
    await until(() => inRedis(keyOf(shared)));
    expect(bulk(await redis.command("GET", keyOf(shared)))![1]).toBe(1); // the signed flag
    await upstreamDown(async () => {
      expect(rcodeOf(await ask(signing, shared))).toBe(0);
      expect(rcodeOf(await ask(stranger, shared))).toBe(SERVFAIL);
    });
    // No log line holds the secret.
    for (const b of [signing, peer, stranger]) {
      expect(b.logs.join("\n")).not.toContain(SECRET);
      expect(b.logs.join("\n").toLowerCase()).not.toContain(SECRET.toLowerCase());
    }
  });

  it("caps a planted 68-year TTL to --cache-max-ttl and forgets it by then after FLUSHALL", async () => {
    const b = await bridge(["--cache-max-ttl", "2s"]);
    const name = "planted-forever.example.test";
    const key = keyOf(name);
    const wire = answerFromZone(buildQuery(name, { id: 0 }));
    wire.set([0x7f, 0xff, 0xff, 0xff], wire.length - 10); // the A record's TTL: 68 years
    const years = 68 * 365 * 86_400_000;
    const now = Date.now();
    await redis.command(
      "SET",
      key,
      encodeEntry({ wire, storedAt: now, expiresAt: now + years }, key),
    );

    const served = await upstreamDown(() => ask(b, name));
    expect(rcodeOf(served)).toBe(0);
    const ttl = (decode(served).answers![0] as { ttl?: number }).ttl!;
    expect(ttl).toBeLessThanOrEqual(2);

    await redis.command("FLUSHALL");
    await new Promise((r) => setTimeout(r, 2_300));
    await upstreamDown(async () => {
      expect(rcodeOf(await ask(b, name))).toBe(SERVFAIL);
    });
  });

  it("shares entries as the documented ACL user, limited to its keys and three commands", async () => {
    const password = "a-long-random-password";
    const limited = await startRedis(undefined, [
      "--user",
      "dotbridge",
      "on",
      `>${password}`,
      "~dotbridge:*",
      "resetchannels",
      "-@all",
      "+getrange",
      "+set",
      "+del",
    ]);
    try {
      const url = `redis://dotbridge:${password}@127.0.0.1:${limited.port}/0`;
      const args = ["--cache-redis", url, "--cache-redis-secret", SECRET];
      const a = await startTestBridge(pki, upstream, [...args, "--cache-redis-budget", "1s"]);
      const b = await startTestBridge(pki, upstream, [...args, "--cache-redis-budget", "1s"]);
      bridges.push(a, b);
      await until(() =>
        metric(a, "dotbridge_cache_redis_up") === 1 && metric(b, "dotbridge_cache_redis_up") === 1
      );
      const name = "acl-user.example.test";
      expect(rcodeOf(await ask(a, name))).toBe(0);
      const key = keyOf(name);
      await until(async () =>
        new TextDecoder().decode(await limited.command("EXISTS", key)).startsWith(":1")
      );
      await upstreamDown(async () => {
        expect(rcodeOf(await ask(b, name))).toBe(0);
      });
      for (const x of [a, b]) {
        expect(x.bridge.metrics.registry.render()).not.toContain(
          'dotbridge_cache_redis_trouble_total{kind="error"}',
        );
        expect(x.logs.join("\n")).not.toContain(password);
      }
    } finally {
      await limited.kill();
    }
  });

  it("serves no real entry copied under another tenant's key or the other DO bit's", async () => {
    const writer = await bridge(["--tenants", `${dir}/tenants.json`]);
    const reader = await bridge(["--tenants", `${dir}/tenants.json`]);
    const kids = { edns: true, options: [{ code: TENANT_OPTION, data: Buffer.from("kids") }] };
    const cases: [string, QueryOptions, string, QueryOptions, string][] = [
      ["global → kids", { edns: true }, "", kids, "kids"],
      ["kids → global", kids, "kids", { edns: true }, ""],
    ];
    for (const [what, from, fromTenant, to, toTenant] of cases) {
      const name = `copied-${toTenant || "global"}.example.test`;
      expect(rcodeOf(await ask(writer, name, from)), what).toBe(0);
      const source = keyOf(name, from, fromTenant);
      await until(() => inRedis(source));
      const value = bulk(await redis.command("GET", source))!;
      await redis.command("SET", keyOf(name, to, toTenant), value);
      await upstreamDown(async () => {
        expect(rcodeOf(await ask(reader, name, from)), what).toBe(0); // the real one is served
        expect(rcodeOf(await ask(reader, name, to)), what).toBe(SERVFAIL);
      });
    }

    // The DO bit: an answer fetched with DO=1 (which may carry signatures) copied to DO=0's key.
    const name = "copied-do.example.test";
    const withDo = { edns: true };
    const query = buildQuery(name, { ...withDo, id: 0x7777 });
    query[query.length - 4] |= 0x80; // the OPT record's DO flag
    const c = await writer.connect();
    try {
      const id = (query[0] << 8) | query[1];
      await c.send(query);
      expect(rcodeOf(await c.waitFor(id))).toBe(0);
    } finally {
      c.close();
    }
    const parsed = classifyQuery(query);
    if (parsed.kind !== "query") throw new Error("not a query");
    const source = cacheKey(parsed.query);
    expect(source).not.toBe(keyOf(name, withDo));
    await until(() => inRedis(source));
    await redis.command("SET", keyOf(name, withDo), bulk(await redis.command("GET", source))!);
    await upstreamDown(async () => {
      expect(rcodeOf(await ask(reader, name, withDo))).toBe(SERVFAIL);
    });
  });
});
