/**
 * The face-side processor: what it does with what a client sent (drop, reject, resolve), how it
 * shapes the answer for this client's EDNS (padding, keepalive, no OPT when the client sent
 * none), that the answer it hands the face carries a parse describing its bytes exactly, and
 * what it tells the observer and the log.
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import * as fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { Rcode } from "../../src/dns/constants.ts";
import { headerRcode, type MessageInfo, parseMessage } from "../../src/dns/message.ts";
import type { Query } from "../../src/dns/query.ts";
import { minAnswerTtl } from "../../src/dns/ttl.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { createLogger, type Logger } from "../../src/log/mod.ts";
import type { Handler, QueryContext } from "../../src/pipeline/types.ts";
import { buildResolver } from "../../src/resolver/build.ts";
import { createProcessor, type QueryObserver } from "../../src/resolver/processor.ts";
import type { Upstream } from "../../src/upstream/types.ts";
import { encodePacket, makeQuery, MALFORMED, type RawOption } from "../dns/fixtures.ts";

const ECS: RawOption = { code: 8, data: Uint8Array.from([0, 1, 24, 0, 198, 51, 100]) };
const COOKIE: RawOption = { code: 10, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) };
const KEEPALIVE: RawOption = { code: 11, data: new Uint8Array(0) };
const PADDING: RawOption = { code: 12, data: new Uint8Array(20) };

function ctx(signal: AbortSignal = new AbortController().signal): QueryContext {
  return { face: "dot", signal, client: { address: "192.0.2.55", port: 5353 } };
}

/** A response to `q`: one A record (TTL `ttl`), and an OPT record if asked. */
function answerFor(q: Query, opt?: { options: RawOption[] }, ttl = 60): Uint8Array {
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
    answers: [{ type: "A", name: q.question.name, ttl, data: "192.0.2.7" }],
    additionals,
  });
}

/** An upstream (the Upstream contract, in process) that records queries and answers `respond`. */
class FakeUpstream implements Upstream {
  readonly name = "fake";
  readonly seen: Query[] = [];
  constructor(readonly respond: (q: Query) => Uint8Array) {}
  exchange(q: Query): Promise<Answer> {
    this.seen.push(q);
    return Promise.resolve(answerOf(this.respond(q)));
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The pipeline `buildResolver` composes (cache off) over one upstream. */
function pipeline(upstream: Upstream): Handler {
  const parsed = parseConfig({ args: [], env: {} });
  if (parsed.help) throw new Error("unreachable");
  const config = { ...parsed.config, queryTimeoutMs: 2_000, cache: false };
  return buildResolver(config, { upstreamFor: () => upstream }).handler;
}

/** A processor over the standard pipeline, with an upstream that answers via `respond`. */
function processorWith(
  respond: (q: Query) => Uint8Array,
  options: {
    keepaliveMs?: number;
    logQueries?: boolean;
    logger?: Logger;
    responsePadBlock?: number;
    udpMaxSize?: number;
    onTruncated?: () => void;
  } = {},
) {
  const upstream = new FakeUpstream(respond);
  return { upstream, process: createProcessor({ handler: pipeline(upstream), ...options }) };
}

function capture(level: "debug" | "info" = "debug"): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger({ level, sink: (l) => lines.push(l) }), lines };
}

/** The answer's info, after checking it is exactly what a walk of its bytes finds. */
function infoOf(answer: Answer | null): MessageInfo {
  expect(answer).not.toBeNull();
  const walked = parseMessage(answer!.wire);
  expect(answer!.info).toEqual(walked);
  return walked;
}

const codes = (info: MessageInfo) => info.opt!.options.map((o) => o.code);

