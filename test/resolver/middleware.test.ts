import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { EdeCode, Rcode } from "../../src/dns/constants.ts";
import { headerRcode, type MessageInfo, parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { createLogger, type Logger } from "../../src/log/mod.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { buildResolver } from "../../src/resolver/build.ts";
import {
  extendedErrorFor,
  fromUpstream,
  servfailOnError,
  timeout,
  upstreamPrivacy,
  withTenant,
} from "../../src/resolver/middleware.ts";
import { compose, type Handler, passThrough, type QueryContext } from "../../src/pipeline/types.ts";
import { DeadlineError } from "../../src/async/deadline.ts";
import { type Upstream, UpstreamError, type UpstreamFailure } from "../../src/upstream/types.ts";
import { encodePacket, makeQuery, type QuerySpec, type RawOption } from "../dns/fixtures.ts";

const ECS: RawOption = { code: 8, data: Uint8Array.from([0, 1, 24, 0, 198, 51, 100]) };
const COOKIE: RawOption = { code: 10, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) };
const KEEPALIVE: RawOption = { code: 11, data: new Uint8Array(0) };
const PADDING: RawOption = { code: 12, data: new Uint8Array(20) };

function query(spec: QuerySpec = {}): Query {
  const c = classifyQuery(makeQuery(spec));
  if (c.kind !== "query") throw new Error(`fixture is not a query: ${c.kind}`);
  return c.query;
}

function ctx(signal: AbortSignal = new AbortController().signal): QueryContext {
  return { face: "dot", signal, client: { address: "192.0.2.55", port: 5353 } };
}

/** A response to `q` from the "upstream": one A record, and an OPT record if asked. */
function answerFor(q: Query, opt?: { options: RawOption[] }): Uint8Array {
  const additionals = opt
    ? [{
      type: "OPT",
      name: ".",
      udpPayloadSize: 1232,
      options: opt.options.map((o) => ({ code: o.code, data: Buffer.from(o.data) })),
    } as unknown as dnsPacket.Answer]
    : [];
  return encodePacket({
    type: "response",
    id: q.info.id,
    flags: 0x0180,
    questions: [{ type: "A", name: q.question.name, class: "IN" }],
    answers: [{ type: "A", name: q.question.name, ttl: 60, data: "192.0.2.7" }],
    additionals,
  });
}

/** A fake upstream that records what it was asked and answers with `respond`. */
class FakeUpstream implements Upstream {
  readonly seen: Query[] = [];
  readonly signals: AbortSignal[] = [];
  constructor(
    readonly name: string,
    readonly respond: (q: Query, signal: AbortSignal) => Promise<Uint8Array>,
  ) {}
  exchange(q: Query, signal: AbortSignal): Promise<Answer> {
    this.seen.push(q);
    this.signals.push(signal);
    return this.respond(q, signal).then(answerOf);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

function capture(level: "debug" | "info" = "debug"): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ level, sink: (l) => lines.push(l) }), lines };
}

function edeOf(info: MessageInfo): { code: number; text: string } | undefined {
  const o = info.opt?.options.find((x) => x.code === 15);
  if (!o) return undefined;
  return { code: (o.data[0] << 8) | o.data[1], text: new TextDecoder().decode(o.data.subarray(2)) };
}

/** The pipeline `buildResolver` composes (cache off) over one upstream. */
function pipeline(upstream: Upstream, queryTimeoutMs: number): Handler {
  const parsed = parseConfig({ args: [], env: {} });
  if (parsed.help) throw new Error("unreachable");
  const config = { ...parsed.config, queryTimeoutMs, cache: false };
  return buildResolver(config, { upstreamFor: () => upstream }).handler;
}

const never = () => new Promise<never>(() => {});

