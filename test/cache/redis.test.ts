/**
 * The Redis store and the two-level store: value layout (bound to its key, optionally signed),
 * the lookup budget, the trust rule and its clamps, and the same against a real redis-server
 * (binary values, PX expiry, garbage under a key, a value planted larger than ours, outage, a
 * stalled server, recovery).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { answerOf } from "../../src/dns/answer.ts";
import { type CacheEvent, cacheMiddleware } from "../../src/cache/middleware.ts";
import { MemoryStore } from "../../src/cache/memory.ts";
import {
  decodeEntry,
  encodeEntry,
  type RedisConnection,
  RedisStore,
  type RedisTrouble,
  sealEntry,
} from "../../src/cache/redis.ts";
import { entrySigner } from "../../src/cache/signer.ts";
import { type CacheEntry, cacheKey } from "../../src/cache/store.ts";
import { TieredStore } from "../../src/cache/tiered.ts";
import { connectRedis, type RedisClient } from "../../src/deno/redis_client.ts";
import { createLogger } from "../../src/log/mod.ts";
import type { Handler, QueryContext } from "../../src/pipeline/types.ts";
import { HAVE_REDIS, requireRedis, startRedis, type TestRedis } from "../support/redis_server.ts";
import { answerFromZone } from "../support/zone.ts";

function query(name: string, id = 0x4242): Query {
  const wire = new Uint8Array(dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "A", name }],
  }));
  const c = classifyQuery(wire);
  if (c.kind !== "query") throw new Error("not a query");
  return c.query;
}

/** The stored form of the zone's answer to `name` (ID 0), fresh for 300 s from `at`. */
function entryFor(name: string, at = Date.now()): CacheEntry {
  const wire = answerFromZone(query(name, 0).wire);
  return { wire, storedAt: at, expiresAt: at + 300_000 };
}

const ctx = (): QueryContext => ({ face: "dot", signal: new AbortController().signal });

/** A connection whose replies the test controls. */
function fakeConnection() {
  const data = new Map<string, Uint8Array>();
  const calls: string[] = [];
  const limits: number[] = [];
  const state = { ready: true, hang: false, fail: false };
  const conn: RedisConnection = {
    get ready() {
      return state.ready;
    },
    get(key, maxBytes) {
      calls.push(`get ${key}`);
      limits.push(maxBytes);
      if (state.fail) return Promise.reject(new Error("boom"));
      if (state.hang) return new Promise(() => {});
      return Promise.resolve(data.get(key)?.slice(0, maxBytes) ?? null);
    },
    set(key, value) {
      calls.push(`set ${key}`);
      if (state.hang) return new Promise(() => {});
      data.set(key, value);
      return Promise.resolve("OK");
    },
    del(key) {
      calls.push(`del ${key}`);
      data.delete(key);
      return Promise.resolve(1);
    },
  };
  return { conn, data, calls, limits, state };
}

/** Waits for the store's writes (signing is asynchronous) and other operations to settle. */
async function settled(store: RedisStore): Promise<void> {
  for (let i = 0; i < 50 && (i < 3 || store.pending > 0); i++) {
    await new Promise((r) => setTimeout(r, 2));
  }
}

const SECRET = "a test secret of more than thirty-two bytes";

