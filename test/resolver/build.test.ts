/**
 * The resolver builder: what it builds from its options and the edge's pieces. Upstreams are
 * in-process ones keeping the Upstream contract (answers from the test zone), except where the
 * real DoH upstream is built through `upstreamsFrom` over an in-process transport; everything
 * else (ACL, rate limit, DDR, tenants, cache) is the real middleware.
 *
 * @module
 */
import { describe, expect, it } from "vitest";
import type { CacheEvent } from "../../src/cache/middleware.ts";
import { MemoryStore } from "../../src/cache/memory.ts";
import type { CacheStore } from "../../src/cache/store.ts";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { buildQuery } from "../../src/dns/build_query.ts";
import { EdeCode, Rcode, RrType } from "../../src/dns/constants.ts";
import { headerRcode, type MessageInfo } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { createLogger } from "../../src/log/mod.ts";
import { passThrough, type QueryContext } from "../../src/pipeline/types.ts";
import {
  buildResolver,
  type ResolverDeps,
  type UpstreamFor,
  type UpstreamHooks,
  upstreamsFrom,
} from "../../src/resolver/build.ts";
import type { PolicyOptions, ResolverOptions, TenantPolicy } from "../../src/resolver/options.ts";
import type { UpstreamSpec } from "../../src/upstream/build.ts";
import type { DohTransport } from "../../src/upstream/doh_transport.ts";
import type { ExchangeReport } from "../../src/upstream/instrumented.ts";
import type { Upstream } from "../../src/upstream/types.ts";
import { makeQuery, type QuerySpec } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";
import { type FilterLists, NameHasher, parseList } from "../../src/filter/mod.ts";
import { POLICY } from "./fixtures.ts";

const SPEC: UpstreamSpec = {
  upstreams: ["https://global.test/dns-query"],
  upstreamStrategy: "failover",
  dohMethod: "POST",
  upstreamCooldownMs: 1_000,
  attemptTimeoutMs: 1_000,
};

function options(policy: Partial<PolicyOptions> = {}, spec: Partial<UpstreamSpec> = {}) {
  return { upstream: { ...SPEC, ...spec }, resolver: { ...POLICY, ...policy } } as ResolverOptions;
}

function tenant(upstream: string, more: Partial<TenantPolicy> = {}): TenantPolicy {
  return {
    selector: more.selector ?? new URL(upstream).hostname.split(".")[0],
    upstreams: [upstream],
    upstreamStrategy: "failover",
    cache: false,
    ...more,
  };
}

