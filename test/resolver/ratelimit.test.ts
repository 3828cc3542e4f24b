import { answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import { EdeCode, Rcode } from "../../src/dns/constants.ts";
import { headerRcode, parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { clientKey, RateLimiter, rateLimitMiddleware } from "../../src/resolver/ratelimit.ts";
import type { Handler, QueryContext } from "../../src/pipeline/types.ts";
import { makeAnswer, makeQuery } from "../dns/fixtures.ts";

function query(id: number, edns = true): Query {
  const c = classifyQuery(makeQuery({ id, name: "rate.example", opt: edns ? {} : undefined }));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

function ctx(address?: string): QueryContext {
  return {
    face: "doh",
    signal: new AbortController().signal,
    client: address === undefined ? undefined : { address },
  };
}

/** A limiter on a clock the test moves by hand. */
function limiter(rate: number, burst?: number, maxClients?: number) {
  const clock = { now: 10_000 };
  const l = new RateLimiter({ rate, burst, maxClients, now: () => clock.now });
  return { l, clock };
}

/** How many of `n` takes for `address` succeed. */
function takes(l: RateLimiter, address: string, n: number): number {
  let ok = 0;
  for (let i = 0; i < n; i++) if (l.take(address)) ok++;
  return ok;
}

describe("clientKey", () => {
  const table: [string, string][] = [
    ["192.0.2.1", "192.0.2.1"],
    ["::ffff:192.0.2.1", "192.0.2.1"],
    ["2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::", "2001:db8:1:2::/64"],
    ["2001:db8::1", "2001:db8:0:0::/64"],
    ["2001:db8::", "2001:db8:0:0::/64"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8:0:0::/64"],
    ["2001:DB8:0:0:FFFF::1", "2001:db8:0:0::/64"],
    ["2001:db8:0:0::abcd", "2001:db8:0:0::/64"],
    ["2001:db8:a:b:c::", "2001:db8:a:b::/64"],
    ["2001:db8:a::b:c:d", "2001:db8:a:0::/64"],
    ["::1", "0:0:0:0::/64"],
    ["::", "0:0:0:0::/64"],
    ["[2001:db8::1]", "2001:db8:0:0::/64"],
    ["fe80::1%eth0", "fe80:0:0:0::/64"],
  ];
  for (const [address, key] of table) {
    it(`keys ${address} as ${key}`, () => expect(clientKey(address)).toBe(key));
  }

  it("puts every spelling of one /64 under one key and neighbours under others", () => {
    const same = [
      "2001:db8:aa:bb::1",
      "2001:db8:aa:bb:ffff:ffff:ffff:ffff",
      "2001:0DB8:00aa:00bb:0:0:0:7",
      "2001:db8:aa:bb:1::",
    ].map(clientKey);
    expect(new Set(same).size).toBe(1);
    expect(clientKey("2001:db8:aa:bc::1")).not.toBe(same[0]);
    expect(clientKey("2001:db8:ab:bb::1")).not.toBe(same[0]);
  });
});

describe("RateLimiter", () => {
  it("allows a burst, then refuses", () => {
    const { l } = limiter(5, 10);
    expect(takes(l, "192.0.2.1", 10)).toBe(10);
    expect(l.take("192.0.2.1")).toBe(false);
    expect(l.take("192.0.2.1")).toBe(false);
  });

  it("defaults the burst to one second's worth of the rate", () => {
    const { l } = limiter(7);
    expect(takes(l, "192.0.2.1", 20)).toBe(7);
  });

  it("refills at the rate as (injected) time passes, never above the burst", () => {
    const { l, clock } = limiter(10, 5);
    expect(takes(l, "192.0.2.1", 5)).toBe(5);
    expect(l.take("192.0.2.1")).toBe(false);
    clock.now += 99; // 0.99 token
    expect(l.take("192.0.2.1")).toBe(false);
    clock.now += 2; // refused takes cost nothing: 1.01 tokens now
    expect(l.take("192.0.2.1")).toBe(true);
    expect(l.take("192.0.2.1")).toBe(false);
    clock.now += 300; // 3 tokens
    expect(takes(l, "192.0.2.1", 10)).toBe(3);
    clock.now += 60_000; // a minute idle: back to the burst, not 600 tokens
    expect(takes(l, "192.0.2.1", 100)).toBe(5);
  });

  it("keeps clients apart", () => {
    const { l } = limiter(3, 3);
    expect(takes(l, "192.0.2.1", 5)).toBe(3);
    expect(takes(l, "192.0.2.2", 5)).toBe(3);
    expect(takes(l, "2001:db8::1", 5)).toBe(3);
  });

  it("limits a whole IPv6 /64 as one client, however its addresses are written", () => {
    const { l } = limiter(4, 4);
    expect(l.take("2001:db8:1:2::1")).toBe(true);
    expect(l.take("2001:db8:1:2:ffff::")).toBe(true);
    expect(l.take("2001:0db8:0001:0002:0:0:0:9")).toBe(true);
    expect(l.take("[2001:db8:1:2::abcd]")).toBe(true);
    expect(l.take("2001:db8:1:2:3:4:5:6")).toBe(false);
    // The next /64 and the IPv4-mapped form of an IPv4 client are separate.
    expect(l.take("2001:db8:1:3::1")).toBe(true);
    expect(takes(l, "::ffff:192.0.2.1", 4)).toBe(4);
    expect(l.take("192.0.2.1")).toBe(false);
    expect(l.size).toBe(3);
  });

  it("bounds its table, forgetting the least recently seen client first", () => {
    const { l } = limiter(1, 2, 3);
    // Exhaust a, b, c.
    for (const a of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) expect(takes(l, a, 2)).toBe(2);
    expect(l.size).toBe(3);
    // a is seen again (refused, but recent): b is now the least recently seen.
    expect(l.take("192.0.2.1")).toBe(false);
    expect(takes(l, "192.0.2.4", 1)).toBe(1);
    expect(l.size).toBe(3);
    // b was forgotten: it starts with a full bucket again. a and c were kept: still empty.
    expect(l.take("192.0.2.1")).toBe(false);
    expect(l.take("192.0.2.3")).toBe(false);
    expect(takes(l, "192.0.2.2", 5)).toBe(2);
    expect(l.size).toBe(3);
  });

  it("stays bounded under a flood of distinct addresses", () => {
    const { l } = limiter(1, 1, 100);
    for (let i = 0; i < 10_000; i++) l.take(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
    expect(l.size).toBe(100);
  });

  it("rejects a rate that is not above 0", () => {
    expect(() => new RateLimiter({ rate: 0 })).toThrow(RangeError);
    expect(() => new RateLimiter({ rate: -1 })).toThrow(RangeError);
    expect(() => new RateLimiter({ rate: NaN })).toThrow(RangeError);
  });
});

describe("rateLimitMiddleware", () => {
  function terminal(): { handler: Handler; calls: number[] } {
    const calls: number[] = [];
    return {
      calls,
      handler: (q) => {
        calls.push(q.info.id);
        return Promise.resolve(answerOf(makeAnswer({ id: q.info.id, name: "rate.example" })));
      },
    };
  }

  it('answers REFUSED with EDE 0 "rate limited" past the burst, without asking next', async () => {
    const t = terminal();
    const { l } = limiter(2, 2);
    const h = rateLimitMiddleware(l)(t.handler);
    const answers = [];
    for (let id = 1; id <= 4; id++) answers.push(await h(query(id), ctx("198.51.100.7")));
    const rcodes = answers.map((a) => headerRcode(parseMessage(a.wire).flags));
    expect(rcodes).toEqual([Rcode.NOERROR, Rcode.NOERROR, Rcode.REFUSED, Rcode.REFUSED]);
    expect(t.calls).toEqual([1, 2]);
    const refused = parseMessage(answers[3].wire);
    expect(refused.id).toBe(4);
    expect(refused.question?.name).toBe("rate.example");
    const ede = refused.opt?.options.find((o) => o.code === 15);
    expect(ede).toBeDefined();
    expect((ede!.data[0] << 8) | ede!.data[1]).toBe(EdeCode.OTHER);
    expect(new TextDecoder().decode(ede!.data.subarray(2))).toBe("rate limited");
  });

  it("counts another client separately and lets it through", async () => {
    const t = terminal();
    const { l } = limiter(1, 1);
    const h = rateLimitMiddleware(l)(t.handler);
    await h(query(1), ctx("198.51.100.7"));
    const other = await h(query(2), ctx("198.51.100.8"));
    const again = await h(query(3, false), ctx("198.51.100.7"));
    expect(headerRcode(parseMessage(other.wire).flags)).toBe(Rcode.NOERROR);
    expect(headerRcode(parseMessage(again.wire).flags)).toBe(Rcode.REFUSED);
    expect(parseMessage(again.wire).opt).toBeUndefined();
    expect(t.calls).toEqual([1, 2]);
  });

  it("does not limit queries without a client address", async () => {
    const t = terminal();
    const { l } = limiter(1, 1);
    const h = rateLimitMiddleware(l)(t.handler);
    for (let id = 1; id <= 5; id++) await h(query(id), ctx(undefined));
    expect(t.calls).toEqual([1, 2, 3, 4, 5]);
    expect(l.size).toBe(0);
  });
});

describe("clientKey spellings", () => {
  it.each([
    ["::FFFF:192.0.2.1", "192.0.2.1"],
    ["::ffff:c000:201", "192.0.2.1"],
    ["[2001:db8::1]:853", "2001:db8:0:0::/64"],
    ["2001:DB8:0:0:1::1", "2001:db8:0:0::/64"],
    ["192.0.2.1", "192.0.2.1"],
  ])("%s is limited as %s", (address, key) => {
    expect(clientKey(address)).toBe(key);
  });
});