describe("servfailOnError", () => {
  const cases: { name: string; error: unknown; code: number }[] = [
    { name: "an upstream timeout", error: new UpstreamError("u", "timeout", "slow"), code: 22 },
    { name: "a network failure", error: new UpstreamError("u", "network", "reset"), code: 23 },
    { name: "a bad answer", error: new UpstreamError("u", "bad-answer", "wrong ID"), code: 23 },
    { name: "an HTTP status", error: new UpstreamError("u", "http-status", "HTTP 502"), code: 23 },
    { name: "no upstream available", error: new UpstreamError("g", "unavailable", "x"), code: 22 },
    { name: "a deadline", error: new DeadlineError(100), code: EdeCode.NO_REACHABLE_AUTHORITY },
    { name: "a plain TimeoutError", error: new DOMException("t", "TimeoutError"), code: 22 },
    { name: "a bug", error: new TypeError("x is undefined"), code: EdeCode.OTHER },
    { name: "a thrown string", error: "oops", code: EdeCode.OTHER },
  ];
  for (const c of cases) {
    it(`answers SERVFAIL with EDE ${c.code} for ${c.name}, keeping ID and question`, async () => {
      const { logger, lines } = capture();
      const q = query({ id: 0x5151, name: "secret.example", type: "AAAA", opt: {} });
      const handler = compose([servfailOnError(logger)], () => Promise.reject(c.error));
      const answer = await handler(q, ctx());
      const info = parseMessage(answer.wire);
      expect(info.id).toBe(0x5151);
      expect(headerRcode(info.flags)).toBe(Rcode.SERVFAIL);
      expect(info.question).toEqual({ name: "secret.example", type: 28, class: 1 });
      expect(edeOf(info)?.code).toBe(c.code);
      expect(extendedErrorFor(c.error).code).toBe(c.code);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain("level=warn");
      expect(lines[0]).not.toContain("secret");
    });
  }

  it("answers SERVFAIL without OPT (so without EDE) to a query without EDNS", async () => {
    const handler = compose(
      [servfailOnError()],
      () => Promise.reject(new UpstreamError("u", "network", "down")),
    );
    const info = parseMessage((await handler(query({ id: 9 }), ctx())).wire);
    expect(headerRcode(info.flags)).toBe(Rcode.SERVFAIL);
    expect(info.opt).toBeUndefined();
    expect(info.id).toBe(9);
  });

  it("passes answers through untouched", async () => {
    const q = query();
    const answer = answerOf(answerFor(q));
    const handler = compose([servfailOnError()], () => Promise.resolve(answer));
    expect(await handler(q, ctx())).toBe(answer);
  });

  it("rethrows when the client's own signal aborted (nobody wants the SERVFAIL)", async () => {
    const controller = new AbortController();
    const reason = new Error("client gone");
    controller.abort(reason);
    const handler = compose([servfailOnError()], () => Promise.reject(reason));
    await expect(handler(query(), ctx(controller.signal))).rejects.toBe(reason);
  });

  it("classifies every upstream failure kind", () => {
    const kinds: UpstreamFailure[] = [
      "network",
      "http-status",
      "bad-answer",
      "timeout",
      "unavailable",
    ];
    for (const kind of kinds) {
      expect([22, 23]).toContain(extendedErrorFor(new UpstreamError("u", kind, "m")).code);
    }
  });
});

describe("timeout", () => {
  it("keeps the context's fields and its signal through withTenant (no spread drops the getter)", async () => {
    const controller = new AbortController();
    let seen: QueryContext | undefined;
    const tenantStep: Handler = (q, c) => inner(q, withTenant(c, "kids"));
    const inner: Handler = (_q, c) => {
      seen = c;
      return never();
    };
    const handler = timeout(5_000)(tenantStep);
    const client = { address: "192.0.2.1" };
    const pending = handler(query(), { face: "doh", signal: controller.signal, client });
    expect(seen?.tenant).toBe("kids");
    expect(seen?.face).toBe("doh");
    expect(seen?.client).toBe(client);
    expect(seen?.signal).toBeInstanceOf(AbortSignal);
    controller.abort(new Error("bye"));
    await expect(pending).rejects.toThrow("bye");
    expect(seen?.signal.aborted).toBe(true);
  });

  it("rejects with a TimeoutError within the deadline even if the inner handler never settles", async () => {
    let innerSignal: AbortSignal | undefined;
    const handler = compose([timeout(50)], (_q, c) => {
      innerSignal = c.signal;
      return never();
    });
    const started = performance.now();
    const error = await Promise.resolve(handler(query(), ctx())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DeadlineError);
    expect((error as Error).name).toBe("TimeoutError");
    expect(performance.now() - started).toBeLessThan(2_000); // settled, not hung
    expect(innerSignal?.aborted).toBe(true);
  });

  it("passes the answer through when the inner handler is in time", async () => {
    const q = query();
    const answer = answerOf(answerFor(q));
    const handler = compose([timeout(5_000)], () => Promise.resolve(answer));
    expect(await handler(q, ctx())).toBe(answer);
  });

  it("gives the inner handler a signal that also follows the client's", async () => {
    const controller = new AbortController();
    let innerSignal: AbortSignal | undefined;
    const handler = compose([timeout(5_000)], (_q, c) => {
      innerSignal = c.signal;
      return never();
    });
    const pending = handler(query(), ctx(controller.signal));
    controller.abort(new Error("bye"));
    await expect(pending).rejects.toThrow("bye");
    expect(innerSignal?.aborted).toBe(true);
  });

  it("with servfailOnError outside, answers SERVFAIL with EDE 22 when the upstream hangs", async () => {
    const upstream = new FakeUpstream("hang", never);
    const handler = pipeline(upstream, 50);
    const info = parseMessage((await handler(query({ id: 77, opt: {} }), ctx())).wire);
    expect(info.id).toBe(77);
    expect(headerRcode(info.flags)).toBe(Rcode.SERVFAIL);
    expect(edeOf(info)?.code).toBe(EdeCode.NO_REACHABLE_AUTHORITY);
    expect(upstream.signals[0].aborted).toBe(true);
  });
});

