import { describe, expect, it } from "vitest";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { UpstreamGroup } from "../../src/upstream/group.ts";
import { NameRouter, RouteTable } from "../../src/upstream/routes.ts";
import type { Upstream } from "../../src/upstream/types.ts";
import { makeQuery } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";

describe("RouteTable", () => {
  const table = new RouteTable([
    ["lan", "router"],
    ["168.192.in-addr.arpa.", "router-reverse"],
    ["Corp.Example", "corp"],
    ["eng.corp.example", "eng"],
  ]);

  it.each([
    ["lan", "router"],
    ["nas.lan", "router"],
    ["a.b.c.lan", "router"],
    ["NAS.LAN", "router"],
    ["1.2.168.192.in-addr.arpa", "router-reverse"],
    ["168.192.in-addr.arpa", "router-reverse"],
    ["2.168.192.in-addr.arpa", "router-reverse"],
    ["wiki.corp.example", "corp"],
    ["eng.corp.example", "eng"],
    ["x.eng.corp.example", "eng"],
    ["xeng.corp.example", "corp"],
    ["example.com", undefined],
    ["plan", undefined],
    ["lan.example", undefined],
    ["193.168.192.in-addr.arpa.x", undefined],
    ["", undefined],
    ["evil\\.lan", undefined], // one label "evil.lan", escaped: not under lan
    ["a\\.b.lan", "router"],
  ])("%s → %s", (name, value) => {
    expect(table.lookup(name)).toBe(value);
  });

  it("refuses the root and a suffix given twice", () => {
    expect(() => new RouteTable([["", 1]])).toThrow(/root/);
    expect(() => new RouteTable([[".", 1]])).toThrow(/root/);
    expect(() => new RouteTable([["lan", 1], ["LAN.", 2]])).toThrow(/"lan" given twice/);
    expect(new RouteTable([]).size).toBe(0);
  });
});

class Named implements Upstream {
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

function query(name: string): Query {
  const c = classifyQuery(makeQuery({ name }));
  if (c.kind !== "query") throw new Error("not a query");
  return c.query;
}

describe("NameRouter", () => {
  it("sends each query to its route's upstream, or to the fallback", async () => {
    const fallback = new Named("https://dns.example:443");
    const router = new Named("udp://192.168.1.1:53");
    const upstream = new NameRouter({
      fallback,
      routes: [["lan", router], ["168.192.in-addr.arpa", router]],
    });
    const signal = new AbortController().signal;
    await upstream.exchange(query("nas.lan"), signal);
    await upstream.exchange(query("9.1.168.192.in-addr.arpa"), signal);
    await upstream.exchange(query("example.com"), signal);
    expect(router.seen).toEqual(["nas.lan", "9.1.168.192.in-addr.arpa"]);
    expect(fallback.seen).toEqual(["example.com"]);
    expect(upstream.route("x.lan")).toBe(router);
    expect(upstream.name).toBe("routes(lan, 168.192.in-addr.arpa; else https://dns.example:443)");
  });

  it("closes its upstreams only when it owns them", async () => {
    const a = new Named("a");
    const b = new Named("b");
    await new NameRouter({ fallback: a, routes: [["lan", b]] }).close();
    expect([a.closed, b.closed]).toEqual([false, false]);
    await new NameRouter({ fallback: a, routes: [["lan", b]], ownsUpstreams: true }).close();
    expect([a.closed, b.closed]).toEqual([true, true]);
  });

  it("reports the health of the groups it routes to, each once", () => {
    const group = new UpstreamGroup({ members: [new Named("m1"), new Named("m2")] });
    const upstream = new NameRouter({
      fallback: new Named("single"),
      routes: [["lan", group], ["home.arpa", group]],
    });
    expect(upstream.health().map((h) => h.name)).toEqual(["m1", "m2"]);
  });
});
