/**
 * Routes by name through the resolver builder: the longest suffix picks the group, reverse zones
 * route alike, names under no route go to the default upstreams, each route's group is built
 * once and shared by every policy (tenants too), local records still answer first, the cache is
 * one, and the route groups show in the resolver's upstreams and health.
 *
 * @module
 */
import { describe, expect, it } from "vitest";
import { MemoryStore } from "../../src/cache/memory.ts";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { headerRcode } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import type { Middleware, QueryContext } from "../../src/pipeline/types.ts";
import { buildResolver, type UpstreamFor } from "../../src/resolver/build.ts";
import type { PolicyOptions, ResolverOptions, TenantPolicy } from "../../src/resolver/options.ts";
import type { UpstreamSpec } from "../../src/upstream/build.ts";
import { UpstreamGroup } from "../../src/upstream/group.ts";
import type { Upstream } from "../../src/upstream/types.ts";
import { makeQuery, type QuerySpec } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";
import { POLICY } from "./fixtures.ts";

const ROUTES = {
  lan: ["udp://192.168.1.1"],
  "168.192.in-addr.arpa": ["udp://192.168.1.1"],
  "corp.example": ["tcp://10.0.0.53", "tcp://10.0.0.54"],
  "eng.corp.example": ["tls://10.9.0.53#dns.eng.corp.example"],
};

function options(
  policy: Partial<PolicyOptions> = {},
  routes: Record<string, string[]> = ROUTES,
): ResolverOptions {
  const upstream: UpstreamSpec = {
    upstreams: ["https://default.test/dns-query"],
    upstreamStrategy: "failover",
    dohMethod: "POST",
    upstreamCooldownMs: 1_000,
    attemptTimeoutMs: 1_000,
    routes,
  };
  return { upstream, resolver: { ...POLICY, ...policy } };
}

/** An upstream answering from the test zone; records the names it was asked. */
class ZoneUpstream implements Upstream {
  readonly seen: string[] = [];
  closed = false;
  constructor(readonly name: string) {}
  exchange(query: Query): Promise<Answer> {
    this.seen.push(query.question.name);
    return Promise.resolve(answerOf(answerFromZone(query.wire)));
  }
  close(): Promise<void> {
    this.closed = true;
    return Promise.resolve();
  }
}

