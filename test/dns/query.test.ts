import { describe, expect, it } from "vitest";
import { Rcode } from "../../src/dns/constants.ts";
import { classifyQuery } from "../../src/dns/query.ts";
import { A_IN, concat, header, makeQuery, MALFORMED, wireName } from "./fixtures.ts";

const RD = 0x0100;

describe("classifyQuery", () => {
  it("accepts a good query with its question", () => {
    const wire = makeQuery({ id: 42, name: "Example.COM", type: "TXT", opt: { flags: 0x8000 } });
    const c = classifyQuery(wire);
    expect(c.kind).toBe("query");
    if (c.kind !== "query") return;
    expect(c.query.wire).toBe(wire);
    expect(c.query.question).toEqual({ name: "Example.COM", type: 16, class: 1 });
    expect(c.query.info.id).toBe(42);
    expect(c.query.info.opt?.ttl).toBe(0x8000);
  });

  it("accepts a good query without EDNS", () => {
    expect(classifyQuery(makeQuery()).kind).toBe("query");
  });

  it("accepts a query for the root", () => {
    const c = classifyQuery(concat(header({ flags: RD, qd: 1 }), [0], [0, 2, 0, 1]));
    expect(c.kind === "query" && c.query.question.name).toBe("");
  });

  it("accepts a query with unrelated records in the additional section", () => {
    const wire = concat(
      header({ flags: RD, qd: 1, ar: 1 }),
      wireName("example.com"),
      A_IN,
      [0xc0, 12, 0, 16, 0, 1, 0, 0, 0, 0, 0, 2, 1, 0x78],
    );
    expect(classifyQuery(wire).kind).toBe("query");
  });

  const cases: {
    name: string;
    wire: Uint8Array;
    kind: "drop" | "reject";
    rcode?: number;
    withInfo?: boolean;
    reason: RegExp;
  }[] = [
    { name: "an empty message", wire: new Uint8Array(0), kind: "drop", reason: /0 bytes/ },
    { name: "11 bytes", wire: new Uint8Array(11), kind: "drop", reason: /11 bytes/ },
    {
      name: "a malformed body",
      wire: concat(header({ qd: 1 }), [5, 0x61]),
      kind: "reject",
      rcode: Rcode.FORMERR,
      withInfo: false,
      reason: /past the end/,
    },
    {
      name: "a response sent as a query",
      wire: makeQuery({ response: true }),
      kind: "reject",
      rcode: Rcode.FORMERR,
      withInfo: true,
      reason: /is a response/,
    },
    {
      name: "a response with opcode UPDATE (QR wins)",
      wire: makeQuery({ response: true, flags: 5 << 11 }),
      kind: "reject",
      rcode: Rcode.FORMERR,
      withInfo: true,
      reason: /is a response/,
    },
    {
      name: "qdcount 0",
      wire: header({ flags: RD }),
      kind: "reject",
      rcode: Rcode.FORMERR,
      withInfo: true,
      reason: /qdcount is 0/,
    },
    {
      name: "qdcount 2",
      wire: concat(header({ flags: RD, qd: 2 }), wireName("a"), A_IN, wireName("b"), A_IN),
      kind: "reject",
      rcode: Rcode.FORMERR,
      withInfo: true,
      reason: /qdcount is 2/,
    },
    {
      name: "an answer record in a query",
      wire: concat(
        header({ flags: RD, qd: 1, an: 1 }),
        wireName("a"),
        A_IN,
        [0xc0, 12, ...A_IN, 0, 0, 0, 1, 0, 4, 1, 2, 3, 4],
      ),
      kind: "reject",
      rcode: Rcode.FORMERR,
      withInfo: true,
      reason: /answer records/,
    },
    {
      name: "an authority record in a query",
      wire: concat(
        header({ flags: RD, qd: 1, ns: 1 }),
        wireName("a"),
        A_IN,
        [0xc0, 12, 0, 2, 0, 1, 0, 0, 0, 1, 0, 2, 0xc0, 12],
      ),
      kind: "reject",
      rcode: Rcode.FORMERR,
      withInfo: true,
      reason: /answer records/,
    },
    {
      name: "opcode 5 (UPDATE)",
      wire: makeQuery({ flags: 5 << 11 }),
      kind: "reject",
      rcode: Rcode.NOTIMP,
      withInfo: true,
      reason: /opcode/,
    },
    {
      name: "opcode 2 (STATUS)",
      wire: makeQuery({ flags: (2 << 11) | RD }),
      kind: "reject",
      rcode: Rcode.NOTIMP,
      withInfo: true,
      reason: /opcode/,
    },
    {
      name: "opcode 4 (NOTIFY) with no question",
      wire: header({ flags: 4 << 11 }),
      kind: "reject",
      rcode: Rcode.NOTIMP,
      withInfo: true,
      reason: /opcode/,
    },
    {
      name: "EDNS version 1",
      wire: makeQuery({ opt: { version: 1 } }),
      kind: "reject",
      rcode: Rcode.BADVERS,
      withInfo: true,
      reason: /EDNS version/,
    },
    {
      name: "EDNS version 255",
      wire: makeQuery({ opt: { version: 255, flags: 0x8000 } }),
      kind: "reject",
      rcode: Rcode.BADVERS,
      withInfo: true,
      reason: /EDNS version/,
    },
  ];
  for (const c of cases) {
    it(`${c.kind === "drop" ? "drops" : `answers ${c.rcode} to`} ${c.name}`, () => {
      const result = classifyQuery(c.wire);
      expect(result.kind).toBe(c.kind);
      if (result.kind === "query") return;
      expect(result.reason).toMatch(c.reason);
      if (result.kind === "reject") {
        expect(result.rcode).toBe(c.rcode);
        expect(result.info !== undefined).toBe(c.withInfo);
      }
    });
  }

  it("accepts a non-zero extended rcode in a version 0 OPT (only the version is checked)", () => {
    expect(classifyQuery(makeQuery({ opt: { extendedRcode: 1 } })).kind).toBe("query");
  });

  describe("the MALFORMED corpus", () => {
    for (const c of MALFORMED) {
      it(`classifies "${c.name}" as ${c.expect}`, () => {
        const result = classifyQuery(c.bytes);
        if (c.expect === "drop") {
          expect(result.kind).toBe("drop");
        } else {
          expect(result.kind).toBe("reject");
          expect(result.kind === "reject" && result.rcode).toBe(Rcode.FORMERR);
        }
      });
    }

    it("has unique names and at least the required cases", () => {
      const names = MALFORMED.map((c) => c.name);
      expect(new Set(names).size).toBe(names.length);
      expect(MALFORMED.find((c) => c.bytes.length === 65535)).toBeDefined();
      expect(MALFORMED.find((c) => c.bytes.length === 0)?.expect).toBe("drop");
    });
  });
});
