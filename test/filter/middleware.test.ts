import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { type Answer, answerOf } from "../../src/dns/answer.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { validateAnswer } from "../../src/dns/response.ts";
import {
  Action,
  BlockedAnswers,
  type BlockResponse,
  cnameFilterMiddleware,
  filterMiddleware,
  FilterPolicy,
  NameHasher,
  parseList,
} from "../../src/filter/mod.ts";
import {
  type Handler,
  passThrough,
  type QueryContext,
  type QueryTrace,
} from "../../src/pipeline/types.ts";
import { createProcessor } from "../../src/resolver/processor.ts";
import { query } from "../records/fixtures.ts";

const hasher = new NameHasher([7, 8]);
const list = (name: string, text: string) => ({ name, set: parseList(text, hasher).set });
const ctx: QueryContext = { face: "dot", signal: new AbortController().signal };

interface Rec {
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}
function decode(wire: Uint8Array) {
  const p = dnsPacket.decode(Buffer.from(wire));
  return {
    rcode: wire[3] & 0x0f,
    flags: p.flags ?? 0,
    answers: (p.answers ?? []) as Rec[],
    authorities: (p.authorities ?? []) as Rec[],
    opt: (p.additionals ?? []).find((r) => r.type === "OPT") as
      | { flags?: number; options?: { code: number; data: Buffer }[] }
      | undefined,
  };
}

/** An upstream answering from the test zone's rules: A 192.0.2.1, CNAME chains for via-. */
function upstream(seen: string[]): Handler {
  return (q) => {
    seen.push(q.question.name);
    const p = dnsPacket.decode(Buffer.from(q.wire));
    const name = q.question.name;
    const answers: dnsPacket.Answer[] = [];
    let at = name;
    while (at.startsWith("via-")) {
      answers.push({ type: "CNAME", name: at, ttl: 300, data: at.slice(4) });
      at = at.slice(4);
    }
    answers.push({ type: "A", name: at, ttl: 300, data: "192.0.2.1" });
    return Promise.resolve(answerOf(
      new Uint8Array(dnsPacket.encode({
        type: "response",
        id: p.id,
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE,
        questions: p.questions,
        answers,
      })),
    ));
  };
}

function stage(
  text: string,
  options: { response?: BlockResponse; ttl?: number; allow?: string; cloaking?: boolean } = {},
) {
  const blocked: string[] = [];
  const stageOptions = {
    policy: new FilterPolicy({
      hasher,
      blocklists: [list("ads", text)],
      allowlists: options.allow === undefined ? [] : [list("mine", options.allow)],
    }),
    answers: new BlockedAnswers(options.response ?? "nxdomain", options.ttl ?? 60),
    onBlocked: (name: string) => blocked.push(name),
  };
  const seen: string[] = [];
  // The two stages as the builder puts them, with no cache between them here.
  const names = filterMiddleware(stageOptions);
  const cnames = options.cloaking === false ? passThrough : cnameFilterMiddleware(stageOptions);
  return { handler: names(cnames(upstream(seen))), seen, blocked };
}

/** The answer checked as a client would: well formed, same ID and question, info exact. */
function checked(q: ReturnType<typeof query>, answer: Answer): Answer {
  validateAnswer(q.info, answer.wire, q.info.id);
  expect(answer.info).toEqual(parseMessage(answer.wire));
  return answer;
}

