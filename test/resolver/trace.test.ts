/**
 * Where an answer came from (`QueryTrace`): the processor makes a trace only when a tap is on,
 * and each answering stage of the real pipeline (cache, local records, DDR, ACL, rate limit,
 * tenant router, SERVFAIL, upstream) says so; the tap hears it with the answer.
 *
 * @module
 */
import { describe, expect, it } from "vitest";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { RrType } from "../../src/dns/constants.ts";
import { headerRcode } from "../../src/dns/message.ts";
import type { Query } from "../../src/dns/query.ts";
import { compose, type Middleware, type QueryContext } from "../../src/pipeline/types.ts";
import { buildResolver, upstreamsFrom } from "../../src/resolver/build.ts";
import type { PolicyOptions, ResolverOptions, TenantPolicy } from "../../src/resolver/options.ts";
import { createProcessor, type TappedQuery } from "../../src/resolver/processor.ts";
import type { UpstreamSpec } from "../../src/upstream/build.ts";
import type { DohTransport } from "../../src/upstream/doh_transport.ts";
import type { Upstream } from "../../src/upstream/types.ts";
import { localRecordsMiddleware, parseLocalRecords } from "../../src/records/mod.ts";
import { makeQuery } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";
import { POLICY as ALL_OFF } from "./fixtures.ts";

const POLICY: PolicyOptions = {
  ...ALL_OFF,
  cache: true,
  deny: ["203.0.113.0/24"],
  ddrNames: ["dns.example"],
};

const SPEC: UpstreamSpec = {
  upstreams: ["https://one.test/dns-query", "https://two.test/dns-query"],
  upstreamStrategy: "failover",
  dohMethod: "POST",
  upstreamCooldownMs: 1_000,
  attemptTimeoutMs: 1_000,
};

/** The first upstream fails (HTTP 500), the second answers from the zone, after `gate`. */
function transports(gate: () => Promise<void>) {
  const zone: DohTransport = async (request) => {
    await gate();
    return {
      status: 200,
      contentType: "application/dns-message",
      body: answerFromZone(request.body!).slice(),
    };
  };
  const failing: DohTransport = () =>
    Promise.resolve({ status: 500, contentType: "text/plain", body: new Uint8Array() });
  return upstreamsFrom({
    doh: (url) => url.hostname === "one.test" ? failing : zone,
    dot: () => () => Promise.reject(new Error("no DoT here")),
  });
}

/** The real local records stage, answering `local.example`. */
const table = parseLocalRecords("192.0.2.80 local.example\n");
const localRecords = (): Middleware => localRecordsMiddleware(() => table);

function setup(policy: Partial<PolicyOptions> = {}, tenants?: Map<string, TenantPolicy>) {
  let release: () => void = () => {};
  let held = false;
  const gate = () => held ? new Promise<void>((r) => (release = r)) : Promise.resolve();
  const config = {
    upstream: SPEC,
    resolver: { ...POLICY, localRecords: "local.hosts", ...policy },
  } as ResolverOptions;
  const resolver = buildResolver(config, {
    upstreamFor: transports(gate),
    traced: true,
    ddrPorts: () => ({ dot: 853 }),
    localRecords,
    tenants: tenants && { tenants },
  });
  const tapped: TappedQuery[] = [];
  const process = createProcessor({ handler: resolver.handler, tap: (q) => tapped.push(q) });
  const ask = async (name: string, address = "192.0.2.1", type = "A", id = 7) => {
    const ctx: QueryContext = {
      face: "dot",
      signal: new AbortController().signal,
      client: { address },
    };
    const answer = await process(makeQuery({ name, type, id }), ctx);
    return { answer: answer!, tapped: tapped.at(-1)! };
  };
  const hold = () => {
    held = true;
    return () => {
      held = false;
      release();
    };
  };
  return { resolver, ask, tapped, hold };
}

