import { answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import { EdeCode, Rcode } from "../../src/dns/constants.ts";
import { headerRcode, parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { Acl, aclMiddleware } from "../../src/resolver/acl.ts";
import type { Handler, QueryContext } from "../../src/pipeline/types.ts";
import { makeAnswer, makeQuery } from "../dns/fixtures.ts";

function query(id = 0x4242, edns = true): Query {
  const c = classifyQuery(makeQuery({ id, name: "acl.example", opt: edns ? {} : undefined }));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

function ctx(address?: string): QueryContext {
  return {
    face: "dot",
    signal: new AbortController().signal,
    client: address === undefined ? undefined : { address, port: 5353 },
  };
}

/** The RFC 8914 EDE info code of a response, if any. */
function edeOf(wire: Uint8Array): number | undefined {
  const ede = parseMessage(wire).opt?.options.find((o) => o.code === 15);
  return ede ? (ede.data[0] << 8) | ede.data[1] : undefined;
}

describe("Acl", () => {
  it("lets everyone in when both lists are empty", () => {
    const acl = new Acl();
    expect(acl.open).toBe(true);
    for (const a of ["127.0.0.1", "203.0.113.9", "::1", "2001:db8::1", "not an address"]) {
      expect(acl.allows(a)).toBe(true);
    }
  });

  const cases: {
    name: string;
    allow?: string[];
    deny?: string[];
    allowed: string[];
    refused: string[];
  }[] = [
    {
      name: "allow list only (IPv4 CIDR and single address)",
      allow: ["10.0.0.0/8", "192.0.2.7"],
      allowed: ["10.0.0.1", "10.255.255.255", "192.0.2.7"],
      refused: ["11.0.0.1", "127.0.0.1", "192.0.2.8", "9.255.255.255", "::1"],
    },
    {
      name: "deny list only",
      deny: ["127.0.0.1", "198.51.100.0/24"],
      allowed: ["127.0.0.2", "198.51.101.1", "::1", "2001:db8::1"],
      refused: ["127.0.0.1", "198.51.100.0", "198.51.100.255"],
    },
    {
      name: "deny wins over allow",
      allow: ["10.0.0.0/8"],
      deny: ["10.1.0.0/16"],
      allowed: ["10.0.0.1", "10.2.3.4"],
      refused: ["10.1.0.1", "10.1.255.255", "172.16.0.1"],
    },
    {
      name: "IPv6 ranges",
      allow: ["2001:db8::/32", "::1"],
      deny: ["2001:db8:bad::/48"],
      allowed: ["2001:db8::1", "2001:db8:ffff::1", "::1", "[::1]", "2001:DB8::A"],
      refused: ["2001:db9::1", "2001:db8:bad::1", "::2", "127.0.0.1", "fe80::1"],
    },
    {
      name: "IPv6 zone identifiers are ignored",
      allow: ["fe80::/10"],
      allowed: ["fe80::1%eth0", "fe80::abcd%2"],
      refused: ["2001:db8::1%eth0"],
    },
    {
      name: "IPv4-mapped IPv6 clients are matched as IPv4",
      allow: ["192.0.2.0/24"],
      deny: ["192.0.2.66"],
      allowed: ["::ffff:192.0.2.1", "192.0.2.1", "::FFFF:192.0.2.200"],
      refused: ["::ffff:192.0.2.66", "::ffff:198.51.100.1", "192.0.2.66"],
    },
    {
      name: "IPv4-mapped IPv6 entries are matched as IPv4",
      allow: ["::ffff:10.0.0.0/104"],
      deny: ["::ffff:10.9.9.9"],
      allowed: ["10.1.2.3", "::ffff:10.1.2.3"],
      refused: ["10.9.9.9", "11.0.0.1", "::ffff:11.0.0.1"],
    },
    {
      name: "unparseable client addresses are refused unless the ACL is open",
      deny: ["203.0.113.0/24"],
      allowed: ["198.51.100.1"],
      refused: ["", "localhost", "300.1.1.1", "::g"],
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const acl = new Acl({ allow: c.allow, deny: c.deny });
      expect(acl.open).toBe(false);
      for (const a of c.allowed) expect([a, acl.allows(a)]).toEqual([a, true]);
      for (const a of c.refused) expect([a, acl.allows(a)]).toEqual([a, false]);
    });
  }

  const bad: [string, { allow?: string[]; deny?: string[] }, RegExp][] = [
    ["a host name in allow", { allow: ["10.0.0.0/8", "example.com"] }, /allow: "example\.com"/],
    ["a prefix too long", { deny: ["10.0.0.0/33"] }, /deny: "10\.0\.0\.0\/33"/],
    ["an IPv6 prefix too long", { allow: ["2001:db8::/129"] }, /allow: "2001:db8::\/129"/],
    ["a bad octet", { deny: ["256.0.0.1"] }, /deny: "256\.0\.0\.1"/],
    ["an empty entry", { allow: [""] }, /allow: ""/],
    ["a non-numeric prefix", { allow: ["10.0.0.0/x"] }, /allow: "10\.0\.0\.0\/x"/],
  ];
  for (const [what, options, message] of bad) {
    it(`throws a RangeError naming ${what}`, () => {
      expect(() => new Acl(options)).toThrow(RangeError);
      expect(() => new Acl(options)).toThrow(message);
    });
  }
});

describe("aclMiddleware", () => {
  function terminal(): { handler: Handler; calls: number[] } {
    const calls: number[] = [];
    return {
      calls,
      handler: (q) => {
        calls.push(q.info.id);
        return Promise.resolve(answerOf(makeAnswer({ id: q.info.id, name: "acl.example" })));
      },
    };
  }

  it("answers REFUSED with EDE 18 (Prohibited) to a refused client, without asking next", async () => {
    const t = terminal();
    const h = aclMiddleware(new Acl({ deny: ["192.0.2.0/24"] }))(t.handler);
    const answer = await h(query(0x1111), ctx("192.0.2.9"));
    const info = parseMessage(answer.wire);
    expect(info.id).toBe(0x1111);
    expect(headerRcode(info.flags)).toBe(Rcode.REFUSED);
    expect(info.flags & 0x8000).toBe(0x8000);
    expect(info.question?.name).toBe("acl.example");
    expect(edeOf(answer.wire)).toBe(EdeCode.PROHIBITED);
    expect(t.calls).toEqual([]);
  });

  it("answers REFUSED without an OPT record when the query had none", async () => {
    const t = terminal();
    const h = aclMiddleware(new Acl({ allow: ["10.0.0.0/8"] }))(t.handler);
    const answer = await h(query(0x2222, false), ctx("::1"));
    const info = parseMessage(answer.wire);
    expect(headerRcode(info.flags)).toBe(Rcode.REFUSED);
    expect(info.opt).toBeUndefined();
    expect(t.calls).toEqual([]);
  });

  it("passes allowed clients on to the next handler", async () => {
    const t = terminal();
    const h = aclMiddleware(new Acl({ allow: ["10.0.0.0/8"], deny: ["10.0.0.66"] }))(t.handler);
    const answer = await h(query(0x3333), ctx("::ffff:10.0.0.1"));
    expect(headerRcode(parseMessage(answer.wire).flags)).toBe(Rcode.NOERROR);
    expect(t.calls).toEqual([0x3333]);
  });

  it("is a pass-through when the ACL is open", () => {
    const t = terminal();
    expect(aclMiddleware(new Acl())(t.handler)).toBe(t.handler);
  });

  it("passes queries without a client address (in-process callers) on", async () => {
    const t = terminal();
    const h = aclMiddleware(new Acl({ allow: ["10.0.0.0/8"] }))(t.handler);
    await h(query(0x4444), ctx(undefined));
    expect(t.calls).toEqual([0x4444]);
  });
});
