import { describe, expect, it } from "vitest";
import * as fc from "fast-check";
import { EdeCode, Rcode } from "../../src/dns/constants.ts";
import { headerOpcode, headerRcode, parseMessage } from "../../src/dns/message.ts";
import {
  extendedErrorOption,
  InvalidAnswerError,
  makeErrorResponse,
  validateAnswer,
} from "../../src/dns/response.ts";
import { concat, decodePacket, encodePacket, header, makeAnswer, makeQuery } from "./fixtures.ts";

const QR = 0x8000;
const AA = 0x0400;
const TC = 0x0200;
const RD = 0x0100;
const RA = 0x0080;
const AD = 0x0020;
const CD = 0x0010;

interface RefOpt {
  udpPayloadSize: number;
  flags: number;
  extendedRcode: number;
  ednsVersion: number;
  options: { code: number; data: Uint8Array }[];
}

function refOpt(wire: Uint8Array): RefOpt | undefined {
  return decodePacket(wire).additionals!.find((a) => a.type === "OPT") as RefOpt | undefined;
}

function flagsOf(wire: Uint8Array): number {
  return (wire[2] << 8) | wire[3];
}

describe("makeErrorResponse", () => {
  it("answers with the query's ID, QR and RA set, and the rcode", () => {
    const query = makeQuery({ id: 0xbeef, name: "www.example.net", type: "AAAA" });
    const out = makeErrorResponse(query, parseMessage(query), Rcode.SERVFAIL);
    const info = parseMessage(out);
    expect(info.id).toBe(0xbeef);
    expect(info.flags & QR).toBe(QR);
    expect(info.flags & RA).toBe(RA);
    expect(headerRcode(info.flags)).toBe(Rcode.SERVFAIL);
    expect(info.question).toEqual({ name: "www.example.net", type: 28, class: 1 });
    expect([info.qdcount, info.ancount, info.nscount, info.arcount]).toEqual([1, 0, 0, 0]);
    const ref = decodePacket(out);
    expect(ref).toMatchObject({ id: 0xbeef, type: "response", rcode: "SERVFAIL" });
    expect(ref.questions![0]).toMatchObject({ name: "www.example.net", type: "AAAA" });
  });

  const flagCases: { name: string; flags: number; want: number }[] = [
    { name: "RD copied", flags: RD, want: RD },
    { name: "CD copied", flags: CD, want: CD },
    { name: "RD and CD copied", flags: RD | CD, want: RD | CD },
    { name: "neither set", flags: 0, want: 0 },
    { name: "AA, TC and AD not copied", flags: AA | TC | AD | RD, want: RD },
  ];
  for (const c of flagCases) {
    it(`copies request flags: ${c.name}`, () => {
      const query = makeQuery({ flags: c.flags });
      const out = makeErrorResponse(query, parseMessage(query), Rcode.REFUSED);
      expect(flagsOf(out) & (AA | TC | AD | RD | CD)).toBe(c.want);
    });
  }

  for (const opcode of [0, 1, 2, 4, 5, 15]) {
    it(`copies opcode ${opcode}`, () => {
      const query = makeQuery({ flags: (opcode << 11) | RD });
      const out = makeErrorResponse(query, parseMessage(query), Rcode.NOTIMP);
      expect(headerOpcode(flagsOf(out))).toBe(opcode);
      expect(headerRcode(flagsOf(out))).toBe(Rcode.NOTIMP);
    });
  }

  for (const rcode of [0, 1, 2, 3, 4, 5, 15]) {
    it(`puts rcode ${rcode} in the header`, () => {
      const query = makeQuery();
      expect(headerRcode(flagsOf(makeErrorResponse(query, parseMessage(query), rcode)))).toBe(
        rcode,
      );
    });
  }

  it("adds no OPT record when the query had none, even with an EDE", () => {
    const query = makeQuery();
    const out = makeErrorResponse(query, parseMessage(query), Rcode.SERVFAIL, {
      code: EdeCode.NETWORK_ERROR,
    });
    expect(parseMessage(out).opt).toBeUndefined();
    expect(out.length).toBe(query.length);
  });

  it("adds an OPT record when the query had one, with the DO bit copied", () => {
    for (const doBit of [0, 0x8000]) {
      const query = makeQuery({ opt: { udpSize: 4096, flags: doBit, options: [] } });
      const out = makeErrorResponse(query, parseMessage(query), Rcode.SERVFAIL);
      const info = parseMessage(out);
      expect(info.arcount).toBe(1);
      expect(info.opt!.options).toEqual([]);
      expect(info.opt!.ttl).toBe(doBit);
      const ref = refOpt(out)!;
      expect(ref.flags).toBe(doBit);
      expect(ref.udpPayloadSize).toBe(1232);
      expect(ref.extendedRcode).toBe(0);
    }
  });

  it("does not echo the query's EDNS options", () => {
    const query = makeQuery({
      opt: { options: [{ code: 8, data: Uint8Array.from([0, 1, 24, 0, 10, 0, 0]) }] },
    });
    const out = makeErrorResponse(query, parseMessage(query), Rcode.SERVFAIL);
    expect(parseMessage(out).opt!.options).toEqual([]);
  });

  const edeCases: { code: number; text?: string; data: number[] }[] = [
    { code: EdeCode.NETWORK_ERROR, text: "upstream unreachable", data: [0, 23] },
    { code: EdeCode.NO_REACHABLE_AUTHORITY, data: [0, 22] },
    { code: EdeCode.PROHIBITED, text: "", data: [0, 18] },
    { code: 0x1234, text: "é", data: [0x12, 0x34] },
  ];
  for (const c of edeCases) {
    it(`encodes EDE ${c.code} with text ${JSON.stringify(c.text)}`, () => {
      const query = makeQuery({ opt: {} });
      const out = makeErrorResponse(query, parseMessage(query), Rcode.SERVFAIL, {
        code: c.code,
        text: c.text,
      });
      const option = parseMessage(out).opt!.options[0];
      expect(option.code).toBe(15);
      expect(Array.from(option.data.subarray(0, 2))).toEqual(c.data);
      expect(new TextDecoder().decode(option.data.subarray(2))).toBe(c.text ?? "");
      const ref = refOpt(out)!;
      expect(ref.options).toHaveLength(1);
      expect(ref.options[0].code).toBe(15);
      expect(Array.from(ref.options[0].data)).toEqual(Array.from(option.data));
    });
  }

  it("extendedErrorOption encodes the info code big-endian followed by UTF-8 text", () => {
    const option = extendedErrorOption({ code: 22, text: "no" });
    expect(option.code).toBe(15);
    expect(Array.from(option.data)).toEqual([0, 22, 0x6e, 0x6f]);
  });

  it("puts the upper bits of BADVERS (16) in the OPT TTL and the lower bits in the header", () => {
    const query = makeQuery({ id: 3, opt: { version: 1, flags: 0x8000 } });
    const out = makeErrorResponse(query, parseMessage(query), Rcode.BADVERS);
    const info = parseMessage(out);
    expect(headerRcode(info.flags)).toBe(0);
    expect(info.opt!.ttl >>> 24).toBe(1);
    expect((info.opt!.ttl >>> 16) & 0xff).toBe(0); // we answer with the version we speak
    expect(info.opt!.ttl & 0xffff).toBe(0x8000);
    const ref = refOpt(out)!;
    expect(ref.extendedRcode).toBe(1);
    expect((ref.extendedRcode << 4) | headerRcode(info.flags)).toBe(16);
  });

  it("gives no question for a body that did not parse (header only readable)", () => {
    const garbage = concat(header({ id: 0x4242, flags: RD | CD, qd: 1, an: 9 }), [0xc0, 12, 1]);
    const out = makeErrorResponse(garbage, undefined, Rcode.FORMERR);
    expect(out.length).toBe(12);
    const info = parseMessage(out);
    expect(info).toMatchObject({ id: 0x4242, qdcount: 0, ancount: 0, nscount: 0, arcount: 0 });
    expect(info.flags).toBe(QR | RA | RD | CD | Rcode.FORMERR);
    expect(decodePacket(out)).toMatchObject({ id: 0x4242, rcode: "FORMERR" });
  });

  it("copes with fewer bytes than a header", () => {
    for (const bytes of [[], [0x12], [0x12, 0x34], [0x12, 0x34, 0x01]]) {
      const out = makeErrorResponse(Uint8Array.from(bytes), undefined, Rcode.FORMERR);
      const info = parseMessage(out);
      expect(info.id).toBe(((bytes[0] ?? 0) << 8) | (bytes[1] ?? 0));
      expect(headerRcode(info.flags)).toBe(Rcode.FORMERR);
      expect(info.flags & QR).toBe(QR);
    }
  });

  it("echoes only the question section of a query that carried answers", () => {
    const query = concat(
      header({ id: 1, qd: 1, an: 1 }),
      [7, ...new TextEncoder().encode("example"), 0, 0, 1, 0, 1],
      [0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1],
    );
    const out = makeErrorResponse(query, parseMessage(query), Rcode.FORMERR);
    const info = parseMessage(out);
    expect([info.qdcount, info.ancount]).toEqual([1, 0]);
    expect(info.question?.name).toBe("example");
  });

  it("does not modify the query", () => {
    const query = makeQuery({ opt: { flags: 0x8000 } });
    const copy = query.slice();
    makeErrorResponse(query, parseMessage(query), Rcode.SERVFAIL, { code: 23, text: "x" });
    expect(query).toEqual(copy);
  });
});

