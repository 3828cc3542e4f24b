import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { EdnsOptionCode, Rcode } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { type CacheEvent, cacheMiddleware, type CacheOptions } from "../../src/cache/middleware.ts";
import { MemoryStore } from "../../src/cache/memory.ts";
import { cacheKey, clientSubnetKey, parseCacheKey } from "../../src/cache/store.ts";
import { compose, type Handler, isPending, type QueryContext } from "../../src/pipeline/types.ts";
import { servfailOnError, timeout } from "../../src/resolver/middleware.ts";
import { answerFromZone } from "../support/zone.ts";

function query(
  name: string,
  options: {
    id?: number;
    type?: string;
    dnssecOk?: boolean;
    cd?: boolean;
    edns?: boolean;
    /** EDNS options, as `[code, bytes]`. */
    options?: [number, number[]][];
  } = {},
): Query {
  const wire = new Uint8Array(dnsPacket.encode({
    type: "query",
    id: options.id ?? 0x4242,
    flags: dnsPacket.RECURSION_DESIRED | (options.cd ? dnsPacket.CHECKING_DISABLED : 0),
    questions: [{ type: (options.type ?? "A") as "A", name }],
    additionals: options.edns === false ? [] : [{
      type: "OPT",
      name: ".",
      udpPayloadSize: 1232,
      flags: options.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
      options: (options.options ?? []).map(([code, data]) => ({ code, data: Buffer.from(data) })),
    } as unknown as dnsPacket.Answer],
  }));
  const c = classifyQuery(wire);
  if (c.kind !== "query") throw new Error("not a query");
  return c.query;
}

/** A zone "upstream" that counts calls and can be made to fail or hang. */
function zoneUpstream() {
  const state = { calls: 0, mode: "ok" as "ok" | "fail" | "hang", release: [] as (() => void)[] };
  const handler: Handler = (q, ctx) => {
    state.calls++;
    if (state.mode === "fail") return Promise.reject(new Error("upstream down"));
    if (state.mode === "hang") {
      return new Promise((resolve, reject) => {
        state.release.push(() => resolve(answerOf(answerFromZone(q.wire))));
        ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true });
      });
    }
    return Promise.resolve(answerOf(answerFromZone(q.wire)));
  };
  return { state, handler };
}

function setup(options: Partial<CacheOptions> & { maxEntries?: number } = {}) {
  const clock = { now: 1_000_000 };
  const events: CacheEvent[] = [];
  const cache = new MemoryStore({ maxEntries: options.maxEntries });
  const up = zoneUpstream();
  const handle = cacheMiddleware({
    store: cache,
    now: () => clock.now,
    onEvent: (e) => events.push(e),
    ...options,
  })(up.handler);
  const handler = async (q: Query, ctx: QueryContext) => {
    const answer = await handle(q, ctx);
    expect(answer.info).toEqual(parseMessage(answer.wire)); // the info always matches the bytes
    return answer.wire;
  };
  const ctx = (): QueryContext => ({ face: "dot", signal: new AbortController().signal });
  return { clock, events, cache, up, handler, ctx };
}

function ttls(wire: Uint8Array): number[] {
  const p = dnsPacket.decode(Buffer.from(wire));
  return [...(p.answers ?? []), ...(p.authorities ?? [])].map((
    r,
  ) => ("ttl" in r ? r.ttl ?? -1 : -1));
}

