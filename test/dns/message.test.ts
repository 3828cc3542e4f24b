import { describe, expect, it } from "vitest";
import * as fc from "fast-check";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import {
  getFlags,
  getId,
  headerOpcode,
  headerRcode,
  parseMessage,
  type Question,
  readHeader,
  readName,
  sameQuestion,
  skipName,
  withId,
} from "../../src/dns/message.ts";
import { A_IN, concat, decodePacket, header, makeQuery, MALFORMED, wireName } from "./fixtures.ts";

const OPT_EMPTY = [0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0];

describe("readName", () => {
  const cases: { name: string; wire: Uint8Array; offset: number; want: string; end: number }[] = [
    {
      name: "a plain name",
      wire: wireName("example.com"),
      offset: 0,
      want: "example.com",
      end: 13,
    },
    { name: "the root", wire: Uint8Array.from([0]), offset: 0, want: "", end: 1 },
    {
      name: "a name at an offset",
      wire: concat([9, 9, 9], wireName("a.b")),
      offset: 3,
      want: "a.b",
      end: 8,
    },
    {
      name: "a compressed suffix",
      // 0: example.com (13 bytes), 13: www + pointer to 0
      wire: concat(wireName("example.com"), [3, 0x77, 0x77, 0x77, 0xc0, 0]),
      offset: 13,
      want: "www.example.com",
      end: 19,
    },
    {
      name: "a name that is only a pointer",
      wire: concat(wireName("example.com"), [0xc0, 0]),
      offset: 13,
      want: "example.com",
      end: 15,
    },
    {
      name: "a chain of backward pointers",
      // 0: com, 5: example + ptr(0), 15: www + ptr(5), 21: ptr(15)
      wire: concat(
        wireName("com"),
        [7, ...new TextEncoder().encode("example"), 0xc0, 0],
        [3, 0x77, 0x77, 0x77, 0xc0, 5],
        [0xc0, 15],
      ),
      offset: 21,
      want: "www.example.com",
      end: 23,
    },
    {
      name: "a pointer into the middle of a name",
      wire: concat(wireName("www.example.com"), [0xc0, 4]),
      offset: 17,
      want: "example.com",
      end: 19,
    },
    {
      name: "escapes for dot, backslash and non-printable bytes",
      wire: Uint8Array.from([5, 0x61, 0x2e, 0x5c, 0x20, 0x00, 1, 0x7f, 0]),
      offset: 0,
      want: "a\\.\\\\\\032\\000.\\127",
      end: 9,
    },
    {
      name: "upper case kept as sent",
      wire: wireName("WwW.ExAmple.COM"),
      offset: 0,
      want: "WwW.ExAmple.COM",
      end: 17,
    },
    {
      name: "a name of exactly 255 bytes",
      wire: wireName(["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join(".")),
      offset: 0,
      want: ["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(61)].join("."),
      end: 255,
    },
  ];
  for (const c of cases) {
    it(`reads ${c.name}`, () => {
      expect(readName(c.wire, c.offset)).toEqual({ name: c.want, end: c.end });
    });
  }

  const bad: { name: string; wire: Uint8Array; offset: number; message: RegExp }[] = [
    { name: "a pointer to itself", wire: Uint8Array.from([0xc0, 0]), offset: 0, message: /loop/ },
    {
      name: "a pointer to itself after a label",
      wire: Uint8Array.from([1, 0x61, 0xc0, 2]),
      offset: 0,
      message: /loop/,
    },
    {
      name: "a forward pointer",
      wire: Uint8Array.from([0xc0, 2, 1, 0x61, 0]),
      offset: 0,
      message: /loop/,
    },
    {
      name: "two pointers pointing at each other",
      wire: Uint8Array.from([0, 0xc0, 3, 0xc0, 1]),
      offset: 3,
      message: /loop/,
    },
    {
      name: "a label past the end",
      wire: Uint8Array.from([5, 0x61, 0x62]),
      offset: 0,
      message: /past the end/,
    },
    {
      name: "a name without its terminating zero",
      wire: Uint8Array.from([1, 0x61]),
      offset: 0,
      message: /past the end/,
    },
    {
      name: "a truncated pointer",
      wire: Uint8Array.from([1, 0x61, 0xc0]),
      offset: 0,
      message: /past the end/,
    },
    { name: "an offset past the end", wire: Uint8Array.from([0]), offset: 1, message: /past/ },
    {
      name: "label type 0x40",
      wire: Uint8Array.from([0x41, 0x61, 0]),
      offset: 0,
      message: /reserved/,
    },
    {
      name: "label type 0x80",
      wire: Uint8Array.from([0x81, 0x61, 0]),
      offset: 0,
      message: /reserved/,
    },
    {
      name: "a 256-byte name",
      wire: wireName(["a".repeat(63), "b".repeat(63), "c".repeat(63), "d".repeat(62)].join(".")),
      offset: 0,
      message: /over 255/,
    },
    {
      name: "a name over 255 bytes only after decompression",
      // 0: 3×63-byte labels + root (193 bytes), 193: 63-byte label + pointer to 0
      wire: concat(
        wireName(["a".repeat(63), "b".repeat(63), "c".repeat(63)].join(".")),
        [63, ...new Uint8Array(63).fill(0x64), 0xc0, 0],
      ),
      offset: 193,
      message: /over 255/,
    },
  ];
  for (const c of bad) {
    it(`rejects ${c.name} with a RangeError`, () => {
      expect(() => readName(c.wire, c.offset)).toThrow(RangeError);
      expect(() => readName(c.wire, c.offset)).toThrow(c.message);
    });
  }

  it("gives up on a long pointer chain instead of looping", () => {
    // 70 pointers each pointing at the one before; the first points at a root label.
    const parts: number[] = [0];
    for (let i = 0; i < 70; i++) parts.push(0xc0, i === 0 ? 0 : 1 + (i - 1) * 2);
    const wire = Uint8Array.from(parts);
    expect(() => readName(wire, wire.length - 2)).toThrow(/compression loop/);
    // A shorter chain of the same shape is fine.
    expect(readName(wire, 1 + 10 * 2)).toEqual({ name: "", end: 23 });
  });
});

describe("parseMessage", () => {
  it("reads header, question, counts and OPT of a query", () => {
    const wire = makeQuery({
      id: 0xabcd,
      name: "www.example.org",
      type: "AAAA",
      flags: dnsPacket.RECURSION_DESIRED | dnsPacket.CHECKING_DISABLED,
      opt: {
        udpSize: 4096,
        flags: 0x8000,
        options: [{ code: 10, data: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }, {
          code: 12,
          data: new Uint8Array(0),
        }],
      },
    });
    const info = parseMessage(wire);
    expect(info.id).toBe(0xabcd);
    expect(info.flags).toBe(0x0110);
    expect([info.qdcount, info.ancount, info.nscount, info.arcount]).toEqual([1, 0, 0, 1]);
    expect(info.question).toEqual({ name: "www.example.org", type: 28, class: 1 });
    expect(info.questionEnd).toBe(12 + 17 + 4);
    expect(info.opt).toBeDefined();
    expect(info.opt!.start).toBe(info.questionEnd);
    expect(info.opt!.end).toBe(wire.length);
    expect(info.opt!.udpSize).toBe(4096);
    expect(info.opt!.ttl).toBe(0x8000);
    expect(info.opt!.options.map((o) => [o.code, Array.from(o.data)])).toEqual([
      [10, [1, 2, 3, 4, 5, 6, 7, 8]],
      [12, []],
    ]);
  });

  it("reads the extended rcode and version bits of the OPT TTL unsigned", () => {
    const wire = makeQuery({ opt: { extendedRcode: 0xff, version: 1, flags: 0xffff } });
    expect(parseMessage(wire).opt!.ttl).toBe(0xff01ffff);
  });

  it("reads a response with compressed names in every section", () => {
    const wire = concat(
      header({ id: 1, flags: 0x8180, qd: 1, an: 2, ns: 1, ar: 1 }),
      wireName("example.com"), // 12..24
      A_IN,
      [0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 6, 3, 0x77, 0x77, 0x77, 0xc0, 12], // CNAME www.
      [0xc0, 12, ...A_IN, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1],
      [0xc0, 12, 0, 2, 0, 1, 0, 0, 0, 60, 0, 2, 0xc0, 12], // NS
      OPT_EMPTY,
    );
    const info = parseMessage(wire);
    expect(info.question?.name).toBe("example.com");
    expect([info.ancount, info.nscount, info.arcount]).toEqual([2, 1, 1]);
    expect(info.opt?.start).toBe(wire.length - OPT_EMPTY.length);
    expect(headerRcode(info.flags)).toBe(0);
  });

  it("takes the first of several questions", () => {
    const wire = concat(header({ qd: 2 }), wireName("a.example"), A_IN, wireName("b"), [
      0,
      28,
      0,
      1,
    ]);
    const info = parseMessage(wire);
    expect(info.question).toEqual({ name: "a.example", type: 1, class: 1 });
    expect(info.questionEnd).toBe(wire.length);
  });

  it("accepts a header with no records", () => {
    const info = parseMessage(header({ id: 5 }));
    expect(info).toMatchObject({ id: 5, qdcount: 0, questionEnd: 12 });
    expect(info.question).toBeUndefined();
    expect(info.opt).toBeUndefined();
  });

  const bad: { name: string; wire: Uint8Array; message: RegExp }[] = [
    { name: "an 11-byte message", wire: new Uint8Array(11), message: /shorter than a header/ },
    { name: "qdcount bigger than present", wire: header({ qd: 1 }), message: /past the end/ },
    {
      name: "ancount bigger than present",
      wire: concat(header({ qd: 1, an: 1 }), wireName("x"), A_IN),
      message: /past the end/,
    },
    {
      name: "nscount bigger than present",
      wire: concat(header({ ns: 2 }), [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0]),
      message: /past the end/,
    },
    {
      name: "a record header cut short",
      wire: concat(header({ an: 1 }), [0, 0, 1, 0, 1, 0, 0, 0, 0]),
      message: /record header runs past the end/,
    },
    {
      name: "rdata past the end",
      wire: concat(header({ an: 1 }), [0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 5, 1, 2]),
      message: /record data runs past the end/,
    },
    {
      name: "trailing bytes",
      wire: concat(header({ qd: 1 }), wireName("x"), A_IN, [0]),
      message: /1 trailing bytes/,
    },
    {
      name: "an OPT record in the answer section",
      wire: concat(header({ an: 1 }), OPT_EMPTY),
      message: /OPT record outside the additional section/,
    },
    {
      name: "an OPT record in the authority section",
      wire: concat(header({ ns: 1, ar: 1 }), OPT_EMPTY, OPT_EMPTY),
      message: /OPT record outside the additional section/,
    },
    {
      name: "two OPT records",
      wire: concat(header({ ar: 2 }), OPT_EMPTY, OPT_EMPTY),
      message: /more than one OPT/,
    },
    {
      name: "an OPT record owned by a name other than the root",
      wire: concat(header({ ar: 1 }), [1, 0x61, ...OPT_EMPTY]),
      message: /owner is not the root/,
    },
    {
      name: "an EDNS option header cut short inside the OPT rdata",
      wire: concat(header({ ar: 1 }), [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 3, 0, 12, 0]),
      message: /option header runs past/,
    },
    {
      name: "an EDNS option longer than the OPT rdata",
      wire: concat(header({ ar: 1 }), [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 5, 0, 12, 0, 2, 0]),
      message: /option runs past/,
    },
    {
      name: "a question name that loops",
      wire: concat(header({ qd: 1 }), [0xc0, 12], A_IN),
      message: /compression loop/,
    },
    {
      name: "a question name that points forward",
      wire: concat(header({ qd: 1 }), [0xc0, 14], A_IN),
      message: /compression loop/,
    },
    {
      name: "a question name over 255 bytes",
      wire: concat(header({ qd: 1 }), wireName(Array(5).fill("x".repeat(60)).join(".")), A_IN),
      message: /over 255/,
    },
  ];
  for (const c of bad) {
    it(`rejects ${c.name} with a RangeError`, () => {
      expect(() => parseMessage(c.wire)).toThrow(RangeError);
      expect(() => parseMessage(c.wire)).toThrow(c.message);
    });
  }

  it("parses an answer record whose owner is a pointer without checking where it points", () => {
    // Answer owner names are skipped, not followed: a pointer is accepted as two bytes.
    const wire = concat(header({ qd: 1, an: 1 }), wireName("x"), A_IN, [0xc0, 12], A_IN, [
      0,
      0,
      0,
      1,
      0,
      0,
    ]);
    expect(parseMessage(wire).ancount).toBe(1);
  });

  it("returns option data as a view of the message, not a copy", () => {
    const wire = makeQuery({ opt: { options: [{ code: 65001, data: Uint8Array.from([7]) }] } });
    const data = parseMessage(wire).opt!.options[0].data;
    expect(data.buffer).toBe(wire.buffer);
  });

  it("rejects every malformed fixture that does not parse, and only with a RangeError", () => {
    let rejected = 0;
    for (const c of MALFORMED) {
      try {
        parseMessage(c.bytes);
      } catch (e) {
        expect(e, c.name).toBeInstanceOf(RangeError);
        rejected++;
      }
    }
    expect(rejected).toBeGreaterThan(MALFORMED.length / 2);
  });
});

describe("skipName", () => {
  it.each([
    ["the root", [0], 0, 1],
    ["an inline name", [1, 0x61, 1, 0x62, 0], 0, 5],
    ["a pointer", [1, 0x61, 0, 0xc0, 0x00], 3, 5],
    ["labels then a pointer", [1, 0x61, 0, 1, 0x62, 0xc0, 0x00], 3, 7],
  ])("steps over %s", (_what, wire, offset, end) => {
    expect(skipName(Uint8Array.from(wire), offset)).toBe(end);
  });

  it.each([
    ["a name that runs past the end", [3, 0x61, 0x62]],
    ["a pointer cut in half", [1, 0x61, 0xc0]],
    ["a reserved label type", [0x40, 0]],
  ])("refuses %s", (_what, wire) => {
    expect(() => skipName(Uint8Array.from(wire), 0)).toThrow(RangeError);
  });
});

describe("sameQuestion", () => {
  const base: Question = { name: "www.Example.com", type: 1, class: 1 };
  const cases: { name: string; other: Question; same: boolean }[] = [
    { name: "identical", other: { ...base }, same: true },
    { name: "other letter case (0x20)", other: { ...base, name: "WWW.eXAMPLE.COM" }, same: true },
    { name: "another name", other: { ...base, name: "www.example.net" }, same: false },
    { name: "a longer name", other: { ...base, name: "a.www.example.com" }, same: false },
    { name: "another type", other: { ...base, type: 28 }, same: false },
    { name: "another class", other: { ...base, class: 3 }, same: false },
  ];
  for (const c of cases) {
    it(`says ${c.same} for ${c.name}`, () => {
      expect(sameQuestion(base, c.other)).toBe(c.same);
      expect(sameQuestion(c.other, base)).toBe(c.same);
    });
  }
});

describe("withId and header helpers", () => {
  it("returns a copy with the new ID and leaves the original alone", () => {
    const wire = makeQuery({ id: 0x1234 });
    const before = wire.slice();
    for (const id of [0, 1, 0x00ff, 0xff00, 0xffff]) {
      const copy = withId(wire, id);
      expect(copy).not.toBe(wire);
      expect(copy.buffer).not.toBe(wire.buffer);
      expect(getId(copy)).toBe(id);
      expect(copy.subarray(2)).toEqual(wire.subarray(2));
    }
    expect(wire).toEqual(before);
  });

  it("copies only the view it is given", () => {
    const big = concat([9, 9, 9], makeQuery({ id: 0x4242 }));
    const view = big.subarray(3);
    const copy = withId(view, 7);
    expect(copy.length).toBe(view.length);
    expect(getId(copy)).toBe(7);
    expect(getId(view)).toBe(0x4242);
  });

  it("reads every header field at its place, big-endian, whatever follows it", () => {
    const fields = { id: 0xa1b2, flags: 0x8583, qd: 0x0102, an: 0x0304, ns: 0xff00, ar: 0x00ff };
    const wire = concat(header(fields), [0xde, 0xad]);
    expect(readHeader(wire)).toEqual({
      id: 0xa1b2,
      flags: 0x8583,
      qdcount: 0x0102,
      ancount: 0x0304,
      nscount: 0xff00,
      arcount: 0x00ff,
    });
    expect(getId(wire)).toBe(0xa1b2);
    expect(getFlags(wire)).toBe(0x8583);
    expect(getFlags(wire.subarray(0, 4))).toBe(0x8583);
    // parseMessage reads its header the same way.
    const query = makeQuery({ id: 0x0b0c });
    expect(parseMessage(query)).toMatchObject(readHeader(query));
  });

  it("refuses to read a header from fewer than 12 bytes", () => {
    expect(() => readHeader(header().subarray(0, 11))).toThrow(
      new RangeError("dns: message of 11 bytes is shorter than a header"),
    );
  });

  it("reads opcode and rcode from the flags word", () => {
    expect(headerOpcode(0x2800)).toBe(5);
    expect(headerOpcode(0x7800 | 0x8000)).toBe(15);
    expect(headerOpcode(0x0100)).toBe(0);
    expect(headerRcode(0x8183)).toBe(3);
    expect(headerRcode(0x810f)).toBe(15);
  });
});

// ---- properties ----

const LABEL_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_".split("");
const labelArb = fc.array(fc.constantFrom(...LABEL_CHARS), { minLength: 1, maxLength: 30 }).map((
  a,
) => a.join(""));
const nameArb = fc.array(labelArb, { minLength: 0, maxLength: 5 }).map((l) => l.join("."));
const qtypeArb = fc.constantFrom(
  "A",
  "AAAA",
  "TXT",
  "MX",
  "NS",
  "CNAME",
  "PTR",
  "SOA",
  "SRV",
  "ANY",
);
const ipv4Arb = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((p) =>
  p.join(".")
);

const recordArb: fc.Arbitrary<dnsPacket.Answer> = fc.oneof(
  fc.record({ name: nameArb, ttl: fc.nat(86400), data: ipv4Arb }).map((r) => ({
    ...r,
    type: "A" as const,
  })),
  fc.record({ name: nameArb, ttl: fc.nat(86400), data: nameArb }).map((r) => ({
    ...r,
    type: "CNAME" as const,
  })),
  fc.record({
    name: nameArb,
    ttl: fc.nat(86400),
    data: fc.array(fc.string({ maxLength: 40 }), { minLength: 1, maxLength: 3 }),
  }).map((r) => ({ ...r, type: "TXT" as const })),
  fc.record({
    name: nameArb,
    ttl: fc.nat(86400),
    data: fc.record({ preference: fc.nat(65535), exchange: nameArb }),
  }).map((r) => ({ ...r, type: "MX" as const })),
);

const optArb = fc.record({
  udpPayloadSize: fc.integer({ min: 512, max: 65535 }),
  flags: fc.constantFrom(0, dnsPacket.DNSSEC_OK),
  options: fc.array(
    fc.record({
      code: fc.integer({ min: 0, max: 65535 }).filter((c) => ![8, 11, 12, 14].includes(c)),
      data: fc.uint8Array({ maxLength: 20 }).map((d) => Buffer.from(d)),
    }),
    { maxLength: 3 },
  ),
}).map((o) => ({ ...o, type: "OPT", name: "." }) as unknown as dnsPacket.Answer);

const packetArb = fc.record({
  id: fc.nat(65535),
  flags: fc.nat(0x7fff),
  response: fc.boolean(),
  questions: fc.array(
    fc.record({ name: nameArb, type: qtypeArb, class: fc.constantFrom("IN", "CH", "HS") }),
    { minLength: 0, maxLength: 2 },
  ),
  answers: fc.array(recordArb, { maxLength: 4 }),
  authorities: fc.array(recordArb, { maxLength: 2 }),
  additionals: fc.array(recordArb, { maxLength: 2 }),
  opt: fc.option(optArb, { nil: undefined }),
}).map((p) =>
  new Uint8Array(dnsPacket.encode({
    id: p.id,
    flags: p.flags,
    type: p.response ? "response" : "query",
    questions: p.questions as dnsPacket.Question[],
    answers: p.answers,
    authorities: p.authorities,
    additionals: p.opt ? [...p.additionals, p.opt] : p.additionals,
  }))
);

function rethrowUnlessRange(wire: Uint8Array): void {
  try {
    const info = parseMessage(wire);
    // Whatever parses is self-consistent.
    expect(info.questionEnd).toBeLessThanOrEqual(wire.length);
    if (info.opt) {
      expect(info.opt.start).toBeGreaterThanOrEqual(info.questionEnd);
      expect(info.opt.end).toBeLessThanOrEqual(wire.length);
    }
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
  }
}

describe("parseMessage properties", () => {
  it("agrees with dns-packet on id, counts, flags, first question and OPT", () => {
    fc.assert(
      fc.property(packetArb, (wire) => {
        const ref = decodePacket(wire);
        const info = parseMessage(wire);
        expect(info.id).toBe(ref.id);
        expect(info.flags & 0x7fff).toBe(ref.flags);
        expect(info.qdcount).toBe(ref.questions!.length);
        expect(info.ancount).toBe(ref.answers!.length);
        expect(info.nscount).toBe(ref.authorities!.length);
        expect(info.arcount).toBe(ref.additionals!.length);
        const q = ref.questions![0];
        if (q) {
          expect(info.question!.name).toBe(q.name === "." ? "" : q.name);
          expect(q.type).toBe(typeName(info.question!.type));
          expect(q.class).toBe(["", "IN", "CS", "CH", "HS"][info.question!.class]);
        } else {
          expect(info.question).toBeUndefined();
        }
        const refOpt = ref.additionals!.find((a) => a.type === "OPT") as
          | { udpPayloadSize: number; flags: number; options: { code: number; data: Buffer }[] }
          | undefined;
        if (refOpt) {
          expect(info.opt!.udpSize).toBe(refOpt.udpPayloadSize);
          expect(info.opt!.ttl & 0xffff).toBe(refOpt.flags);
          expect(info.opt!.options.map((o) => [o.code, Array.from(o.data)])).toEqual(
            refOpt.options.map((o) => [o.code, Array.from(o.data)]),
          );
        } else {
          expect(info.opt).toBeUndefined();
        }
      }),
      { numRuns: 300 },
    );
  });

  it("throws nothing but RangeError on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => rethrowUnlessRange(bytes)),
      {
        numRuns: 2000,
      },
    );
  });

  it("throws nothing but RangeError on arbitrary bytes behind a plausible header", () => {
    const headerArb = fc.tuple(fc.nat(65535), fc.nat(3), fc.nat(3), fc.nat(3), fc.nat(3)).map((
      [id, qd, an, ns, ar],
    ) => header({ id, qd, an, ns, ar }));
    fc.assert(
      fc.property(
        headerArb,
        fc.uint8Array({ maxLength: 200 }),
        (h, body) => rethrowUnlessRange(concat(h, body)),
      ),
      { numRuns: 2000 },
    );
  });

  it("throws nothing but RangeError on random mutations of valid messages", () => {
    const mutationArb = fc.oneof(
      fc.record({ kind: fc.constant("set" as const), at: fc.nat(), byte: fc.nat(255) }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat(), byte: fc.constant(0) }),
      fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), byte: fc.nat(255) }),
      fc.record({ kind: fc.constant("pointer" as const), at: fc.nat(), byte: fc.nat(255) }),
    );
    fc.assert(
      fc.property(
        packetArb,
        fc.array(mutationArb, { minLength: 1, maxLength: 6 }),
        (wire, muts) => {
          let w: Uint8Array = wire;
          for (const m of muts) {
            if (w.length === 0) break;
            const at = m.at % w.length;
            if (m.kind === "set") {
              w = w.slice();
              w[at] = m.byte;
            } else if (m.kind === "cut") {
              w = w.slice(0, at);
            } else if (m.kind === "insert") {
              w = concat(w.subarray(0, at), [m.byte], w.subarray(at));
            } else if (at + 1 < w.length) {
              w = w.slice();
              w[at] = 0xc0 | (m.byte & 0x3f);
              w[at + 1] = m.byte;
            }
          }
          rethrowUnlessRange(w);
        },
      ),
      { numRuns: 1000 },
    );
  });
});

function typeName(type: number): string {
  const names: Record<number, string> = {
    1: "A",
    2: "NS",
    5: "CNAME",
    6: "SOA",
    12: "PTR",
    15: "MX",
    16: "TXT",
    28: "AAAA",
    33: "SRV",
    255: "ANY",
  };
  return names[type] ?? `UNKNOWN_${type}`;
}