describe("createProcessor: shaping the answer for the client", () => {
  it("strips the OPT record from the answer when the client sent none", async () => {
    const { process, upstream } = processorWith((q) => answerFor(q, { options: [COOKIE] }));
    const out = await process(makeQuery({ id: 31 }), ctx());
    expect(upstream.seen[0].info.opt).toBeDefined(); // added upstream for padding
    const info = infoOf(out);
    expect(info.opt).toBeUndefined();
    expect(info.arcount).toBe(0);
    expect(info.ancount).toBe(1);
    expect(info.id).toBe(31);
  });

  it("returns the upstream answer's bytes unchanged when there is nothing to shape", async () => {
    let sent: Uint8Array | undefined;
    const { process } = processorWith((q) => (sent = answerFor(q, { options: [COOKIE] })));
    const out = await process(makeQuery({ opt: { options: [COOKIE] } }), ctx());
    expect(out!.wire).toEqual(sent);
    infoOf(out);
  });

  it("hands the handler's answer on as the same object when there is nothing to shape", async () => {
    const given: Answer[] = [];
    const handler: Handler = (q) => {
      given.push(answerOf(answerFor(q, { options: [COOKIE] })));
      return Promise.resolve(given.at(-1)!);
    };
    const process = createProcessor({ handler });
    expect(await process(makeQuery({ opt: { options: [COOKIE] } }), ctx())).toBe(given[0]);
    const bare = (q: Query) => Promise.resolve(given[given.push(answerOf(answerFor(q))) - 1]);
    expect(await createProcessor({ handler: bare })(makeQuery(), ctx())).toBe(given[1]);
  });

  it("pads the answer to 468 bytes when the client padded its query", async () => {
    const { process } = processorWith((q) => answerFor(q, { options: [] }));
    const out = await process(makeQuery({ opt: { options: [PADDING] } }), ctx());
    expect(out!.wire.length).toBe(468);
    expect(codes(infoOf(out))).toEqual([12]);
  });

  it("pads to the block it is configured with", async () => {
    const { process } = processorWith((q) => answerFor(q), { responsePadBlock: 128 });
    const out = await process(makeQuery({ opt: { options: [PADDING] } }), ctx());
    expect(out!.wire.length % 128).toBe(0);
    expect(codes(infoOf(out))).toEqual([12]);
  });

  it("does not pad the answer when the client did not pad", async () => {
    const { process } = processorWith((q) => answerFor(q, { options: [] }));
    const out = await process(makeQuery({ opt: {} }), ctx());
    expect(infoOf(out).opt!.options).toEqual([]);
  });

  it("adds keepalive with the configured timeout when the client asked", async () => {
    const { process } = processorWith((q) => answerFor(q, { options: [] }), {
      keepaliveMs: 12_000,
    });
    const out = await process(makeQuery({ opt: { options: [KEEPALIVE] } }), ctx());
    const ka = infoOf(out).opt!.options.find((o) => o.code === 11);
    expect(Array.from(ka!.data)).toEqual([0, 120]);
  });

  it("adds no keepalive when the client did not ask", async () => {
    const { process } = processorWith((q) => answerFor(q, { options: [] }), {
      keepaliveMs: 12_000,
    });
    const out = await process(makeQuery({ opt: { options: [COOKIE] } }), ctx());
    expect(codes(infoOf(out))).not.toContain(11);
  });

  it("adds no keepalive without keepaliveMs (DoH), even when the client asked", async () => {
    const { process } = processorWith((q) => answerFor(q, { options: [] }));
    const out = await process(makeQuery({ opt: { options: [KEEPALIVE] } }), ctx());
    expect(codes(infoOf(out))).not.toContain(11);
  });

  it("removes the upstream's own keepalive and padding from the answer", async () => {
    const { process } = processorWith((q) =>
      answerFor(q, { options: [{ code: 11, data: Uint8Array.from([0, 5]) }, COOKIE, PADDING] })
    );
    const out = await process(makeQuery({ opt: {} }), ctx());
    expect(codes(infoOf(out))).toEqual([10]);
  });

  it("keeps padding and keepalive together in the right order", async () => {
    const { process } = processorWith((q) => answerFor(q, { options: [] }), { keepaliveMs: 1_000 });
    const out = await process(makeQuery({ opt: { options: [KEEPALIVE, PADDING] } }), ctx());
    expect(codes(infoOf(out))).toEqual([11, 12]);
    expect(out!.wire.length % 468).toBe(0);
  });

  it("gives an answer without OPT one when the client sent one (it asked for padding)", async () => {
    const handler: Handler = (q) => Promise.resolve(answerOf(answerFor(q)));
    const out = await createProcessor({ handler })(
      makeQuery({ opt: { options: [PADDING] } }),
      ctx(),
    );
    expect(infoOf(out).arcount).toBe(1);
    expect(out!.wire.length).toBe(468);
  });

  const ttls = [
    { what: "an unshaped answer", opt: { options: [COOKIE] }, client: { options: [COOKIE] } },
    { what: "a padded answer", opt: { options: [] }, client: { options: [PADDING] } },
    { what: "an answer stripped of its OPT", opt: { options: [] }, client: undefined },
  ];
  it.each(ttls)("hands the face the smallest TTL of $what with it", async ({ opt, client }) => {
    const { process } = processorWith((q) => answerFor(q, opt, 1234));
    const out = await process(makeQuery({ opt: client }), ctx());
    expect(out!.info.minTtl).toBe(1234);
    expect(out!.info.minTtl).toBe(minAnswerTtl(out!.wire));
  });
});