describe("validateAnswer", () => {
  const query = parseMessage(makeQuery({ id: 0x1111, name: "www.example.com" }));

  it("accepts a good answer and returns its parsed form", () => {
    const answer = makeAnswer({ id: 0x1111, name: "www.example.com" });
    const info = validateAnswer(query, answer, 0x1111);
    expect(info.ancount).toBe(1);
    expect(info.question?.name).toBe("www.example.com");
  });

  it("accepts a differently-cased question (0x20 randomisation)", () => {
    const answer = makeAnswer({ id: 0x1111, name: "WwW.eXaMpLe.CoM" });
    expect(validateAnswer(query, answer, 0x1111).question?.name).toBe("WwW.eXaMpLe.CoM");
  });

  it("accepts an answer without a question when its rcode is not NOERROR", () => {
    for (const rcode of [Rcode.FORMERR, Rcode.SERVFAIL, Rcode.NOTIMP, Rcode.REFUSED]) {
      const answer = header({ id: 0x1111, flags: QR | rcode });
      expect(validateAnswer(query, answer, 0x1111).qdcount).toBe(0);
    }
  });

  const bad: { name: string; answer: Uint8Array; message: RegExp }[] = [
    {
      name: "a query instead of a response",
      answer: makeQuery({ id: 0x1111, name: "www.example.com" }),
      message: /not a response/,
    },
    {
      name: "the wrong ID",
      answer: makeAnswer({ id: 0x1112, name: "www.example.com" }),
      message: /ID 4370, expected 4369/,
    },
    {
      name: "another name",
      answer: makeAnswer({ id: 0x1111, name: "www.example.org" }),
      message: /another question/,
    },
    {
      name: "another type",
      answer: encodePacket({
        type: "response",
        id: 0x1111,
        questions: [{ type: "AAAA", name: "www.example.com" }],
      }),
      message: /another question/,
    },
    {
      name: "no question with NOERROR",
      answer: header({ id: 0x1111, flags: QR }),
      message: /no question section/,
    },
    {
      name: "a truncated message",
      answer: makeAnswer({ id: 0x1111, name: "www.example.com" }).subarray(0, 40),
      message: /malformed answer/,
    },
    { name: "an empty body", answer: new Uint8Array(0), message: /malformed answer/ },
    {
      name: "trailing garbage",
      answer: concat(makeAnswer({ id: 0x1111, name: "www.example.com" }), [0]),
      message: /malformed answer: dns: 1 trailing bytes/,
    },
  ];
  for (const c of bad) {
    it(`rejects ${c.name}`, () => {
      let error: unknown;
      try {
        validateAnswer(query, c.answer, 0x1111);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InvalidAnswerError);
      expect((error as Error).message).toMatch(c.message);
      expect((error as Error).name).toBe("InvalidAnswerError");
    });
  }

  it("keeps the parse error as the cause of a malformed answer", () => {
    try {
      validateAnswer(query, new Uint8Array(3), 0);
      expect.unreachable();
    } catch (e) {
      expect((e as Error).cause).toBeInstanceOf(RangeError);
    }
  });

  it("checks the ID it is told to expect, not the query's", () => {
    const answer = makeAnswer({ id: 0, name: "www.example.com" });
    expect(validateAnswer(query, answer, 0).id).toBe(0);
    expect(() => validateAnswer(query, answer, 0x1111)).toThrow(InvalidAnswerError);
  });

  it("accepts the error responses the bridge makes itself", () => {
    const wire = makeQuery({ id: 0x1111, name: "www.example.com", opt: {} });
    const info = parseMessage(wire);
    for (const rcode of [Rcode.SERVFAIL, Rcode.REFUSED, Rcode.NOERROR]) {
      const out = makeErrorResponse(wire, info, rcode, { code: 0 });
      expect(validateAnswer(info, out, 0x1111).opt).toBeDefined();
    }
  });
});