describe("filterMiddleware", () => {
  it("answers a blocked name without the next handler, and tells who blocked it", async () => {
    const s = stage("||ads.example^\n");
    const q = query("x.ads.example", { edns: true });
    const a = checked(q, await s.handler(q, ctx));
    expect(decode(a.wire).rcode).toBe(3);
    expect(s.seen).toEqual([]);
    expect(s.blocked).toEqual(["ads"]);
  });

  it("passes names no list holds, and names an allowlist allows", async () => {
    const s = stage("||ads.example^\n", { allow: "good.ads.example\n" });
    for (const name of ["example", "notads.example", "good.ads.example", "x.good.ads.example"]) {
      const a = await s.handler(query(name), ctx);
      expect(decode(a.wire).rcode, name).toBe(0);
    }
    expect(s.seen).toHaveLength(4);
    expect(s.blocked).toEqual([]);
  });

  const responses: [BlockResponse, string, number, string[], string[]][] = [
    // response, qtype, rcode, answer records, authority records
    ["nxdomain", "A", 3, [], ["SOA"]],
    ["nodata", "A", 0, [], ["SOA"]],
    ["null", "A", 0, ["A 0.0.0.0"], []],
    ["null", "AAAA", 0, ["AAAA ::"], []],
    ["null", "TXT", 0, [], ["SOA"]],
    ["refused", "A", 5, [], []],
  ];
  for (const [response, type, rcode, answers, authorities] of responses) {
    it(`--block-response ${response} answers ${type} with rcode ${rcode}`, async () => {
      const s = stage("ads.example\n", { response, ttl: 42 });
      const q = query("ads.example", { type, edns: true, dnssecOk: true, id: 0x1234 });
      const a = checked(q, await s.handler(q, ctx));
      const d = decode(a.wire);
      expect(d.rcode).toBe(rcode);
      expect(d.answers.map((r) => `${r.type} ${r.data}`)).toEqual(answers);
      expect(d.authorities.map((r) => r.type)).toEqual(authorities);
      for (const r of [...d.answers, ...d.authorities]) {
        expect(r.ttl).toBe(42);
        expect(r.name).toBe("ads.example");
      }
      if (authorities.length) {
        expect((d.authorities[0].data as dnsPacket.SoaData).minimum).toBe(42);
      }
      expect(a.info.minTtl).toBe(rcode === 5 ? undefined : 42);
      // EDE 15 and the DO bit in the OPT record; AA is not set, RD copied, RA set.
      expect(d.opt?.options?.map((o) => o.code)).toEqual([15]);
      expect(d.opt?.options?.[0].data.readUInt16BE(0)).toBe(15);
      expect((d.opt?.flags ?? 0) & dnsPacket.DNSSEC_OK).toBe(dnsPacket.DNSSEC_OK);
      expect(d.flags & dnsPacket.AUTHORITATIVE_ANSWER).toBe(0);
      expect(d.flags & dnsPacket.RECURSION_DESIRED).toBe(dnsPacket.RECURSION_DESIRED);
    });
  }

  it("sends no OPT record to a client that sent none", async () => {
    const s = stage("ads.example\n");
    const q = query("ads.example");
    const a = checked(q, await s.handler(q, ctx));
    expect(a.info.arcount).toBe(0);
    expect(decode(a.wire).opt).toBe(undefined);
  });

  it("keeps the client's spelling and ID, and the blocked answer survives the face", async () => {
    const s = stage("ads.example\n");
    const wire = new Uint8Array(dnsPacket.encode({
      type: "query",
      id: 77,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name: "AdS.ExAmPlE" }],
      additionals: [
        {
          type: "OPT",
          name: ".",
          udpPayloadSize: 1232,
          options: [{ code: 12, data: Buffer.alloc(0) }],
        } as unknown as dnsPacket.Answer,
      ],
    }));
    const process = createProcessor({ handler: s.handler });
    const out = (await process(wire, ctx))!;
    const p = dnsPacket.decode(Buffer.from(out.wire));
    expect(p.id).toBe(77);
    expect(p.questions?.[0].name).toBe("AdS.ExAmPlE");
    expect(out.wire.length % 468).toBe(0); // padded, the EDE kept
    expect(decode(out.wire).opt?.options?.map((o) => o.code)).toEqual([15, 12]);
  });

  it("uses an RPZ action over the configured response", async () => {
    const s = stage("nx.example CNAME .\nnd.example CNAME *.\n", { response: "null" });
    expect(decode((await s.handler(query("nx.example"), ctx)).wire).rcode).toBe(3);
    const nodata = decode((await s.handler(query("nd.example"), ctx)).wire);
    expect([nodata.rcode, nodata.answers.length]).toEqual([0, 0]);
  });

  it("blocks an answer whose CNAME chain passes through a blocked name", async () => {
    const s = stage("tracker.example\n", { response: "null" });
    const q = query("via-via-tracker.example");
    const a = checked(q, await s.handler(q, ctx));
    expect(decode(a.wire).answers.map((r) => `${r.name} ${r.type} ${r.data}`)).toEqual([
      "via-via-tracker.example A 0.0.0.0",
    ]);
    expect(s.seen).toEqual(["via-via-tracker.example"]);
    expect(s.blocked).toEqual(["ads"]);
  });

  it("leaves CNAME chains alone without the CNAME stage, or when the name is allowed", async () => {
    const off = stage("tracker.example\n", { cloaking: false });
    expect(decode((await off.handler(query("via-tracker.example"), ctx)).wire).rcode).toBe(0);
    const allowed = stage("tracker.example\n", { allow: "via-tracker.example\n" });
    expect(decode((await allowed.handler(query("via-tracker.example"), ctx)).wire).rcode)
      .toBe(0);
  });

  it("sets the trace when there is one", async () => {
    const s = stage("ads.example\n");
    const trace: QueryTrace = {};
    await s.handler(query("ads.example"), { ...ctx, trace });
    expect(trace).toEqual({ source: "blocked", list: "ads" });
    const cloaked: QueryTrace = { source: "upstream", upstream: "u" };
    await stage("tracker.example\n").handler(query("via-tracker.example"), {
      ...ctx,
      trace: cloaked,
    });
    expect(cloaked).toMatchObject({ source: "blocked", list: "ads" });
    await s.handler(query("ads.example"), ctx); // no trace: nothing to set, nothing thrown
  });

  it("is a pass-through with no lists, both stages", () => {
    const next: Handler = () => Promise.reject(new Error("unused"));
    const options = {
      policy: new FilterPolicy({ hasher, blocklists: [] }),
      answers: new BlockedAnswers("nxdomain", 60),
    };
    expect(filterMiddleware(options)(next)).toBe(next);
    expect(cnameFilterMiddleware(options)(next)).toBe(next);
  });

  it("matches nothing from a list that has not loaded yet", async () => {
    const pending = { name: "later", set: undefined };
    const mw = filterMiddleware({
      policy: new FilterPolicy({ hasher, blocklists: [pending] }),
      answers: new BlockedAnswers("nxdomain", 60),
    });
    const seen: string[] = [];
    expect(decode((await mw(upstream(seen))(query("ads.example"), ctx)).wire).rcode).toBe(0);
  });
});

describe("BlockedAnswers", () => {
  it("refuses a TTL out of range", () => {
    expect(() => new BlockedAnswers("nxdomain", -1)).toThrow(RangeError);
    expect(() => new BlockedAnswers("nxdomain", 86_401)).toThrow(RangeError);
  });

  it("takes the action's answer: NXDOMAIN and NODATA override, BLOCK follows the setting", () => {
    const answers = new BlockedAnswers("refused", 60);
    const q = query("a.example");
    expect(answers.answer(q, Action.BLOCK).wire[3] & 0x0f).toBe(5);
    expect(answers.answer(q, Action.NXDOMAIN).wire[3] & 0x0f).toBe(3);
    expect(answers.answer(q, Action.NODATA).wire[3] & 0x0f).toBe(0);
  });
});