describe("cache middleware over the memory store", () => {
  it("answers a hit synchronously, through the SERVFAIL and deadline stages too", async () => {
    const { up, ctx } = setup();
    const handler = compose(
      [servfailOnError(), timeout(1_000), cacheMiddleware({ store: new MemoryStore({}) })],
      up.handler,
    );
    const first = handler(query("sync.example.test", { id: 1 }), ctx());
    expect(isPending(first)).toBe(true); // a miss waits for the upstream
    await first;
    const hit = handler(query("sync.example.test", { id: 2 }), ctx());
    expect(isPending(hit)).toBe(false); // no promise anywhere on the way
    expect((hit as Answer).info.id).toBe(2);
    expect(up.state.calls).toBe(1);
  });

  it("answers a repeated question from memory with the client's ID and TTLs counted down", async () => {
    const { clock, up, handler, ctx, events } = setup();
    const first = await handler(query("www.example.test", { id: 1 }), ctx());
    expect(ttls(first)).toEqual([300]);
    clock.now += 42_500;
    const second = await handler(query("www.example.test", { id: 2 }), ctx());
    expect(up.state.calls).toBe(1);
    expect(parseMessage(second).id).toBe(2);
    expect(ttls(second)).toEqual([258]);
    expect(events).toEqual(["miss", "hit"]);
  });

  it("asks the upstream again once the TTL has run out", async () => {
    const { clock, up, handler, ctx } = setup();
    await handler(query("ttl.example.test"), ctx());
    clock.now += 300_000;
    const again = await handler(query("ttl.example.test"), ctx());
    expect(up.state.calls).toBe(2);
    expect(ttls(again)).toEqual([300]);
  });

  it("caches NXDOMAIN for the SOA minimum (RFC 2308)", async () => {
    const { clock, up, handler, ctx } = setup();
    const nx = await handler(query("nx.example.test"), ctx());
    expect(nx[3] & 0x0f).toBe(Rcode.NXDOMAIN);
    clock.now += 59_000;
    await handler(query("nx.example.test"), ctx());
    expect(up.state.calls).toBe(1);
    clock.now += 2_000; // SOA minimum is 60 s
    await handler(query("nx.example.test"), ctx());
    expect(up.state.calls).toBe(2);
  });

  it("keeps DO, CD and type apart in the key, and ignores the name's case", () => {
    const base = cacheKey(query("Mixed.Example.TEST"));
    expect(cacheKey(query("mixed.example.test"))).toBe(base);
    expect(cacheKey(query("mixed.example.test", { dnssecOk: true }))).not.toBe(base);
    expect(cacheKey(query("mixed.example.test", { cd: true }))).not.toBe(base);
    expect(cacheKey(query("mixed.example.test", { type: "AAAA" }))).not.toBe(base);
    expect(cacheKey(query("mixed.example.test"), "tenant-a")).not.toBe(base);
  });

  it("echoes the client's spelling of the name (0x20) on a hit", async () => {
    const { handler, ctx } = setup();
    await handler(query("case.example.test"), ctx());
    const hit = await handler(query("CaSe.ExAmPlE.TeSt"), ctx());
    expect(dnsPacket.decode(Buffer.from(hit)).questions![0].name).toBe("CaSe.ExAmPlE.TeSt");
  });

  it("evicts the least recently used answer when full", async () => {
    const { up, handler, ctx, cache } = setup({ maxEntries: 2 });
    await handler(query("a.example.test"), ctx());
    await handler(query("b.example.test"), ctx());
    await handler(query("a.example.test"), ctx()); // a is now the most recent
    await handler(query("c.example.test"), ctx()); // evicts b
    expect(cache.size).toBe(2);
    const before = up.state.calls;
    await handler(query("a.example.test"), ctx());
    expect(up.state.calls).toBe(before);
    await handler(query("b.example.test"), ctx());
    expect(up.state.calls).toBe(before + 1);
  });

  it("clamps lifetimes to min and max TTL", async () => {
    const { clock, up, handler, ctx } = setup({ maxTtl: 10 });
    await handler(query("clamp.example.test"), ctx());
    clock.now += 11_000;
    await handler(query("clamp.example.test"), ctx());
    expect(up.state.calls).toBe(2);
    const min = setup({ minTtl: 600 });
    await min.handler(query("clamp.example.test"), min.ctx());
    min.clock.now += 400_000; // past the 300 s TTL, within the 600 s minimum
    await min.handler(query("clamp.example.test"), min.ctx());
    expect(min.up.state.calls).toBe(1);
  });

  it("tells clients no TTL above maxTtl, on the miss and on later hits (as Unbound does)", async () => {
    const { clock, handler, ctx } = setup({ maxTtl: 2 });
    // (setup's handler checks every answer's info against a fresh parse of its bytes)
    const miss = await handler(query("clamp.example.test"), ctx()); // the zone says 300
    expect(ttls(miss)).toEqual([2]);
    clock.now += 1_000;
    const hit = await handler(query("clamp.example.test"), ctx());
    expect(ttls(hit)).toEqual([1]);
    const wide = setup(); // the default cap (a day) leaves the zone's 300 alone
    expect(ttls(await wide.handler(query("clamp.example.test"), wide.ctx()))).toEqual([300]);
  });

  it("does not cache SERVFAIL or failures", async () => {
    const { up, handler, ctx } = setup();
    up.state.mode = "fail";
    await expect(handler(query("fail.example.test"), ctx())).rejects.toThrow("upstream down");
    up.state.mode = "ok";
    await handler(query("fail.example.test"), ctx());
    expect(up.state.calls).toBe(2);
  });

  it("coalesces concurrent identical misses into one upstream query", async () => {
    const { up, handler, ctx, events } = setup();
    up.state.mode = "hang";
    const ids = Array.from({ length: 20 }, (_, i) => 100 + i);
    const pending = ids.map((id) => handler(query("same.example.test", { id }), ctx()));
    await new Promise((r) => setTimeout(r, 10));
    expect(up.state.calls).toBe(1);
    up.state.release.forEach((r) => r());
    const answers = await Promise.all(pending);
    expect(answers.map((a) => parseMessage(a).id)).toEqual(ids);
    expect(events.filter((e) => e === "coalesced")).toHaveLength(19);
  });

  it("keeps the shared upstream query alive while any waiter still wants it", async () => {
    const { up, handler } = setup();
    up.state.mode = "hang";
    const leaver = new AbortController();
    const first = handler(query("share.example.test", { id: 1 }), {
      face: "dot",
      signal: leaver.signal,
    });
    const second = handler(query("share.example.test", { id: 2 }), {
      face: "dot",
      signal: new AbortController().signal,
    });
    first.catch(() => {});
    leaver.abort(new Error("client left"));
    await new Promise((r) => setTimeout(r, 5));
    up.state.release.forEach((r) => r());
    expect(parseMessage(await second).id).toBe(2);
  });

  it("serves a stale answer with TTL 30 and EDE 3 when the upstream fails (RFC 8767)", async () => {
    const { clock, up, handler, ctx, events } = setup({ serveStaleSeconds: 3600 });
    await handler(query("stale.example.test"), ctx());
    clock.now += 400_000; // expired
    up.state.mode = "fail";
    const stale = await handler(query("stale.example.test", { id: 9 }), ctx());
    expect(parseMessage(stale).id).toBe(9);
    expect(ttls(stale)).toEqual([30]);
    const opt = parseMessage(stale).opt!;
    const ede = opt.options.find((o) => o.code === EdnsOptionCode.EXTENDED_ERROR);
    expect(ede && ((ede.data[0] << 8) | ede.data[1])).toBe(3);
    expect(events.at(-1)).toBe("stale");
  });

  it("serves stale when the upstream is slower than the stale answer timeout", async () => {
    const { clock, up, handler, ctx } = setup({
      serveStaleSeconds: 3600,
      staleAnswerTimeoutMs: 20,
    });
    await handler(query("slow.example.test"), ctx());
    clock.now += 400_000;
    up.state.mode = "hang";
    const stale = await handler(query("slow.example.test"), ctx());
    expect(ttls(stale)).toEqual([30]);
    up.state.release.forEach((r) => r()); // the late answer refreshes the cache
    await new Promise((r) => setTimeout(r, 5));
    up.state.mode = "ok";
    const fresh = await handler(query("slow.example.test"), ctx());
    expect(ttls(fresh)).toEqual([300]);
  });

  it("does not serve stale past the stale window, nor at all when it is off", async () => {
    const off = setup();
    await off.handler(query("x.example.test"), off.ctx());
    off.clock.now += 400_000;
    off.up.state.mode = "fail";
    await expect(off.handler(query("x.example.test"), off.ctx())).rejects.toThrow();
    const on = setup({ serveStaleSeconds: 60 });
    await on.handler(query("x.example.test"), on.ctx());
    on.clock.now += 300_000 + 61_000;
    on.up.state.mode = "fail";
    await expect(on.handler(query("x.example.test"), on.ctx())).rejects.toThrow();
  });

  it("starts a new flight when the last waiter of an in-flight lookup has left", async () => {
    const { up, handler, ctx } = setup();
    up.state.mode = "hang";
    const leaver = new AbortController();
    const name = "abandoned.example.test";
    const first = handler(query(name, { id: 1 }), { ...ctx(), signal: leaver.signal });
    first.catch(() => {});
    await new Promise((r) => setTimeout(r, 5));
    leaver.abort(new Error("first client's deadline"));
    await expect(first).rejects.toThrow("first client's deadline");
    const second = handler(query(name, { id: 2 }), ctx());
    await new Promise((r) => setTimeout(r, 5));
    expect(up.state.calls).toBe(2);
    up.state.release.at(-1)!();
    expect(parseMessage(await second).id).toBe(2);
  });

  it("does not join a flight for a client that left during an asynchronous store lookup", async () => {
    const store = new BytesStore();
    let lookups = 0;
    const leaver = new AbortController();
    const slow = {
      name: "slow",
      get: (key: string) => {
        lookups++;
        // The first lookup outlives its client's deadline.
        if (lookups === 1) leaver.abort(new Error("first client's deadline"));
        return store.get(key);
      },
      set: store.set.bind(store),
      delete: store.delete.bind(store),
    };
    const up = zoneUpstream();
    up.state.mode = "hang";
    const handle = cacheMiddleware({ store: slow })(up.handler);
    const name = "left-early.example.test";
    const first = handle(query(name, { id: 1 }), { face: "dot", signal: leaver.signal });
    await expect(first).rejects.toThrow("first client's deadline");
    expect(up.state.calls).toBe(0); // no upstream query for nobody
    const second = handle(query(name, { id: 2 }), {
      face: "dot",
      signal: new AbortController().signal,
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(up.state.calls).toBe(1);
    up.state.release.at(-1)!();
    expect((await second).info.id).toBe(2);
  });
});

/** A store that keeps bytes only and answers through promises, as a shared store does. */
class BytesStore {
  readonly name = "bytes";
  readonly entries = new Map<string, { wire: Uint8Array; storedAt: number; expiresAt: number }>();
  readonly kept: number[] = [];
  get(key: string) {
    const e = this.entries.get(key);
    return Promise.resolve(e && { ...e, wire: e.wire.slice() });
  }
  set(key: string, entry: { wire: Uint8Array; storedAt: number; expiresAt: number }, keep: number) {
    this.kept.push(keep);
    this.entries.set(key, {
      wire: entry.wire.slice(),
      storedAt: entry.storedAt,
      expiresAt: entry.expiresAt,
    });
    return Promise.resolve();
  }
  delete(key: string) {
    this.entries.delete(key);
    return Promise.resolve();
  }
}

describe("cache stores", () => {
  function over(store: BytesStore, serveStaleSeconds = 0) {
    const clock = { now: 5_000_000 };
    const up = zoneUpstream();
    const handle = cacheMiddleware({ store, now: () => clock.now, serveStaleSeconds })(up.handler);
    const ctx = (): QueryContext => ({ face: "dot", signal: new AbortController().signal });
    return { clock, up, handle, ctx };
  }

  it("answers from an asynchronous bytes-only store with TTLs counted down", async () => {
    const store = new BytesStore();
    const { clock, up, handle, ctx } = over(store, 60);
    await handle(query("async.example.test", { id: 1 }), ctx());
    expect(store.kept).toEqual([360]); // TTL 300 plus the stale window
    clock.now += 10_000;
    const hit = await handle(query("async.example.test", { id: 3 }), ctx());
    expect(up.state.calls).toBe(1);
    expect(hit.info).toEqual(parseMessage(hit.wire));
    expect(hit.info.id).toBe(3);
    expect(ttls(hit.wire)).toEqual([290]);
  });

  it("drops an entry that does not parse or answers another question", async () => {
    const store = new BytesStore();
    const { up, handle, ctx } = over(store);
    const q = query("bad.example.test");
    const key = cacheKey(q);
    store.entries.set(key, { wire: new Uint8Array([1, 2, 3]), storedAt: 0, expiresAt: 1e13 });
    await handle(q, ctx());
    expect(up.state.calls).toBe(1);
    const other = answerFromZone(query("other.example.test").wire);
    store.entries.set(key, { wire: other, storedAt: 0, expiresAt: 1e13 });
    const answer = await handle(q, ctx());
    expect(up.state.calls).toBe(2);
    expect(answer.info.question?.name).toBe("bad.example.test");
  });

  it("keys by tenant, versioned for a shared store", () => {
    expect(cacheKey(query("Www.Example.Test"), "kids")).toBe(
      "dotbridge:v2:kids:1:1:0::www.example.test",
    );
  });

  it("clamps a planted entry's times and TTLs to maxTtl, and lets it expire by then", async () => {
    const store = new BytesStore();
    const { clock, up, handle, ctx } = over(store);
    const q = query("planted.example.test");
    const wire = answerFromZone(query("planted.example.test", { id: 0 }).wire);
    const at = wire.length - 11 - 10; // the A record's TTL (an OPT record of 11 bytes follows)
    wire.set([0x7f, 0xff, 0xff, 0xff], at);
    const years = 68 * 365 * 86_400_000;
    store.entries.set(cacheKey(q), { wire, storedAt: clock.now, expiresAt: clock.now + years });
    const hit = await handle(q, ctx());
    expect(up.state.calls).toBe(0);
    expect(ttls(hit.wire)).toEqual([86_400]); // the default maxTtl
    expect(hit.info).toEqual(parseMessage(hit.wire)); // minTtl capped with the TTLs
    expect(hit.info.minTtl).toBe(86_400);
    clock.now += 86_400_000;
    await handle(q, ctx());
    expect(up.state.calls).toBe(1); // expired at maxTtl: asked again
  });

  it("refuses an entry stored in the future (it would be fresh again on every read)", async () => {
    const store = new BytesStore();
    const { clock, up, handle, ctx } = over(store);
    const q = query("future.example.test");
    const wire = answerFromZone(query("future.example.test", { id: 0 }).wire);
    const soon = { wire, storedAt: clock.now + 30_000, expiresAt: clock.now + 90_000 };
    store.entries.set(cacheKey(q), soon);
    await handle(q, ctx());
    expect(up.state.calls).toBe(0); // within the clock skew allowed: taken as stored now
    const later = { wire, storedAt: clock.now + 3_600_000, expiresAt: clock.now + 3_660_000 };
    store.entries.set(cacheKey(q), later);
    await handle(q, ctx());
    expect(up.state.calls).toBe(1);
  });
});

describe("cache keys", () => {
  it("reads back exactly what cacheKey wrote, a name holding ':' too", () => {
    const cases: [Query, string, string][] = [
      [query("www.example.test"), "", ""],
      [query("a:1:1:0::b.example.test", { type: "AAAA", dnssecOk: true, cd: true }), "kids", ""],
      [query("x.example.test"), "t-1", "2/56/20010db8000000"],
    ];
    for (const [q, tenant, subnet] of cases) {
      expect(parseCacheKey(cacheKey(q, tenant, subnet))).toEqual({
        tenant,
        type: q.question.type,
        class: 1,
        bits: (q.info.opt && q.info.opt.ttl & 0x8000 ? 1 : 0) | (q.info.flags & 0x10 ? 2 : 0),
        subnet,
        name: q.question.name.toLowerCase(),
      });
    }
  });

  it.each([
    "dotbridge:v1::1:1:0:www.example.test",
    "dotbridge:v2::1:1:0:www.example.test",
    "dotbridge:v2::1:1:4::www.example.test",
    "dotbridge:v2::70000:1:0::www.example.test",
    "dotbridge:v2::01:1:0::www.example.test",
    "dotbridge:v2::1:1:0:3/24/c00002:www.example.test",
    "dotbridge:v2::1:1:0::WWW.example.test",
    "prefix dotbridge:v2::1:1:0::www.example.test",
  ])("refuses %s", (key) => {
    expect(parseCacheKey(key)).toBeUndefined();
  });

  it.each([
    ["no option", [], ""],
    ["an IPv4 /24", [[8, [0, 1, 24, 0, 192, 0, 2]]], "1/24/c00002"],
    ["an IPv4 /20, its host bits cut", [[8, [0, 1, 20, 0, 10, 1, 0xff]]], "1/20/0a01f0"],
    ["an IPv6 /56", [[8, [0, 2, 56, 0, 0x20, 1, 0x0d, 0xb8, 0, 0, 0]]], "2/56/20010db8000000"],
    ["a /0", [[8, [0, 1, 0, 0]]], "1/0/"],
    ["two options", [[8, [0, 1, 0, 0]], [8, [0, 1, 0, 0]]], undefined],
    ["an unknown family", [[8, [0, 3, 8, 0, 1]]], undefined],
    ["a prefix too long", [[8, [0, 1, 33, 0, 1, 2, 3, 4, 5]]], undefined],
    ["an address of the wrong length", [[8, [0, 1, 24, 0, 1, 2]]], undefined],
    ["no address family", [[8, [0, 1]]], undefined],
  ] as [string, [number, number[]][], string | undefined][])(
    "gives the subnet part of %s",
    (_, options, want) => {
      expect(clientSubnetKey(query("ecs.example.test", { options }).info)).toBe(want);
    },
  );
});

describe("cache middleware with the client subnet forwarded", () => {
  const ecs = (c: number): [number, number[]] => [8, [0, 1, 24, 0, 10, 0, c]];

  it("keeps each subnet's answer apart", async () => {
    const { up, handler, ctx } = setup({ clientSubnet: true });
    await handler(query("ecs.example.test", { options: [ecs(1)] }), ctx());
    await handler(query("ecs.example.test", { options: [ecs(2)] }), ctx());
    expect(up.state.calls).toBe(2);
    await handler(query("ecs.example.test", { options: [ecs(1)] }), ctx());
    await handler(query("ecs.example.test", { options: [ecs(2)] }), ctx());
    expect(up.state.calls).toBe(2);
  });

  it("shares one answer between subnets when the subnet is not forwarded", async () => {
    const { up, handler, ctx } = setup();
    await handler(query("ecs.example.test", { options: [ecs(1)] }), ctx());
    await handler(query("ecs.example.test", { options: [ecs(2)] }), ctx());
    expect(up.state.calls).toBe(1);
  });

  it("does not cache a query with an odd subnet option", async () => {
    const { up, handler, ctx, cache } = setup({ clientSubnet: true });
    const odd = query("ecs.example.test", { options: [[8, [0, 9, 24, 0, 1, 2, 3]]] });
    await handler(odd, ctx());
    await handler(odd, ctx());
    expect(up.state.calls).toBe(2);
    expect(cache.size).toBe(0);
  });
});

describe("cache middleware size cap", () => {
  it("serves an answer larger than maxEntryBytes but does not keep it", async () => {
    const { up, handler, ctx, cache } = setup({ maxEntryBytes: 512 });
    await handler(query("small.example.test"), ctx());
    expect(cache.size).toBe(1);
    const name = `${"x".repeat(60)}.${"y".repeat(60)}.${"z".repeat(60)}.example.test`;
    const big = await handler(query(name, { type: "TXT" }), ctx());
    expect(big.length).toBeGreaterThan(512);
    await handler(query(name, { type: "TXT" }), ctx());
    expect(up.state.calls).toBe(3);
    expect(cache.size).toBe(1);
  });
});