describe("createProcessor: classifying what the client sent", () => {
  const rejects: { name: string; wire: Uint8Array; rcode: number; id: number }[] = [
    {
      name: "a malformed message",
      wire: Uint8Array.from([0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 5, 0x61]),
      rcode: Rcode.FORMERR,
      id: 0xabcd,
    },
    { name: "a response", wire: makeQuery({ id: 2, response: true }), rcode: Rcode.FORMERR, id: 2 },
    {
      name: "opcode UPDATE",
      wire: makeQuery({ id: 3, flags: 5 << 11 }),
      rcode: Rcode.NOTIMP,
      id: 3,
    },
  ];
  it.each(rejects)("answers $rcode to $name without asking the upstream", async (c) => {
    const { process, upstream } = processorWith((q) => answerFor(q));
    const info = infoOf(await process(c.wire, ctx()));
    expect(headerRcode(info.flags)).toBe(c.rcode);
    expect(info.id).toBe(c.id);
    expect(upstream.seen).toHaveLength(0);
  });

  it("answers BADVERS to EDNS version 1 with the extended rcode in the OPT record", async () => {
    const { process, upstream } = processorWith((q) => answerFor(q));
    const info = infoOf(await process(makeQuery({ id: 4, opt: { version: 1 } }), ctx()));
    expect(headerRcode(info.flags)).toBe(0);
    expect(info.opt!.ttl >>> 24).toBe(1);
    expect(upstream.seen).toHaveLength(0);
  });

  it("shapes a rejection for the client too: no OPT when it sent none", async () => {
    const { process } = processorWith((q) => answerFor(q));
    const info = infoOf(await process(makeQuery({ id: 5, flags: 5 << 11 }), ctx()));
    expect(info.opt).toBeUndefined();
    const padded = await process(
      makeQuery({ id: 6, flags: 5 << 11, opt: { options: [PADDING] } }),
      ctx(),
    );
    expect(padded!.wire.length).toBe(468);
    expect(codes(infoOf(padded))).toEqual([12]);
  });

  it("returns null (close the connection) for fewer than 12 bytes", async () => {
    const { process, upstream } = processorWith((q) => answerFor(q));
    expect(await process(new Uint8Array(11), ctx())).toBeNull();
    expect(await process(new Uint8Array(0), ctx())).toBeNull();
    expect(upstream.seen).toHaveLength(0);
  });

  it("answers every MALFORMED fixture as the corpus says, never asking the upstream", async () => {
    const { process, upstream } = processorWith((q) => answerFor(q));
    for (const c of MALFORMED) {
      const out = await process(c.bytes, ctx());
      if (c.expect === "drop") {
        expect(out, c.name).toBeNull();
        continue;
      }
      const info = infoOf(out);
      expect(headerRcode(info.flags), c.name).toBe(Rcode.FORMERR);
      expect(info.id, c.name).toBe((c.bytes[0] << 8) | c.bytes[1]);
    }
    expect(upstream.seen).toHaveLength(0);
  });

  it("turns any bytes into null or a response with the sender's ID and its parse (property)", async () => {
    const { process } = processorWith((q) => answerFor(q, { options: [COOKIE] }), {
      keepaliveMs: 5_000,
    });
    const mutated = fc.tuple(
      fc.constantFrom(
        makeQuery({ opt: { options: [KEEPALIVE, PADDING, ECS] } }),
        makeQuery({ name: "m.example", type: "AAAA" }),
        makeQuery({ response: true, opt: { version: 1 } }),
      ),
      fc.array(fc.tuple(fc.nat(), fc.nat(255)), { minLength: 1, maxLength: 4 }),
    ).map(([wire, edits]) => {
      const w = wire.slice();
      for (const [at, byte] of edits) w[at % w.length] = byte;
      return w;
    });
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 300 }), mutated), async (bytes) => {
        const out = await process(bytes, ctx());
        if (bytes.length < 12) {
          expect(out).toBeNull();
          return;
        }
        const info = infoOf(out);
        expect(info.flags & 0x8000).toBe(0x8000);
        expect(info.id).toBe((bytes[0] << 8) | bytes[1]);
      }),
      { numRuns: 500 },
    );
  });
});

