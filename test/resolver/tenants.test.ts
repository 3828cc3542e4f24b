import { answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { TENANT_UNAVAILABLE, tenantRouter, TenantTable } from "../../src/resolver/tenants.ts";
import type { Handler, QueryContext } from "../../src/pipeline/types.ts";
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

const ctx = (tenant?: string, address = "192.0.2.7"): QueryContext => ({
  face: "dot",
  signal: new AbortController().signal,
  client: { address },
  tenant,
});

type Seen = { who: string; ctx: QueryContext; q: Query }[];

/** `kids` and `home` by name, `work` by id and from 10.0.0.0/8 only. */
function routes(seen: Seen) {
  return [
    { name: "kids", selector: "kids", handler: recorder("kids", seen) },
    { name: "home", selector: "home", handler: recorder("home", seen) },
    {
      name: "work",
      selector: "9y65g5srsm",
      allow: ["10.0.0.0/8"],
      handler: recorder("work", seen),
    },
  ];
}

describe("tenantRouter", () => {
  function setup(options: { defaultTenant?: string; unknown?: "refuse" | "default" } = {}) {
    const seen: Seen = [];
    const handler = tenantRouter({ tenants: routes(seen), ...options })(recorder("global", seen));
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

  it("routes to a tenant with an id by its id and hands on its name", async () => {
    const { seen, handler } = setup();
    await handler(query("9Y65G5SRSM"), ctx(undefined, "10.1.2.3"));
    await handler(query(), ctx("9y65g5srsm", "10.1.2.3"));
    expect(seen.map((s) => [s.who, s.ctx.tenant])).toEqual([["work", "work"], ["work", "work"]]);
  });

  it("does not route to a tenant with an id by its name", async () => {
    const { seen, handler } = setup();
    const byOption = await handler(query("work"), ctx(undefined, "10.1.2.3"));
    const byFace = await handler(query(), ctx("work", "10.1.2.3"));
    expect(seen).toHaveLength(0);
    expect(byOption.wire[3] & 0x0f).toBe(5);
    expect(byFace.wire[3] & 0x0f).toBe(5);
  });

  it("keeps clients outside a tenant's allow list out, however they choose it", async () => {
    const { seen, handler } = setup();
    const answers = [
      await handler(query("9y65g5srsm"), ctx()),
      await handler(query(), ctx("9y65g5srsm")),
      await handler(query(), { ...ctx("9y65g5srsm"), client: undefined }),
    ];
    expect(seen).toHaveLength(0);
    for (const a of answers) expect(a.wire[3] & 0x0f).toBe(5);
  });

  it("answers an unknown tenant and a not-allowed one byte for byte alike, naming neither", async () => {
    const { handler } = setup();
    const unknown = await handler(query("nobody"), ctx());
    const notAllowed = await handler(query("9y65g5srsm"), ctx());
    expect(notAllowed.wire).toEqual(unknown.wire);
    const text = new TextDecoder().decode(unknown.wire);
    expect(text).toContain(TENANT_UNAVAILABLE);
    expect(text).not.toMatch(/work|9y65g5srsm|nobody/);
  });

  it("sends a not-allowed tenant where an unknown one goes with unknown=default", async () => {
    const { seen, handler } = setup({ unknown: "default", defaultTenant: "home" });
    await handler(query("9y65g5srsm"), ctx());
    await handler(query("nobody"), ctx());
    expect(seen.map((s) => [s.who, s.ctx.tenant])).toEqual([["home", "home"], ["home", "home"]]);
  });

  it("holds the default tenant to its allow list too", async () => {
    const seen: Seen = [];
    const global = recorder("global", seen);
    const refuse = tenantRouter({ tenants: routes(seen), defaultTenant: "work" })(global);
    expect((await refuse(query(), ctx())).wire[3] & 0x0f).toBe(5);
    await refuse(query(), ctx(undefined, "10.9.9.9"));
    const fallBack = tenantRouter({
      tenants: routes(seen),
      defaultTenant: "work",
      unknown: "default",
    })(global);
    await fallBack(query(), ctx());
    expect(seen.map((s) => s.who)).toEqual(["work", "global"]);
  });
});

describe("TenantTable.label", () => {
  const table = new TenantTable(routes([]));

  it.each([
    ["no tenant", undefined, "192.0.2.7", ""],
    ["a name", "kids", "192.0.2.7", "kids"],
    ["an id, from inside its allow list", "9y65g5srsm", "10.0.0.1", "work"],
    ["an id, from outside its allow list", "9y65g5srsm", "192.0.2.7", "unknown"],
    ["the name of a tenant that has an id", "work", "10.0.0.1", "unknown"],
    ["an unknown selector", "nobody", "10.0.0.1", "unknown"],
  ])("labels %s", (_what, tenant, address, label) => {
    expect(table.label(ctx(tenant, address))).toBe(label);
  });
});