/** An upstream answering from the test zone, keeping the contract; it records what it saw. */
class ZoneUpstream implements Upstream {
  readonly seen: string[] = [];
  closed = false;
  constructor(readonly name: string, readonly behave: "ok" | "fail" | "hang" = "ok") {}
  exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (this.closed) return Promise.reject(new Error(`${this.name} is closed`));
    this.seen.push(query.question.name);
    if (this.behave === "fail") return Promise.reject(new Error(`${this.name} failed`));
    if (this.behave === "hang") {
      return new Promise((_, reject) =>
        signal.addEventListener("abort", () => reject(signal.reason), { once: true })
      );
    }
    return Promise.resolve(answerOf(answerFromZone(query.wire)));
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** An UpstreamFor that makes a ZoneUpstream per spec (named by its first URL's host). */
function zoneUpstreams(behave: ZoneUpstream["behave"] = "ok") {
  const built: { spec: UpstreamSpec; hooks: UpstreamHooks; upstream: ZoneUpstream }[] = [];
  const upstreamFor: UpstreamFor = (spec, hooks) => {
    const upstream = new ZoneUpstream(new URL(spec.upstreams[0]).hostname, behave);
    built.push({ spec, hooks, upstream });
    return upstream;
  };
  const byName = (name: string) => built.find((b) => b.upstream.name === name)!.upstream;
  return { upstreamFor, built, byName };
}

function query(spec: QuerySpec = {}): Query {
  const c = classifyQuery(makeQuery(spec));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

function ctx(address = "192.0.2.10", tenantSelector?: string): QueryContext {
  return {
    face: "dot",
    signal: new AbortController().signal,
    client: { address },
    tenant: tenantSelector,
  };
}

function edeOf(info: MessageInfo): number | undefined {
  const o = info.opt?.options.find((x) => x.code === 15);
  return o ? (o.data[0] << 8) | o.data[1] : undefined;
}

describe("buildResolver: upstreams and tenants", () => {
  const TENANTS = {
    tenants: new Map<string, TenantPolicy>([
      ["kids", tenant("https://kids.test/dns-query", { upstreamStrategy: "round-robin" })],
      ["work", tenant("https://work.test/dns-query", { allow: ["198.51.100.0/24"] })],
    ]),
  };

  it("builds the global upstream, then one per tenant, with the hooks it was given", () => {
    const { upstreamFor, built } = zoneUpstreams();
    const logger = createLogger({ level: "error", sink: () => {} });
    const report = (_: ExchangeReport) => {};
    const resolver = buildResolver(options({}, { dohMethod: "GET" }), {
      upstreamFor,
      tenants: TENANTS,
      logger,
      report,
    });
    expect(built.map((b) => b.spec.upstreams)).toEqual([
      ["https://global.test/dns-query"],
      ["https://kids.test/dns-query"],
      ["https://work.test/dns-query"],
    ]);
    expect(built.map((b) => b.spec.upstreamStrategy)).toEqual([
      "failover",
      "round-robin",
      "failover",
    ]);
    // A tenant's spec keeps the global transport settings.
    expect(built.every((b) => b.spec.dohMethod === "GET")).toBe(true);
    expect(built.every((b) => b.hooks.logger === logger && b.hooks.report === report)).toBe(true);
    expect(resolver.upstreams).toEqual(built.map((b) => b.upstream));
    expect([...resolver.tenantNames]).toEqual(["kids", "work"]);
  });

  it("sends each query to its tenant's upstream, and the rest to the global one", async () => {
    const { upstreamFor, byName } = zoneUpstreams();
    const resolver = buildResolver(options(), { upstreamFor, tenants: TENANTS });
    await resolver.handler(query({ name: "a.example.test" }), ctx());
    await resolver.handler(query({ name: "b.example.test" }), ctx("192.0.2.10", "kids"));
    await resolver.handler(query({ name: "c.example.test" }), ctx("198.51.100.9", "work"));
    expect(byName("global.test").seen).toEqual(["a.example.test"]);
    expect(byName("kids.test").seen).toEqual(["b.example.test"]);
    expect(byName("work.test").seen).toEqual(["c.example.test"]);
  });

  it("refuses a tenant the client may not use, or that does not exist, alike", async () => {
    const { upstreamFor, built } = zoneUpstreams();
    const resolver = buildResolver(options(), { upstreamFor, tenants: TENANTS });
    for (const selector of ["work", "nobody"]) {
      const answer = await resolver.handler(query(), ctx("192.0.2.10", selector));
      expect(headerRcode(answer.info.flags)).toBe(Rcode.REFUSED);
    }
    expect(built.flatMap((b) => b.upstream.seen)).toEqual([]);
    expect(resolver.tenantLabel(ctx("192.0.2.10", "nobody"))).toBe("unknown");
    expect(resolver.tenantLabel(ctx("192.0.2.10", "kids"))).toBe("kids");
    expect(resolver.tenantLabel(ctx())).toBe("");
  });

  it("labels a tenant chosen by the EDNS option as one chosen by SNI or path", () => {
    const { upstreamFor } = zoneUpstreams();
    const resolver = buildResolver(options({ tenantEdnsOption: 65011 }), {
      upstreamFor,
      tenants: TENANTS,
    });
    const byOption = (selector: string) =>
      query({ opt: { options: [{ code: 65011, data: new TextEncoder().encode(selector) }] } });
    // Before, every query that chose its tenant by the option was labelled "".
    expect(resolver.tenantLabel(ctx("192.0.2.10"), byOption("kids"))).toBe("kids");
    expect(resolver.tenantLabel(ctx("192.0.2.10"), byOption("nobody"))).toBe("unknown");
    expect(resolver.tenantLabel(ctx("192.0.2.10"), byOption("work"))).toBe("unknown");
    expect(resolver.tenantLabel(ctx("192.0.2.10"), query())).toBe("");
  });

  it("sends queries that choose no tenant to the default tenant when there is one", async () => {
    const { upstreamFor, byName } = zoneUpstreams();
    const resolver = buildResolver(options(), {
      upstreamFor,
      tenants: { ...TENANTS, defaultTenant: "kids" },
    });
    await resolver.handler(query({ name: "d.example.test" }), ctx());
    expect(byName("kids.test").seen).toEqual(["d.example.test"]);
    expect(byName("global.test").seen).toEqual([]);
  });

  it("routes no tenants when none are given: a selector goes to the global upstream", async () => {
    const { upstreamFor, built } = zoneUpstreams();
    const resolver = buildResolver(options(), { upstreamFor });
    await resolver.handler(query({ name: "e.example.test" }), ctx("192.0.2.10", "kids"));
    expect(built).toHaveLength(1);
    expect(built[0].upstream.seen).toEqual(["e.example.test"]);
    expect(resolver.tenantNames.size).toBe(0);
  });
});

describe("buildResolver: the guards present when configured", () => {
  it("has an open ACL by default, and refuses clients outside allow or inside deny", async () => {
    const open = buildResolver(options(), { upstreamFor: zoneUpstreams().upstreamFor });
    expect(open.acl.open).toBe(true);
    const { upstreamFor, built } = zoneUpstreams();
    const closed = buildResolver(options({ allow: ["192.0.2.0/24"], deny: ["192.0.2.66/32"] }), {
      upstreamFor,
    });
    expect(closed.acl.open).toBe(false);
    const results: Record<string, number> = {};
    for (const address of ["192.0.2.1", "192.0.2.66", "203.0.113.5"]) {
      const answer = await closed.handler(query(), ctx(address));
      results[address] = headerRcode(answer.info.flags);
    }
    expect(results).toEqual({
      "192.0.2.1": Rcode.NOERROR,
      "192.0.2.66": Rcode.REFUSED,
      "203.0.113.5": Rcode.REFUSED,
    });
    expect(built[0].upstream.seen).toHaveLength(1);
  });

  it("rate-limits each client when a rate is set, and not at all otherwise", async () => {
    const refusedOf = async (rateLimit: number) => {
      const resolver = buildResolver(options({ rateLimit, rateLimitBurst: rateLimit }), {
        upstreamFor: zoneUpstreams().upstreamFor,
        now: () => 1_000, // the clock stands still: no tokens come back
      });
      let refused = 0;
      for (let i = 0; i < 10; i++) {
        const answer = await resolver.handler(query({ id: i, opt: {} }), ctx("192.0.2.7"));
        if (headerRcode(answer.info.flags) === Rcode.REFUSED) refused++;
      }
      const other = await resolver.handler(query({ opt: {} }), ctx("192.0.2.8"));
      expect(headerRcode(other.info.flags)).toBe(Rcode.NOERROR); // one client's limit only
      return refused;
    };
    expect(await refusedOf(3)).toBe(7);
    expect(await refusedOf(0)).toBe(0);
  });

  it("answers DDR itself when names and the faces' ports are given", async () => {
    const ddrQuery = () => {
      const c = classifyQuery(buildQuery({ name: "_dns.resolver.arpa", type: RrType.SVCB }));
      if (c.kind !== "query") throw new Error("fixture is not a query");
      return c.query;
    };
    const { upstreamFor, built } = zoneUpstreams();
    const ports = () => ({ dot: 853 });
    const on = buildResolver(options({ ddrNames: ["dns.example.test"] }), {
      upstreamFor,
      ddrPorts: ports,
    });
    const answer = await on.handler(ddrQuery(), ctx());
    expect(answer.info.ancount).toBe(1);
    expect(answer.info.question?.type).toBe(RrType.SVCB);
    expect(built[0].upstream.seen).toEqual([]);

    // No names, or no ports to advertise (an edge without faces of its own): the upstream's.
    for (const [names, ddrPorts] of [[[], ports], [["dns.example.test"], undefined]] as const) {
      const z = zoneUpstreams();
      const off = buildResolver(options({ ddrNames: names }), {
        upstreamFor: z.upstreamFor,
        ddrPorts,
      });
      await off.handler(ddrQuery(), ctx());
      expect(z.built[0].upstream.seen).toEqual(["_dns.resolver.arpa"]);
    }
  });

  it("answers SERVFAIL for a failing upstream, and within the query timeout for a hung one", async () => {
    const failing = buildResolver(options(), { upstreamFor: zoneUpstreams("fail").upstreamFor });
    const failed = await failing.handler(query({ opt: {} }), ctx());
    expect(headerRcode(failed.info.flags)).toBe(Rcode.SERVFAIL);

    const hung = buildResolver(options({ queryTimeoutMs: 50 }), {
      upstreamFor: zoneUpstreams("hang").upstreamFor,
    });
    const started = performance.now();
    const late = await hung.handler(query({ opt: {} }), ctx());
    expect(headerRcode(late.info.flags)).toBe(Rcode.SERVFAIL);
    expect(edeOf(late.info)).toBe(EdeCode.NO_REACHABLE_AUTHORITY);
    expect(performance.now() - started).toBeLessThan(2_000);
  });
});

describe("buildResolver: the cache and local records of each policy", () => {
  const TENANTS = {
    tenants: new Map<string, TenantPolicy>([
      ["cached", tenant("https://cached.test/dns-query", { cache: true })],
      ["uncached", tenant("https://uncached.test/dns-query", { localRecords: "uncached.hosts" })],
    ]),
  };

  it("asks for one store per policy whose cache is on, and tells onCacheEvent", async () => {
    const asked: (string | undefined)[] = [];
    const events: CacheEvent[] = [];
    const { upstreamFor, byName } = zoneUpstreams();
    const cacheStore = (t: string | undefined): CacheStore => {
      asked.push(t);
      return new MemoryStore({ maxEntries: 10 });
    };
    const resolver = buildResolver(options({ cache: true }), {
      upstreamFor,
      tenants: TENANTS,
      cacheStore,
      onCacheEvent: (e) => events.push(e),
    });
    expect(asked).toEqual([undefined, "cached"]);
    for (let i = 0; i < 2; i++) {
      await resolver.handler(query({ name: "c.example.test" }), ctx());
      await resolver.handler(query({ name: "c.example.test" }), ctx("192.0.2.10", "cached"));
      await resolver.handler(query({ name: "c.example.test" }), ctx("192.0.2.10", "uncached"));
    }
    expect(events).toEqual(["miss", "miss", "hit", "hit"]);
    expect(byName("global.test").seen).toHaveLength(1);
    expect(byName("cached.test").seen).toHaveLength(1);
    expect(byName("uncached.test").seen).toHaveLength(2);
  });

  it("builds no cache at all when it is off globally", async () => {
    const asked: (string | undefined)[] = [];
    const events: CacheEvent[] = [];
    const { upstreamFor, byName } = zoneUpstreams();
    const resolver = buildResolver(options({ cache: false }), {
      upstreamFor,
      tenants: TENANTS,
      cacheStore: (t) => (asked.push(t), new MemoryStore({ maxEntries: 10 })),
      onCacheEvent: (e) => events.push(e),
    });
    for (let i = 0; i < 2; i++) {
      await resolver.handler(query({ name: "c.example.test" }), ctx("192.0.2.10", "cached"));
    }
    expect(asked).toEqual([]);
    expect(events).toEqual([]);
    expect(byName("cached.test").seen).toHaveLength(2);
  });

  it("asks for local records by source and tenant, only where they are configured", () => {
    const asked: [string, string | undefined][] = [];
    buildResolver(options({ localRecords: "global.hosts" }), {
      upstreamFor: zoneUpstreams().upstreamFor,
      tenants: TENANTS,
      localRecords: (source, t) => (asked.push([source, t]), passThrough),
    });
    expect(asked).toEqual([["global.hosts", undefined], ["uncached.hosts", "uncached"]]);
  });
});

describe("buildResolver: blocklists and allowlists", () => {
  const hasher = new NameHasher([11, 12]);
  /** Lists by source, as an edge would load them (texts in memory here). */
  function lists(texts: Record<string, string>) {
    const asked: string[] = [];
    const filterLists: FilterLists = {
      hasher,
      list: (source) => {
        asked.push(source);
        return { name: source, set: parseList(texts[source] ?? "", hasher).set };
      },
    };
    return { filterLists, asked };
  }
  const TEXTS = {
    "ads.txt": "||ads.example.test^\n",
    "kids.txt": "games.example.test\n",
    "allow.txt": "ok.ads.example.test\n",
    "local.txt": "nas.example.test\n",
  };
  const TENANTS = {
    tenants: new Map<string, TenantPolicy>([
      [
        "kids",
        tenant("https://kids.test/dns-query", {
          blocklists: ["kids.txt"],
          blockResponse: "refused",
          blockTtlMs: 5_000,
        }),
      ],
      ["work", tenant("https://work.test/dns-query", { blocklists: [] })],
      ["same", tenant("https://same.test/dns-query")],
    ]),
  };

  it("puts the stage after local records and before the cache, in every policy", async () => {
    const { filterLists } = lists(TEXTS);
    const { upstreamFor, byName } = zoneUpstreams();
    const blocked: [string, string][] = [];
    const events: CacheEvent[] = [];
    const resolver = buildResolver(
      options({
        cache: true,
        localRecords: "home.hosts",
        blocklists: ["ads.txt", "local.txt"],
        allowlists: ["allow.txt"],
      }),
      {
        upstreamFor,
        tenants: TENANTS,
        filterLists,
        onBlocked: (t, l) => blocked.push([t, l]),
        onCacheEvent: (e) => events.push(e),
        // Local records answer nas.example.test before the filter could block it.
        localRecords: () => (next) => (q, c) =>
          q.question.name === "nas.example.test"
            ? Promise.resolve(answerOf(answerFromZone(q.wire)))
            : next(q, c),
      },
    );
    const rcode = async (name: string, selector?: string) =>
      headerRcode(
        (await resolver.handler(query({ name }), ctx("192.0.2.10", selector))).info.flags,
      );
    for (let i = 0; i < 2; i++) expect(await rcode("x.ads.example.test")).toBe(Rcode.NXDOMAIN);
    expect(await rcode("ok.ads.example.test")).toBe(Rcode.NOERROR);
    expect(await rcode("nas.example.test")).toBe(Rcode.NOERROR);
    expect(byName("global.test").seen).toEqual(["ok.ads.example.test"]);
    // A blocked query never reaches the cache: the one miss is ok.ads.example.test.
    expect(events).toEqual(["miss"]);
    expect(await rcode("games.example.test", "kids")).toBe(Rcode.REFUSED);
    expect(await rcode("ads.example.test", "kids")).toBe(Rcode.NOERROR);
    expect(await rcode("ads.example.test", "work")).toBe(Rcode.NOERROR);
    expect(await rcode("ads.example.test", "same")).toBe(Rcode.NXDOMAIN);
    expect(blocked).toEqual([["", "ads.txt"], ["", "ads.txt"], ["kids", "kids.txt"], [
      "same",
      "ads.txt",
    ]]);
  });

  it("checks CNAME chains below the cache: a cloaked name is fetched once, then cached", async () => {
    const { filterLists } = lists({ "trackers.txt": "tracker.example.test\n" });
    const { upstreamFor, byName } = zoneUpstreams();
    const blocked: string[] = [];
    const events: CacheEvent[] = [];
    const resolver = buildResolver(options({ cache: true, blocklists: ["trackers.txt"] }), {
      upstreamFor,
      filterLists,
      onBlocked: (_t, l) => blocked.push(l),
      onCacheEvent: (e) => events.push(e),
    });
    for (let i = 0; i < 2; i++) {
      const answer = await resolver.handler(query({ name: "via-tracker.example.test" }), ctx());
      expect(headerRcode(answer.info.flags)).toBe(Rcode.NXDOMAIN);
    }
    expect(byName("global.test").seen).toEqual(["via-tracker.example.test"]);
    expect(events).toEqual(["miss", "hit"]);
    expect(blocked).toEqual(["trackers.txt"]);
  });

  it("asks the edge for each source of each policy, tenants' own or the global ones", () => {
    const { filterLists, asked } = lists(TEXTS);
    buildResolver(options({ blocklists: ["ads.txt"], allowlists: ["allow.txt"] }), {
      upstreamFor: zoneUpstreams().upstreamFor,
      tenants: TENANTS,
      filterLists,
    });
    expect(asked).toEqual([
      "ads.txt",
      "allow.txt", // global
      "kids.txt",
      "allow.txt", // kids: its blocklist, the global allowlist
      "allow.txt", // work: no blocklist, the global allowlist
      "ads.txt",
      "allow.txt", // same
    ]);
  });

  it("filters nothing without the edge's lists, and builds no stage without sources", async () => {
    const { upstreamFor, byName } = zoneUpstreams();
    const resolver = buildResolver(options({ blocklists: ["ads.txt"] }), { upstreamFor });
    await resolver.handler(query({ name: "ads.example.test" }), ctx());
    expect(byName("global.test").seen).toEqual(["ads.example.test"]);
    const { filterLists, asked } = lists(TEXTS);
    buildResolver(options(), { upstreamFor: zoneUpstreams().upstreamFor, filterLists });
    expect(asked).toEqual([]);
  });
});

describe("buildResolver: what it holds open", () => {
  it("closes every upstream it built on close()", async () => {
    const { upstreamFor, built } = zoneUpstreams();
    const resolver = buildResolver(options(), {
      upstreamFor,
      tenants: { tenants: new Map([["kids", tenant("https://kids.test/dns-query")]]) },
    });
    expect(built.map((b) => b.upstream.closed)).toEqual([false, false]);
    await resolver.close();
    expect(built.map((b) => b.upstream.closed)).toEqual([true, true]);
  });

  it("closes what it built when a later upstreamFor throws, and throws that error", () => {
    const made: ZoneUpstream[] = [];
    const bad = new RangeError('upstream "ftp://x": unsupported scheme');
    const upstreamFor: UpstreamFor = (spec) => {
      if (spec.upstreams[0].startsWith("ftp:")) throw bad;
      const u = new ZoneUpstream(new URL(spec.upstreams[0]).hostname);
      made.push(u);
      return u;
    };
    const tenants = {
      tenants: new Map([
        ["kids", tenant("https://kids.test/dns-query")],
        ["broken", tenant("ftp://x/dns-query", { selector: "broken" })],
      ]),
    };
    expect(() => buildResolver(options(), { upstreamFor, tenants })).toThrow(bad);
    expect(made.map((u) => [u.name, u.closed])).toEqual([
      ["global.test", true],
      ["kids.test", true],
    ]);
  });

  it("closes what it built when local records fail to load", () => {
    const { upstreamFor, built } = zoneUpstreams();
    const deps: ResolverDeps = {
      upstreamFor,
      localRecords: () => {
        throw new Error("hosts: line 3: bad address");
      },
    };
    expect(() => buildResolver(options({ localRecords: "bad.hosts" }), deps)).toThrow(/line 3/);
    expect(built.map((b) => b.upstream.closed)).toEqual([true]);
  });
});

describe("buildResolver over upstreamsFrom (the real DoH upstream, an in-process transport)", () => {
  /** A DoH transport answering from the zone in this process (no socket). */
  const zoneTransport: DohTransport = (request) =>
    Promise.resolve({
      status: 200,
      contentType: "application/dns-message",
      body: answerFromZone(request.body!).slice(),
    });

  it("reports every exchange of every member to the report hook", async () => {
    const reports: ExchangeReport[] = [];
    const resolver = buildResolver(
      options({}, { upstreams: ["https://one.test/dns-query", "https://two.test/dns-query"] }),
      {
        upstreamFor: upstreamsFrom({
          doh: () => zoneTransport,
          dot: () => () => Promise.reject(new Error("no DoT here")),
        }),
        report: (r) => reports.push(r),
      },
    );
    const answer = await resolver.handler(query({ opt: {} }), ctx());
    expect(headerRcode(answer.info.flags)).toBe(Rcode.NOERROR);
    expect(reports.map((r) => [r.upstream, r.outcome])).toEqual([["https://one.test [1]", "ok"]]);
    expect(resolver.health().map((h) => h.name)).toEqual([
      "https://one.test [1]",
      "https://two.test [2]",
    ]);
    await resolver.close();
  });
});