describe("value layout", () => {
  const KEY = cacheKey(query("round.example.test"));

  it("round-trips an entry under its key and copies the answer out of the reply", () => {
    const entry = entryFor("round.example.test", 1_700_000_000_123);
    const value = encodeEntry(entry, KEY);
    expect(value[0]).toBe(2);
    expect(value[1]).toBe(0); // unsigned
    const back = decodeEntry(value, KEY)!;
    expect(back.signed).toBeUndefined();
    expect(back.entry.storedAt).toBe(entry.storedAt);
    expect(back.entry.expiresAt).toBe(entry.expiresAt);
    expect(back.entry.wire).toEqual(entry.wire);
    expect(back.entry.info).toBeUndefined(); // the middleware walks it
    value[value.length - 1] ^= 0xff;
    expect(back.entry.wire.at(-1)).toBe(entry.wire.at(-1)); // not a view of the reply
  });

  it("refuses a value read under another key: another tenant, DO bit, subnet or name", () => {
    const value = encodeEntry(entryFor("round.example.test"), KEY);
    for (
      const other of [
        cacheKey(query("round.example.test"), "kids"),
        KEY.replace(":1:1:0::", ":1:1:1::"),
        cacheKey(query("round.example.test"), "", "1/24/c00002"),
        cacheKey(query("round.example.tes")),
      ]
    ) {
      expect(decodeEntry(value, other)).toBeUndefined();
    }
  });

  it("refuses an answer larger than the cap it is read with", () => {
    const entry = entryFor("round.example.test");
    const value = encodeEntry(entry, KEY);
    expect(decodeEntry(value, KEY, entry.wire.length)).toBeDefined();
    expect(decodeEntry(value, KEY, entry.wire.length - 1)).toBeUndefined();
  });

  it("ends a signed value in an HMAC-SHA-256 of the rest", async () => {
    const signer = await entrySigner(SECRET);
    const value = await sealEntry(entryFor("round.example.test"), KEY, signer);
    expect(value[1]).toBe(1);
    const back = decodeEntry(value, KEY)!;
    expect(back.signed!.signature.length).toBe(32);
    expect(await signer.verify(back.signed!.data, back.signed!.signature)).toBe(true);
    const other = await entrySigner(SECRET + "!");
    expect(await other.verify(back.signed!.data, back.signed!.signature)).toBe(false);
  });

  it.each([
    ["empty", () => new Uint8Array(0)],
    ["short", () => new Uint8Array(20).fill(2)],
    ["the old layout (version 1)", () => {
      const v = encodeEntry(entryFor("round.example.test"), KEY);
      v[0] = 1;
      return v;
    }],
    ["unknown flags", () => {
      const v = encodeEntry(entryFor("round.example.test"), KEY);
      v[1] = 4;
      return v;
    }],
    ["NaN times", () => {
      const v = encodeEntry(entryFor("round.example.test"), KEY);
      v.fill(0xff, 2, 10);
      return v;
    }],
    ["expiry before storage", () => {
      const e = entryFor("round.example.test");
      return encodeEntry({ ...e, expiresAt: e.storedAt - 1 }, KEY);
    }],
    ["a key length past the end", () => {
      const v = encodeEntry(entryFor("round.example.test"), KEY);
      v[18] = 0xff;
      return v;
    }],
    ["text", () => new TextEncoder().encode("hello, this is not a cache entry at all")],
    ["larger than any DNS message", () => {
      const e = entryFor("round.example.test");
      return encodeEntry({ ...e, wire: new Uint8Array(65_536) }, KEY);
    }],
  ])("refuses %s", (_, value) => {
    expect(decodeEntry(value(), KEY)).toBeUndefined();
  });
});