describe("createProcessor: the observer and the query log", () => {
  function observed() {
    const events: (["start", QueryContext] | ["end", QueryContext, number, number])[] = [];
    const observer: QueryObserver = {
      start: (c) => events.push(["start", c]),
      end: (c, rcode, ms) => events.push(["end", c, rcode, ms]),
    };
    return { observer, events };
  }

  it("tells the observer when a query starts and ends, with the answer's rcode", async () => {
    const { observer, events } = observed();
    const handler: Handler = (q) =>
      Promise.resolve(answerOf(encodePacket({
        type: "response",
        id: q.info.id,
        flags: 0x0180 | Rcode.NXDOMAIN,
        questions: [{ type: "A", name: q.question.name, class: "IN" }],
      })));
    const context = ctx();
    await createProcessor({ handler, observer })(makeQuery(), context);
    expect(events.map((e) => e.slice(0, 3))).toEqual([
      ["start", context],
      ["end", context, Rcode.NXDOMAIN],
    ]);
    const ms = events[1][3] as number;
    expect(ms).toBeGreaterThanOrEqual(0);
  });

  it("ends with rcode -1 and rethrows when the handler fails", async () => {
    const { observer, events } = observed();
    const boom = new Error("boom");
    const process = createProcessor({ handler: () => Promise.reject(boom), observer });
    await expect(process(makeQuery(), ctx())).rejects.toBe(boom);
    expect(events.map((e) => e[0] === "end" ? `end ${e[2]}` : e[0])).toEqual(["start", "end -1"]);
  });

  it("does not count what never reached the handler (drops and rejections)", async () => {
    const { observer, events } = observed();
    const handler: Handler = (q) => Promise.resolve(answerOf(answerFor(q)));
    const process = createProcessor({ handler, observer });
    await process(new Uint8Array(5), ctx());
    await process(makeQuery({ response: true }), ctx());
    expect(events).toEqual([]);
  });

  it("logs no query by default (privacy), even at debug level", async () => {
    const { logger, lines } = capture("debug");
    const { process } = processorWith((q) => answerFor(q), { logger });
    await process(makeQuery({ name: "private-name.example" }), ctx());
    const all = lines.join("\n");
    expect(all).not.toContain("private-name");
    expect(all).not.toContain("192.0.2.55");
  });

  it("logs the query name only when logQueries is on", async () => {
    for (const logQueries of [false, true]) {
      const { logger, lines } = capture("debug");
      const { process } = processorWith((q) => answerFor(q), { logger, logQueries });
      await process(makeQuery({ name: "private-name.example" }), ctx());
      const all = lines.join("\n");
      if (logQueries) {
        expect(lines).toHaveLength(1);
        expect(all).toContain("msg=query");
        expect(all).toContain("name=private-name.example");
        expect(all).toContain("client=192.0.2.55");
        expect(all).toContain("rcode=0");
      } else {
        expect(all).not.toContain("private-name");
        expect(all).not.toContain("192.0.2.55");
      }
    }
  });

  it("never logs the query name of a rejected query", async () => {
    const { logger, lines } = capture("debug");
    const { process } = processorWith((q) => answerFor(q), { logger, logQueries: true });
    await process(makeQuery({ name: "hidden.example", flags: 5 << 11 }), ctx());
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.join("\n")).not.toContain("hidden");
  });
});