/** An UpstreamFor that makes one ZoneUpstream per spec, named by its URLs. */
function zoneUpstreams() {
  const built: { spec: UpstreamSpec; upstream: ZoneUpstream }[] = [];
  const upstreamFor: UpstreamFor = (spec) => {
    const upstream = new ZoneUpstream(spec.upstreams.join(" "));
    built.push({ spec, upstream });
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

function ctx(tenant?: string): QueryContext {
  return {
    face: "dot",
    signal: new AbortController().signal,
    client: { address: "192.0.2.10" },
    tenant,
  };
}

describe("routes by name", () => {
  it.each([
    ["nas.lan", "udp://192.168.1.1"],
    ["LAN", "udp://192.168.1.1"], // the suffix itself, in any case
    ["printer.office.lan", "udp://192.168.1.1"],
    ["20.1.168.192.in-addr.arpa", "udp://192.168.1.1"], // a reverse zone, the same way
    ["wiki.corp.example", "tcp://10.0.0.53 tcp://10.0.0.54"],
    ["build.eng.corp.example", "tls://10.9.0.53#dns.eng.corp.example"], // the longest suffix
    ["example.com", "https://default.test/dns-query"],
    ["notlan", "https://default.test/dns-query"], // a suffix matches whole labels only
    ["1.1.168.193.in-addr.arpa", "https://default.test/dns-query"],
    ["corp.example.com", "https://default.test/dns-query"],
  ])("sends %s to %s", async (name, upstreamName) => {
    const { upstreamFor, built } = zoneUpstreams();
    const resolver = buildResolver(options(), { upstreamFor });
    const answer = await resolver.handler(query({ name }), ctx());
    expect(headerRcode(answer.info.flags)).toBe(0);
    const asked = built.filter((b) => b.upstream.seen.length > 0).map((b) => b.upstream.name);
    expect(asked).toEqual([upstreamName]);
  });

  it("builds each route's group once, with the policy's strategy, shared by routes and tenants", () => {
    const { upstreamFor, built } = zoneUpstreams();
    const tenants = {
      tenants: new Map<string, TenantPolicy>([
        // Inherits the global routes.
        ["kids", {
          selector: "kids",
          upstreams: ["https://kids.test/dns-query"],
          upstreamStrategy: "failover",
          cache: false,
        }],
        // Its own routes: one shared with the global policy's, one of its own.
        ["work", {
          selector: "work",
          upstreams: ["https://work.test/dns-query"],
          upstreamStrategy: "failover",
          cache: false,
          routes: { lan: ["udp://192.168.1.1"], "vpn.example": ["tcp://10.8.0.1"] },
        }],
      ]),
    };
    const resolver = buildResolver(options(), { upstreamFor, tenants });
    expect(built.map((b) => b.spec.upstreams.join(" "))).toEqual([
      "https://default.test/dns-query",
      "udp://192.168.1.1",
      "tcp://10.0.0.53 tcp://10.0.0.54",
      "tls://10.9.0.53#dns.eng.corp.example",
      "https://kids.test/dns-query",
      "https://work.test/dns-query",
      "tcp://10.8.0.1",
    ]);
    // A route's spec is the policy's, with the route's URLs and no routes of its own.
    expect(built.every((b) => b.spec.upstreamStrategy === "failover")).toBe(true);
    expect(built.map((b) => b.spec.routes === undefined)).toEqual([
      false,
      true,
      true,
      true,
      false,
      false,
      true,
    ]);
    expect(resolver.upstreams).toEqual(built.map((b) => b.upstream));
  });

  it("routes a tenant's names by its own routes, or by the global ones when it has none", async () => {
    const { upstreamFor, byName } = zoneUpstreams();
    const tenants = {
      tenants: new Map<string, TenantPolicy>([
        ["kids", {
          selector: "kids",
          upstreams: ["https://kids.test/dns-query"],
          upstreamStrategy: "failover",
          cache: false,
        }],
        ["guest", {
          selector: "guest",
          upstreams: ["https://guest.test/dns-query"],
          upstreamStrategy: "failover",
          cache: false,
          routes: {}, // none at all
        }],
      ]),
    };
    const resolver = buildResolver(options(), { upstreamFor, tenants });
    await resolver.handler(query({ name: "nas.lan" }), ctx("kids"));
    await resolver.handler(query({ name: "nas.lan" }), ctx("guest"));
    await resolver.handler(query({ name: "example.com" }), ctx("kids"));
    expect(byName("udp://192.168.1.1").seen).toEqual(["nas.lan"]);
    expect(byName("https://guest.test/dns-query").seen).toEqual(["nas.lan"]);
    expect(byName("https://kids.test/dns-query").seen).toEqual(["example.com"]);
  });

  it("lets local records answer first, and shares the cache across routes", async () => {
    const { upstreamFor, byName } = zoneUpstreams();
    const local: Middleware = (next) => (q, c) =>
      q.question.name === "router.lan"
        ? Promise.resolve(answerOf(answerFromZone(q.wire)))
        : next(q, c);
    const store = new MemoryStore({ maxEntries: 100 });
    const resolver = buildResolver(options({ cache: true, localRecords: "local.hosts" }), {
      upstreamFor,
      localRecords: () => local,
      cacheStore: () => store,
    });
    await resolver.handler(query({ name: "router.lan" }), ctx());
    await resolver.handler(query({ name: "nas.lan" }), ctx());
    await resolver.handler(query({ name: "nas.lan", id: 7 }), ctx());
    await resolver.handler(query({ name: "example.com" }), ctx());
    await resolver.handler(query({ name: "example.com", id: 8 }), ctx());
    expect(byName("udp://192.168.1.1").seen).toEqual(["nas.lan"]);
    expect(byName("https://default.test/dns-query").seen).toEqual(["example.com"]);
    expect(store.size).toBe(2);
  });

  it("shows every route group's members in health, and closes each once", async () => {
    const made: UpstreamGroup[] = [];
    const upstreamFor: UpstreamFor = (spec) => {
      const members = spec.upstreams.map((u) => new ZoneUpstream(u));
      const group = new UpstreamGroup({ members });
      made.push(group);
      return group;
    };
    const resolver = buildResolver(options(), { upstreamFor });
    expect(resolver.health().map((h) => h.name)).toEqual([
      "https://default.test/dns-query",
      "udp://192.168.1.1",
      "tcp://10.0.0.53",
      "tcp://10.0.0.54",
      "tls://10.9.0.53#dns.eng.corp.example",
    ]);
    await resolver.close();
  });

  it("builds no router without routes: the policy's upstream is asked directly", async () => {
    const { upstreamFor, built } = zoneUpstreams();
    const resolver = buildResolver(options({}, {}), { upstreamFor });
    await resolver.handler(query({ name: "nas.lan" }), ctx());
    expect(built.map((b) => b.upstream.name)).toEqual(["https://default.test/dns-query"]);
    expect(built[0].upstream.seen).toEqual(["nas.lan"]);
  });
});