describe("RedisStore over a fake connection", () => {
  it("answers a miss at once (no promise) while the connection is down", () => {
    const f = fakeConnection();
    f.state.ready = false;
    const store = new RedisStore({ connection: f.conn });
    expect(store.get("k")).toBeUndefined();
    store.set("k", entryFor("down.example.test"), 60);
    expect(f.calls).toEqual([]);
  });

  it("gives up on a lookup past the budget and ignores the late reply", async () => {
    const f = fakeConnection();
    f.state.hang = true;
    const troubles: RedisTrouble[] = [];
    const store = new RedisStore({
      connection: f.conn,
      budgetMs: 20,
      onTrouble: (t) => troubles.push(t),
    });
    const t0 = performance.now();
    expect(await store.get("k")).toBeUndefined();
    const took = performance.now() - t0;
    expect(took).toBeGreaterThanOrEqual(15);
    expect(took).toBeLessThan(200);
    expect(troubles).toEqual(["timeout"]);
    expect(store.pending).toBe(1);
  });

  it("skips operations past maxPending (a stalled server) and counts them", () => {
    const f = fakeConnection();
    f.state.hang = true;
    const troubles: RedisTrouble[] = [];
    const store = new RedisStore({
      connection: f.conn,
      maxPending: 2,
      onTrouble: (t) => troubles.push(t),
    });
    store.set("a", entryFor("a.example.test"), 60);
    store.set("b", entryFor("b.example.test"), 60);
    store.set("c", entryFor("c.example.test"), 60);
    expect(store.get("d")).toBeUndefined();
    expect(f.calls).toEqual(["set a", "set b"]);
    expect(troubles).toEqual(["busy", "busy"]);
  });

  it("answers a miss, not a rejection, when a lookup fails", async () => {
    const f = fakeConnection();
    f.state.fail = true;
    const troubles: RedisTrouble[] = [];
    const store = new RedisStore({ connection: f.conn, onTrouble: (t) => troubles.push(t) });
    expect(await store.get("k")).toBeUndefined();
    expect(troubles).toEqual(["error"]);
  });

  it("reads no more than one byte past its largest value, and refuses what is larger", async () => {
    const f = fakeConnection();
    const troubles: RedisTrouble[] = [];
    const store = new RedisStore({
      connection: f.conn,
      maxAnswerBytes: 1_000,
      onTrouble: (t) => troubles.push(t),
    });
    const key = cacheKey(query("planted-large.example.test"));
    const big = { ...entryFor("planted-large.example.test"), wire: new Uint8Array(5_000) };
    f.data.set(key, encodeEntry(big, key));
    expect(await store.get(key)).toBeUndefined();
    expect(f.limits).toEqual([20 + key.length + 1_000 + 32 + 1]);
    expect(troubles).toEqual(["rejected"]);
    expect(f.calls).toContain(`del ${key}`);
  });

  it("does not write an answer larger than its cap", async () => {
    const f = fakeConnection();
    const store = new RedisStore({ connection: f.conn, maxAnswerBytes: 100 });
    const entry = entryFor("cap.example.test");
    store.set("small", entry, 60);
    store.set("large", { ...entry, wire: new Uint8Array(101) }, 60);
    await settled(store);
    expect(f.calls).toEqual(["set small"]);
  });

  it("with a secret, writes signed values and serves only those it can verify", async () => {
    const f = fakeConnection();
    const troubles: RedisTrouble[] = [];
    const signer = await entrySigner(SECRET);
    const store = new RedisStore({
      connection: f.conn,
      signer,
      onTrouble: (t) => troubles.push(t),
    });
    const key = cacheKey(query("signed.example.test"));
    const entry = entryFor("signed.example.test");
    store.set(key, entry, 60);
    await settled(store);
    expect(f.data.get(key)![1]).toBe(1);
    expect((await store.get(key))?.wire).toEqual(entry.wire);
    expect(troubles).toEqual([]);

    const cases: [string, Uint8Array][] = [
      ["unsigned", encodeEntry(entry, key)],
      ["signed under another secret", await sealEntry(entry, key, await entrySigner(SECRET + "!"))],
      [
        "altered after signing",
        (() => {
          const v = f.data.get(key)!.slice();
          v[6] ^= 1; // storedAt
          return v;
        })(),
      ],
      ["a signature cut short", f.data.get(key)!.slice(0, -1)],
    ];
    for (const [what, value] of cases) {
      f.data.set(key, value);
      expect(await store.get(key), what).toBeUndefined();
      await settled(store); // the delete is not awaited by get()
      expect(f.data.has(key), what).toBe(false); // deleted
    }
    expect(troubles).toEqual(["rejected", "rejected", "rejected", "rejected"]);
  });

  it("without a secret, serves a signed value (it cannot check it) bound to its key", async () => {
    const f = fakeConnection();
    const store = new RedisStore({ connection: f.conn });
    const key = cacheKey(query("mixed.example.test"));
    const entry = entryFor("mixed.example.test");
    f.data.set(key, await sealEntry(entry, key, await entrySigner(SECRET)));
    expect((await store.get(key))?.wire).toEqual(entry.wire);
  });
});