describe("QueryTrace through the real pipeline", () => {
  it("says upstream with the member that answered, then cache for the same question", async () => {
    const { resolver, ask } = setup();
    const first = await ask("a.example.test");
    expect(headerRcode(first.answer.info.flags)).toBe(0);
    expect(first.tapped.trace).toEqual({ source: "upstream", upstream: "https://two.test [2]" });
    expect(first.tapped.question?.name).toBe("a.example.test");
    expect(first.tapped.answer).toBe(first.answer);
    const second = await ask("a.example.test");
    expect(second.tapped.trace.source).toBe("cache");
    await resolver.close();
  });

  it("gives each coalesced waiter the flight's source", async () => {
    const { resolver, ask, hold } = setup();
    const open = hold();
    const both = Promise.all([
      ask("c.example.test", "192.0.2.1", "A", 1),
      ask("c.example.test", "192.0.2.2", "A", 2),
    ]);
    await new Promise((r) => setTimeout(r, 20));
    open();
    const [a, b] = await both;
    expect(a.tapped.trace.source).toBe("upstream");
    expect(b.tapped.trace.source).toBe("upstream");
    expect(b.tapped.trace.upstream).toBe("https://two.test [2]");
    await resolver.close();
  });

  it("says local, ddr, refused and error where those stages answer", async () => {
    const { resolver, ask } = setup();
    expect((await ask("local.example")).tapped.trace.source).toBe("local");
    expect((await ask("_dns.resolver.arpa", "192.0.2.1", "SVCB")).tapped.trace.source).toBe("ddr");
    expect((await ask("x.example.test", "203.0.113.9")).tapped.trace.source).toBe("refused");
    await resolver.close();
  });

  it("says refused for a client past its rate", async () => {
    const { resolver, ask } = setup({ rateLimit: 1, rateLimitBurst: 1 });
    await ask("r1.example.test");
    expect((await ask("r2.example.test")).tapped.trace.source).toBe("refused");
    await resolver.close();
  });

  it("names the tenant that answered, and says refused for an unknown one", async () => {
    const tenants = new Map<string, TenantPolicy>([["kids", {
      selector: "kids",
      upstreams: ["https://two.test/dns-query"],
      upstreamStrategy: "failover",
      cache: false,
    }]]);
    const { resolver } = setup({ tenantEdnsOption: 0 }, tenants);
    const tapped: TappedQuery[] = [];
    const process = createProcessor({ handler: resolver.handler, tap: (q) => tapped.push(q) });
    const signal = new AbortController().signal;
    await process(makeQuery({ name: "k.example.test" }), { face: "doh", signal, tenant: "kids" });
    expect(tapped[0].trace).toEqual({
      source: "upstream",
      upstream: "https://two.test",
      tenant: "kids",
    });
    expect(tapped[0].ctx.tenant).toBe("kids");
    await process(makeQuery({ name: "k.example.test" }), { face: "doh", signal, tenant: "nope" });
    expect(tapped[1].trace.source).toBe("refused");
    await resolver.close();
  });

  it("says error for a SERVFAIL made here, and taps a FORMERR too", async () => {
    const hang: Upstream = {
      name: "hang",
      exchange: (_q: Query, s: AbortSignal) =>
        new Promise<Answer>((_, reject) => s.addEventListener("abort", () => reject(s.reason))),
      close: () => Promise.resolve(),
    };
    const resolver = buildResolver(
      {
        upstream: SPEC,
        resolver: { ...POLICY, queryTimeoutMs: 50, ddrNames: [] },
      } as ResolverOptions,
      { upstreamFor: () => hang, traced: true },
    );
    const tapped: TappedQuery[] = [];
    const process = createProcessor({ handler: resolver.handler, tap: (q) => tapped.push(q) });
    const signal = new AbortController().signal;
    const answer = await process(makeQuery({ name: "slow.example.test" }), { face: "dot", signal });
    expect(headerRcode(answer!.info.flags)).toBe(2);
    expect(tapped[0].trace.source).toBe("error");
    const formerr = makeQuery({ name: "f.example.test", response: true });
    await process(formerr, { face: "dot", signal });
    expect(tapped[1].trace.source).toBe("error");
    expect(headerRcode(tapped[1].answer.info.flags)).toBe(1);
    await resolver.close();
  });
});

describe("no tap, no trace", () => {
  it("hands the handler the face's own context, with no trace", async () => {
    const seen: QueryContext[] = [];
    const handler = compose([], (query, ctx) => {
      seen.push(ctx);
      return Promise.resolve(answerOf(answerFromZone(query.wire)));
    });
    const faceCtx: QueryContext = { face: "dot", signal: new AbortController().signal };
    await createProcessor({ handler })(makeQuery({}), faceCtx);
    expect(seen[0]).toBe(faceCtx);
    expect(seen[0].trace).toBeUndefined();
    await createProcessor({ handler, tap: () => {} })(makeQuery({}), faceCtx);
    expect(seen[1]).not.toBe(faceCtx);
    expect(seen[1].trace).toEqual({});
    expect(RrType.A).toBe(1);
  });
});