describe("makeErrorResponse properties", () => {
  it("always builds a response that parses, that dns-packet decodes, and that validateAnswer accepts", () => {
    const label = fc.stringMatching(/^[A-Za-z0-9-]{1,63}$/);
    fc.assert(
      fc.property(
        fc.array(label, { minLength: 0, maxLength: 4 }),
        fc.nat(65535),
        fc.nat(0x7fff),
        fc.option(
          fc.record({ flags: fc.nat(0xffff), udpSize: fc.integer({ min: 512, max: 65535 }) }),
          {
            nil: undefined,
          },
        ),
        fc.integer({ min: 0, max: 4095 }),
        fc.option(fc.record({ code: fc.nat(65535), text: fc.string({ maxLength: 30 }) }), {
          nil: undefined,
        }),
        (labels, id, flags, opt, rcode, ede) => {
          const query = makeQuery({ id, flags: flags & ~0x000f, name: labels.join("."), opt });
          const info = parseMessage(query);
          const out = makeErrorResponse(query, info, rcode, ede);
          const parsed = validateAnswer(info, out, id);
          expect(parsed.question).toEqual(info.question);
          expect(headerRcode(parsed.flags)).toBe(rcode & 0x0f);
          if (opt) {
            expect(parsed.opt!.ttl >>> 24).toBe(rcode >> 4);
            expect(parsed.opt!.ttl & 0xffff).toBe(opt.flags & 0x8000);
            expect(parsed.opt!.options.length).toBe(ede ? 1 : 0);
          } else {
            expect(parsed.opt).toBeUndefined();
          }
          expect(decodePacket(out).id).toBe(id);
        },
      ),
      { numRuns: 300 },
    );
  });
});