describe("TieredStore", () => {
  it("answers a front hit without a promise and without asking the back", () => {
    const f = fakeConnection();
    const store = new TieredStore(new MemoryStore(), new RedisStore({ connection: f.conn }));
    const q = query("front.example.test");
    const key = cacheKey(q);
    store.set(key, entryFor("front.example.test"), 60);
    expect(f.calls).toEqual([`set ${key}`]);
    const got = store.get(key);
    expect(got).not.toBeInstanceOf(Promise);
    expect((got as CacheEntry).wire.length).toBeGreaterThan(12);
    expect(f.calls).toEqual([`set ${key}`]);
  });

  it("promotes a good back entry with its parse, so the next lookup is a front hit", async () => {
    const f = fakeConnection();
    const front = new MemoryStore();
    const store = new TieredStore(front, new RedisStore({ connection: f.conn }));
    const key = cacheKey(query("back.example.test"));
    f.data.set(key, encodeEntry(entryFor("back.example.test"), key));
    const got = await store.get(key);
    expect(got?.info?.question?.name).toBe("back.example.test");
    expect(front.get(key)).toBe(got);
    expect(store.get(key)).toBe(got);
  });

  it("asks the back when the front entry has expired, and takes a fresher one", async () => {
    const f = fakeConnection();
    const front = new MemoryStore();
    const clock = { now: 1_000_000 };
    const store = new TieredStore(front, new RedisStore({ connection: f.conn }), {
      now: () => clock.now,
    });
    const name = "refreshed.example.test";
    const key = cacheKey(query(name));
    const old = { ...entryFor(name, clock.now - 400_000), info: undefined };
    front.set(key, old);
    // Nothing fresher in Redis: the expired entry comes back (for serve-stale to judge).
    expect(await store.get(key)).toBe(old);
    const fresh = entryFor(name, clock.now - 1_000);
    f.data.set(key, encodeEntry(fresh, key));
    const got = await store.get(key);
    expect(got?.expiresAt).toBe(fresh.expiresAt);
    expect(got?.info).toBeDefined();
    expect(store.get(key)).toBe(got); // promoted: a plain front hit again
  });

  it("forgets a too-old key in front only: another bridge may have refreshed it in Redis", () => {
    const f = fakeConnection();
    const front = new MemoryStore();
    const store = new TieredStore(front, new RedisStore({ connection: f.conn }));
    const key = cacheKey(query("old.example.test"));
    store.set(key, entryFor("old.example.test"), 60);
    store.delete(key);
    expect(front.size).toBe(0);
    expect(f.calls).toEqual([`set ${key}`]);
  });

  const BAD = cacheKey(query("bad.example.test"));
  it.each([
    ["does not parse", () => {
      const e = entryFor("bad.example.test");
      return encodeEntry({ ...e, wire: e.wire.slice(0, 20) }, BAD);
    }],
    ["answers another name", () => encodeEntry(entryFor("other.example.test"), BAD)],
    ["answers a name ending in the key's", () => encodeEntry(entryFor("example.test"), BAD)],
    ["is a query, not a response", () => {
      const e = entryFor("bad.example.test");
      return encodeEntry({ ...e, wire: query("bad.example.test", 0).wire }, BAD);
    }],
    ["is truncated (TC)", () => {
      const e = entryFor("bad.example.test");
      const wire = e.wire.slice();
      wire[2] |= 0x02;
      return encodeEntry({ ...e, wire }, BAD);
    }],
    ["is a SERVFAIL", () => {
      const e = entryFor("bad.example.test");
      const wire = e.wire.slice();
      wire[3] = (wire[3] & 0xf0) | 2;
      return encodeEntry({ ...e, wire }, BAD);
    }],
    ["was written under another key", () => {
      return encodeEntry(entryFor("bad.example.test"), cacheKey(query("bad.example.test"), "t"));
    }],
    ["is not ours", () => new TextEncoder().encode("x".repeat(64))],
  ])("drops a back entry that %s", async (_, value) => {
    const f = fakeConnection();
    const front = new MemoryStore();
    const store = new TieredStore(front, new RedisStore({ connection: f.conn }));
    const key = BAD;
    f.data.set(key, value());
    expect(await store.get(key)).toBeUndefined();
    expect(front.size).toBe(0);
    expect(f.calls).toContain(`del ${key}`);
  });

  it("clamps a back entry's times and TTLs before keeping it in front", async () => {
    const f = fakeConnection();
    const front = new MemoryStore();
    const clock = { now: 1_700_000_000_000 };
    const store = new TieredStore(front, new RedisStore({ connection: f.conn }), {
      now: () => clock.now,
      maxTtlMs: 60_000,
    });
    const name = "planted.example.test";
    const key = cacheKey(query(name));
    const wire = answerFromZone(query(name, 0).wire);
    wire.set([0x7f, 0xff, 0xff, 0xff], wire.length - 10); // the A record's TTL: 68 years
    const years = 68 * 365 * 86_400_000;
    const planted = { wire, storedAt: clock.now - 1_000, expiresAt: clock.now + years };
    f.data.set(key, encodeEntry(planted, key));
    const got = (await store.get(key))!;
    expect(got.storedAt).toBe(clock.now - 1_000);
    expect(got.expiresAt).toBe(clock.now + 59_000);
    const record = dnsPacket.decode(Buffer.from(got.wire)).answers![0];
    expect((record as { ttl?: number }).ttl).toBe(60);
    expect(front.get(key)).toBe(got);
    // Read again after it expired, the same value is no fresher.
    clock.now += 60_000;
    expect((await store.get(key))!.expiresAt).toBe(got.expiresAt);
    // One stored far in the future is refused (clamped to now, it would be fresh on every read).
    const later = { wire, storedAt: clock.now + years, expiresAt: clock.now + 2 * years };
    f.data.set(key, encodeEntry(later, key));
    front.clear();
    expect(await store.get(key)).toBeUndefined();
  });
});

