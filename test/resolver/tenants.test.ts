import { answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { tenantRouter } from "../../src/resolver/tenants.ts";
import type { Handler, QueryContext } from "../../src/resolver/types.ts";
import { answerFromZone } from "../support/zone.ts";

function query(tenantOption?: string): Query {
  const wire = new Uint8Array(dnsPacket.encode({
    type: "query",
    id: 9,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "A", name: "t.example.test" }],
    additionals: [{
      type: "OPT",
      name: ".",
      udpPayloadSize: 1232,
      options: tenantOption ? [{ code: 65011, data: Buffer.from(tenantOption) }] : [],
    } as unknown as dnsPacket.Answer],
  }));
  const c = classifyQuery(wire);
  if (c.kind !== "query") throw new Error("not a query");
  return c.query;
}

function recorder(label: string, seen: { who: string; ctx: QueryContext; q: Query }[]): Handler {
  return (q, ctx) => {
    seen.push({ who: label, ctx, q });
    return Promise.resolve(answerOf(answerFromZone(q.wire)));
  };
}

const ctx = (tenant?: string): QueryContext => ({
  face: "dot",
  signal: new AbortController().signal,
  tenant,
});

describe("tenantRouter", () => {
  function setup(options: { defaultTenant?: string; unknown?: "refuse" | "default" } = {}) {
    const seen: { who: string; ctx: QueryContext; q: Query }[] = [];
    const tenants = new Map([["kids", recorder("kids", seen)], ["home", recorder("home", seen)]]);
    const handler = tenantRouter({ tenants, ...options })(recorder("global", seen));
    return { seen, handler };
  }

  it("routes by ctx.tenant", async () => {
    const { seen, handler } = setup();
    await handler(query(), ctx("kids"));
    expect(seen.map((s) => s.who)).toEqual(["kids"]);
  });

  it("routes by the EDNS option and removes it from the query", async () => {
    const { seen, handler } = setup();
    await handler(query("Kids"), ctx());
    expect(seen[0].who).toBe("kids");
    expect(seen[0].ctx.tenant).toBe("kids");
    expect(parseMessage(seen[0].q.wire).opt!.options.map((o) => o.code)).not.toContain(65011);
  });

  it("prefers the face's tenant over the EDNS option, but still strips the option", async () => {
    const { seen, handler } = setup();
    await handler(query("home"), ctx("kids"));
    expect(seen[0].who).toBe("kids");
    expect(seen[0].q.info.opt!.options).toHaveLength(0);
  });

  it("sends queries without a tenant to next, or to the default tenant", async () => {
    const a = setup();
    await a.handler(query(), ctx());
    expect(a.seen[0].who).toBe("global");
    const b = setup({ defaultTenant: "home" });
    await b.handler(query(), ctx());
    expect(b.seen[0].who).toBe("home");
  });

  it("refuses unknown tenants, or falls back when told to", async () => {
    const a = setup();
    const refused = await a.handler(query(), ctx("nobody"));
    expect(refused.wire[3] & 0x0f).toBe(5);
    expect(a.seen).toHaveLength(0);
    const b = setup({ unknown: "default", defaultTenant: "home" });
    await b.handler(query("nobody"), ctx());
    expect(b.seen[0].who).toBe("home");
  });
});