describe("upstreamPrivacy", () => {
  async function sentUpstream(
    q: Query,
    options?: Parameters<typeof upstreamPrivacy>[0],
  ): Promise<Query> {
    let seen: Query | undefined;
    const handler = compose([upstreamPrivacy(options)], (sent) => {
      seen = sent;
      return Promise.resolve(answerOf(answerFor(sent)));
    });
    await handler(q, ctx());
    return seen!;
  }

  it("strips ECS by default and keeps other options", async () => {
    const sent = await sentUpstream(query({ opt: { options: [ECS, COOKIE] } }));
    const codes = sent.info.opt!.options.map((o) => o.code);
    expect(codes).not.toContain(8);
    expect(codes).toContain(10);
  });

  it("keeps ECS with keepClientSubnet", async () => {
    const sent = await sentUpstream(query({ opt: { options: [ECS] } }), { keepClientSubnet: true });
    const ecs = sent.info.opt!.options.find((o) => o.code === 8);
    expect(Array.from(ecs!.data)).toEqual(Array.from(ECS.data));
  });

  it("strips the client's keepalive and padding", async () => {
    const sent = await sentUpstream(query({ opt: { options: [KEEPALIVE, PADDING, COOKIE] } }), {
      padBlock: 0,
    });
    expect(sent.info.opt!.options.map((o) => o.code)).toEqual([10]);
  });

  it("pads the upstream query to a multiple of 128 bytes", async () => {
    for (
      const name of ["a.example", "x".repeat(60) + ".example", "y".repeat(63) + ".z".repeat(40)]
    ) {
      const sent = await sentUpstream(query({ name, opt: { options: [PADDING, COOKIE] } }));
      expect(sent.wire.length % 128).toBe(0);
      expect(sent.info.opt!.options.at(-1)!.code).toBe(12);
      expect(sent.info.opt!.options.filter((o) => o.code === 12)).toHaveLength(1);
    }
  });

  it("pads to another block when told", async () => {
    const sent = await sentUpstream(query(), { padBlock: 64 });
    expect(sent.wire.length % 64).toBe(0);
  });

  it("adds an OPT record when the client had none", async () => {
    const q = query({ id: 4242, name: "noedns.example" });
    expect(q.info.opt).toBeUndefined();
    const sent = await sentUpstream(q);
    expect(sent.info.opt).toBeDefined();
    expect(sent.info.arcount).toBe(1);
    expect(sent.info.id).toBe(4242);
    expect(sent.question).toEqual(q.question);
    expect(sent.wire.length % 128).toBe(0);
  });

  it("keeps the client's UDP size and DO bit", async () => {
    const sent = await sentUpstream(
      query({ opt: { udpSize: 4096, flags: 0x8000, options: [ECS] } }),
    );
    expect(sent.info.opt).toMatchObject({ udpSize: 4096, ttl: 0x8000 });
  });

  it("does not modify the client's query", async () => {
    const q = query({ opt: { options: [ECS, KEEPALIVE] } });
    const before = q.wire.slice();
    await sentUpstream(q);
    expect(q.wire).toEqual(before);
    expect(q.info.opt!.options).toHaveLength(2);
  });

  it("passes the very same query on when there is nothing to change", async () => {
    const q = query({ opt: { options: [COOKIE] } });
    expect(await sentUpstream(q, { padBlock: 0 })).toBe(q);
    const plain = query();
    expect(await sentUpstream(plain, { padBlock: 0 })).toBe(plain);
  });
});

describe("compose and passThrough", () => {
  it("runs middlewares outermost first", async () => {
    const order: string[] = [];
    const tag = (name: string) => (next: Handler): Handler => (q, c) => {
      order.push(name);
      return next(q, c);
    };
    const q = query();
    const handler = compose([tag("a"), passThrough, tag("b")], (sent) => {
      order.push("terminal");
      return Promise.resolve(answerOf(answerFor(sent)));
    });
    await handler(q, ctx());
    expect(order).toEqual(["a", "b", "terminal"]);
  });

  it("fromUpstream hands query and signal to the upstream", async () => {
    const upstream = new FakeUpstream("u", (q) => Promise.resolve(answerFor(q)));
    const controller = new AbortController();
    const q = query();
    await fromUpstream(upstream)(q, ctx(controller.signal));
    expect(upstream.seen[0]).toBe(q);
    expect(upstream.signals[0]).toBe(controller.signal);
  });
});