describe.skipIf(!HAVE_REDIS && Deno.env.get("CI") !== "true")("against a real redis-server", () => {
  let redis: TestRedis;
  let client: RedisClient;
  const logs: string[] = [];
  const states: boolean[] = [];
  const troubles: RedisTrouble[] = [];
  let shared: RedisStore;

  /** A cache in front of an upstream that counts its calls, over memory + the shared store. */
  function bridgeCache() {
    const upstream = { calls: 0, fail: false };
    const handler: Handler = (q) => {
      upstream.calls++;
      if (upstream.fail) return Promise.reject(new Error("upstream down"));
      return Promise.resolve(answerOf(answerFromZone(q.wire)));
    };
    const events: CacheEvent[] = [];
    const store = new TieredStore(new MemoryStore(), shared);
    const handle = cacheMiddleware({ store, onEvent: (e) => events.push(e) })(handler);
    return { handle, upstream, events };
  }

  async function until(check: () => boolean, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      if (Date.now() > deadline) throw new Error("condition not met in time");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  beforeAll(async () => {
    requireRedis();
    redis = await startRedis();
    client = connectRedis({
      url: redis.url,
      logger: createLogger({ level: "info", sink: (line) => logs.push(line) }),
      onState: (up) => states.push(up),
    });
    // A generous budget here: these tests are about correctness (beside others on a loaded
    // machine); the budget has its own test.
    shared = new RedisStore({
      connection: client,
      budgetMs: 1_000,
      onTrouble: (t) => troubles.push(t),
    });
    await until(() => client.ready);
  });

  afterAll(async () => {
    await client?.close();
    await redis?.kill();
  });

  it("keeps binary answers with their times, expiring after the keep time (PX)", async () => {
    const entry = entryFor("binary.example.test");
    const key = cacheKey(query("binary.example.test"));
    shared.set(key, entry, 42);
    await until(() => shared.pending === 0);
    const got = await shared.get(key);
    expect(got?.wire).toEqual(entry.wire);
    expect(got?.storedAt).toBe(entry.storedAt);
    expect(got?.expiresAt).toBe(entry.expiresAt);
    const pttl = Number(new TextDecoder().decode(await redis.command("PTTL", key)).slice(1));
    expect(pttl).toBeGreaterThan(40_000);
    expect(pttl).toBeLessThanOrEqual(42_000);
  });

  it("serves an answer one cache stored to another with its own memory", async () => {
    const a = bridgeCache();
    const b = bridgeCache();
    const q = query("shared.example.test", 7);
    await a.handle(q, ctx());
    await until(() => shared.pending === 0);
    b.upstream.fail = true;
    const answer = await b.handle(query("shared.example.test", 9), ctx());
    expect(answer.info.id).toBe(9);
    expect(b.upstream.calls).toBe(0);
    expect(b.events).toEqual(["hit"]);
    // Now in b's memory: a second hit does not wait on anything.
    await b.handle(query("shared.example.test", 10), ctx());
    expect(b.events).toEqual(["hit", "hit"]);
  });

  it("drops garbage found under a key and asks the upstream", async () => {
    const key = cacheKey(query("garbage.example.test"));
    await redis.command("SET", key, new Uint8Array([1, 2, 3, 0, 0xff, 9, 9, 9]));
    const c = bridgeCache();
    const answer = await c.handle(query("garbage.example.test"), ctx());
    expect(answer.info.ancount).toBe(1);
    expect(c.upstream.calls).toBe(1);
    await until(() => shared.pending === 0);
    // Replaced by the upstream's answer.
    const got = await shared.get(key);
    expect(got && decodeEntry(encodeEntry(got, key), key)).toBeTruthy();
  });

  it("answers misses at once while Redis is down, and recovers on its own", async () => {
    const logsBefore = logs.length;
    await redis.kill();
    await until(() => !client.ready);
    const c = bridgeCache();
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const answer = await c.handle(query(`outage-${i}.example.test`), ctx());
      expect(answer.info.ancount).toBe(1);
      expect(performance.now() - t0).toBeLessThan(100);
    }
    expect(c.upstream.calls).toBe(20);
    await redis.restart();
    await until(() => client.ready);
    // One line down, one line up, however many queries and reconnection attempts there were.
    const news = logs.slice(logsBefore);
    expect(news.filter((l) => l.includes("cache redis down"))).toHaveLength(1);
    expect(news.filter((l) => l.includes("cache redis up"))).toHaveLength(1);
    expect(states.slice(-2)).toEqual([false, true]);
    // Hits through Redis again.
    const writer = bridgeCache();
    await writer.handle(query("after.example.test"), ctx());
    await until(() => shared.pending === 0);
    const reader = bridgeCache();
    reader.upstream.fail = true;
    await reader.handle(query("after.example.test"), ctx());
    expect(reader.events).toEqual(["hit"]);
  });

  it("does not wait on a stalled Redis past the budget", async () => {
    const fast = new RedisStore({
      connection: client,
      budgetMs: 5,
      onTrouble: (t) => troubles.push(t),
    });
    const c = {
      store: new TieredStore(new MemoryStore(), fast),
    };
    const before = troubles.filter((t) => t === "timeout").length;
    redis.pause();
    try {
      const t0 = performance.now();
      expect(await c.store.get(cacheKey(query("stalled.example.test")))).toBeUndefined();
      expect(performance.now() - t0).toBeLessThan(200);
      expect(troubles.filter((t) => t === "timeout").length).toBe(before + 1);
    } finally {
      redis.resume();
    }
  });
});
