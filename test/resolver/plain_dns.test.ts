/**
 * The plain DNS face's policy in the resolver: not an open resolver by default (clients outside
 * the local ranges get REFUSED unless `--allow` says otherwise), ANY answered with RFC 8482's
 * HINFO, and the other faces untouched.
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { EdeCode, Rcode } from "../../src/dns/constants.ts";
import { headerRcode, parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { PRIVATE_RANGES } from "../../src/net/private_ranges.ts";
import type { Face, QueryContext } from "../../src/pipeline/types.ts";
import { buildResolver } from "../../src/resolver/build.ts";
import type { PolicyOptions, ResolverOptions } from "../../src/resolver/options.ts";
import { ANY_HINFO_TTL, memoizedMembership, NOT_OPEN_TEXT } from "../../src/resolver/plain_dns.ts";
import type { Upstream } from "../../src/upstream/types.ts";
import { makeQuery, type QuerySpec } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";
import { POLICY } from "./fixtures.ts";

function options(policy: Partial<PolicyOptions> = {}, defaultAllow = PRIVATE_RANGES) {
  return {
    upstream: {
      upstreams: ["https://default.test/dns-query"],
      upstreamStrategy: "failover",
      dohMethod: "POST",
      upstreamCooldownMs: 1_000,
      attemptTimeoutMs: 1_000,
    },
    resolver: { ...POLICY, ...policy },
    dns: { defaultAllow },
  } satisfies ResolverOptions;
}

class ZoneUpstream implements Upstream {
  readonly name = "zone";
  readonly seen: string[] = [];
  exchange(query: Query): Promise<Answer> {
    this.seen.push(query.question.name);
    return Promise.resolve(answerOf(answerFromZone(query.wire)));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function query(spec: QuerySpec = {}): Query {
  const c = classifyQuery(makeQuery(spec));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

function ctx(face: Face, address: string): QueryContext {
  return { face, signal: new AbortController().signal, client: { address } };
}

function ede(answer: Answer): { code: number; text: string } | undefined {
  const o = answer.info.opt?.options.find((x) => x.code === 15);
  return o && {
    code: (o.data[0] << 8) | o.data[1],
    text: new TextDecoder().decode(o.data.subarray(2)),
  };
}

describe("the plain DNS face's policy", () => {
  it.each([
    ["127.0.0.1", Rcode.NOERROR],
    ["192.168.1.20", Rcode.NOERROR],
    ["10.1.2.3", Rcode.NOERROR],
    ["100.64.9.9", Rcode.NOERROR],
    ["fd00::7", Rcode.NOERROR],
    ["fe80::1", Rcode.NOERROR],
    ["203.0.113.9", Rcode.REFUSED],
    ["2001:db8::1", Rcode.REFUSED],
  ])("answers %s on the plain face with rcode %d by default", async (address, rcode) => {
    const upstream = new ZoneUpstream();
    const resolver = buildResolver(options(), { upstreamFor: () => upstream });
    const answer = await resolver.handler(query({ opt: {} }), ctx("dns", address));
    expect(headerRcode(answer.info.flags)).toBe(rcode);
    expect(resolver.plainDnsAllows(address)).toBe(rcode === Rcode.NOERROR);
    if (rcode === Rcode.REFUSED) {
      expect(ede(answer)).toEqual({ code: EdeCode.PROHIBITED, text: NOT_OPEN_TEXT });
      expect(upstream.seen).toEqual([]);
    }
  });

  it("answers public clients on the encrypted faces as before", async () => {
    const upstream = new ZoneUpstream();
    const resolver = buildResolver(options(), { upstreamFor: () => upstream });
    for (const face of ["dot", "doh", "doq"] as const) {
      const answer = await resolver.handler(query(), ctx(face, "203.0.113.9"));
      expect(headerRcode(answer.info.flags), face).toBe(Rcode.NOERROR);
    }
  });

  it("takes another default set (--dns-default-allow)", async () => {
    const resolver = buildResolver(options({}, ["127.0.0.1/32"]), {
      upstreamFor: () => new ZoneUpstream(),
    });
    const h = (address: string) => resolver.handler(query(), ctx("dns", address));
    expect(headerRcode((await h("127.0.0.1")).info.flags)).toBe(Rcode.NOERROR);
    expect(headerRcode((await h("127.0.0.2")).info.flags)).toBe(Rcode.REFUSED);
    expect(headerRcode((await h("192.168.1.1")).info.flags)).toBe(Rcode.REFUSED);
  });

  it("leaves who to --allow when it is set: public clients in it are answered, others refused", async () => {
    const resolver = buildResolver(options({ allow: ["203.0.113.0/24"] }), {
      upstreamFor: () => new ZoneUpstream(),
    });
    const h = (address: string) => resolver.handler(query(), ctx("dns", address));
    expect(headerRcode((await h("203.0.113.9")).info.flags)).toBe(Rcode.NOERROR);
    expect(headerRcode((await h("192.168.1.1")).info.flags)).toBe(Rcode.REFUSED); // the ACL's
    expect(resolver.plainDnsAllows("203.0.113.9")).toBe(true);
  });

  it("answers whoever the ACL lets through without a dns section (a builder's literal)", async () => {
    const { dns: _dns, ...bare } = options();
    const resolver = buildResolver(bare, { upstreamFor: () => new ZoneUpstream() });
    const answer = await resolver.handler(query(), ctx("dns", "203.0.113.9"));
    expect(headerRcode(answer.info.flags)).toBe(Rcode.NOERROR);
  });

  it("answers ANY with one HINFO RFC8482 record (RFC 8482 §4.2), without the upstream", async () => {
    const upstream = new ZoneUpstream();
    const resolver = buildResolver(options(), { upstreamFor: () => upstream });
    for (const opt of [undefined, { udpSize: 4096 }]) {
      const answer = await resolver.handler(
        query({ name: "Example.COM", type: "ANY", id: 99, ...(opt ? { opt } : {}) }),
        ctx("dns", "192.168.1.5"),
      );
      expect(answer.info).toEqual(parseMessage(answer.wire));
      const p = dnsPacket.decode(Buffer.from(answer.wire));
      expect(p.id).toBe(99);
      expect(headerRcode(answer.info.flags)).toBe(Rcode.NOERROR);
      expect(p.questions).toEqual([{ name: "Example.COM", type: "ANY", class: "IN" }]);
      expect(p.answers).toEqual([{
        name: "Example.COM",
        type: "HINFO",
        ttl: ANY_HINFO_TTL,
        class: "IN",
        flush: false,
        data: { cpu: "RFC8482", os: "" },
      }]);
      expect(Boolean(answer.info.opt)).toBe(opt !== undefined);
    }
    expect(upstream.seen).toEqual([]);
  });

  it("forwards ANY from the other faces", async () => {
    const upstream = new ZoneUpstream();
    const resolver = buildResolver(options(), { upstreamFor: () => upstream });
    await resolver.handler(query({ name: "example.com", type: "ANY" }), ctx("dot", "192.0.2.1"));
    expect(upstream.seen).toEqual(["example.com"]);
  });

  it("refuses ANY from a client outside the ranges too (the refusal comes first)", async () => {
    const resolver = buildResolver(options(), { upstreamFor: () => new ZoneUpstream() });
    const answer = await resolver.handler(query({ type: "ANY" }), ctx("dns", "198.51.100.1"));
    expect(headerRcode(answer.info.flags)).toBe(Rcode.REFUSED);
  });
});

describe("memoizedMembership", () => {
  it("asks once per address, and forgets everything past its size", () => {
    const asked: string[] = [];
    const member = memoizedMembership((a) => {
      asked.push(a);
      return a.startsWith("10.");
    }, 2);
    expect([member("10.0.0.1"), member("10.0.0.1"), member("8.8.8.8")]).toEqual([
      true,
      true,
      false,
    ]);
    expect(asked).toEqual(["10.0.0.1", "8.8.8.8"]);
    member("1.1.1.1"); // the third: the memory starts over
    member("10.0.0.1");
    expect(asked).toEqual(["10.0.0.1", "8.8.8.8", "1.1.1.1", "10.0.0.1"]);
  });
});