describe("processor over UDP (udpMaxSize)", () => {
  /** An answer to `q` with `n` TXT records of ~200 bytes, echoing an OPT record if the query had one. */
  function txtAnswer(q: Query, n: number): Uint8Array {
    return encodePacket({
      type: "response",
      id: q.info.id,
      flags: 0x0180,
      questions: [{ type: "TXT", name: q.question.name, class: "IN" }],
      answers: Array.from({ length: n }, (_, i) => ({
        type: "TXT" as const,
        name: q.question.name,
        ttl: 60,
        data: [`${i}`.padEnd(200, "y")],
      })),
      additionals: q.info.opt
        ? [{ type: "OPT", name: ".", udpPayloadSize: 1232 } as unknown as dnsPacket.Answer]
        : [],
    });
  }

  it.each([
    ["no EDNS, 3 records (~630 bytes): over 512", undefined, 3, true],
    ["no EDNS, 2 records (~420 bytes)", undefined, 2, false],
    ["EDNS 4096 (clamped to 1232), 5 records (~1050 bytes)", 4096, 5, false],
    ["EDNS 4096 (clamped to 1232), 7 records (~1470 bytes)", 4096, 7, true],
    ["EDNS 1232, 7 records", 1232, 7, true],
    ["EDNS 800, 4 records (~840 bytes)", 800, 4, true],
  ])("%s: truncated %s", async (_what, udpSize, records, truncated) => {
    let told = 0;
    const { process } = processorWith((q) => txtAnswer(q, records), {
      udpMaxSize: 1232,
      onTruncated: () => told++,
    });
    const query = makeQuery({
      name: "big.example",
      type: "TXT",
      ...(udpSize === undefined ? {} : { opt: { udpSize } }),
    });
    // A client on a local network: the plain face refuses public ones by default.
    const answer = await process(query, {
      ...ctx(),
      face: "dns",
      client: { address: "192.168.0.5" },
    });
    const info = infoOf(answer);
    const limit = udpSize === undefined ? 512 : Math.min(udpSize, 1232);
    expect(answer!.wire.length).toBeLessThanOrEqual(limit);
    expect(Boolean(info.flags & 0x0200)).toBe(truncated);
    expect(info.ancount).toBe(truncated ? 0 : records);
    expect(Boolean(info.opt)).toBe(udpSize !== undefined);
    expect(told).toBe(truncated ? 1 : 0);
  });

  it("does not truncate without udpMaxSize (streams)", async () => {
    const { process } = processorWith((q) => txtAnswer(q, 7));
    const answer = await process(makeQuery({ name: "big.example", type: "TXT" }), ctx());
    expect(infoOf(answer).ancount).toBe(7);
  });
});
