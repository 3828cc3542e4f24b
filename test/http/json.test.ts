import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { answerOf } from "../../src/dns/answer.ts";
import { answerToJson, buildJsonQuery, parseRrType } from "../../src/http/json.ts";

function encode(packet: dnsPacket.Packet): Uint8Array {
  return new Uint8Array(dnsPacket.encode(packet));
}

function responseWith(
  answers: dnsPacket.Answer[],
  opts: { rcode?: number; flags?: number; authorities?: dnsPacket.Answer[]; qtype?: string } = {},
): Uint8Array {
  return encode({
    type: "response",
    id: 0,
    flags: (opts.flags ?? (dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE)) |
      (opts.rcode ?? 0),
    questions: [{
      type: (opts.qtype ?? "A") as dnsPacket.RecordType,
      name: "r.example.test",
      class: "IN",
    }],
    answers,
    authorities: opts.authorities ?? [],
  });
}

const owner = "r.example.test";

describe("parseRrType", () => {
  const cases: [string, number | undefined][] = [
    ["A", 1],
    ["aaaa", 28],
    ["Mx", 15],
    ["HTTPS", 65],
    ["TYPE65", 65],
    ["type257", 257],
    ["65", 65],
    ["65535", 65535],
    ["0", undefined],
    ["65536", undefined],
    ["OPT", undefined],
    ["41", undefined],
    ["-1", undefined],
    ["A B", undefined],
    ["bogus", undefined],
    ["", undefined],
  ];
  it.each(cases)("%j -> %j", (text, expected) => {
    expect(parseRrType(text)).toBe(expected);
  });
});

describe("buildJsonQuery", () => {
  function decoded(params: Parameters<typeof buildJsonQuery>[0]) {
    const result = buildJsonQuery(params);
    if (!result.ok) throw new Error(result.error);
    return dnsPacket.decode(Buffer.from(result.wire));
  }

  it("builds an A query with ID 0, RD and an OPT record without DO by default", () => {
    const q = decoded({ name: "example.com" });
    expect(q.id).toBe(0);
    expect(q.type).toBe("query");
    expect(q.questions).toEqual([{ name: "example.com", type: "A", class: "IN" }]);
    expect(q.flag_rd).toBe(true);
    expect(q.flag_cd).toBe(false);
    const opt = q.additionals!.find((r) => r.type === "OPT") as dnsPacket.OptAnswer;
    expect(opt).toBeDefined();
    expect(opt.flag_do).toBe(false);
  });

  it("sets DO with do=1 and CD with cd=true", () => {
    const q = decoded({ name: "example.com.", type: "AAAA", do: "1", cd: "true" });
    expect(q.questions![0]).toEqual({ name: "example.com", type: "AAAA", class: "IN" });
    expect(q.flag_cd).toBe(true);
    expect((q.additionals!.find((r) => r.type === "OPT") as dnsPacket.OptAnswer).flag_do).toBe(
      true,
    );
  });

  it("takes a numeric type and the root name", () => {
    const result = buildJsonQuery({ name: ".", type: "65" });
    if (!result.ok) throw new Error(result.error);
    expect(result.type).toBe(65);
    // The root name is one zero byte, then QTYPE 65, QCLASS IN.
    expect([...result.wire.subarray(12, 17)]).toEqual([0, 0, 65, 0, 1]);
  });

  const bad: { what: string; name?: string | null; type?: string; error: RegExp }[] = [
    { what: "a missing name", name: null, error: /missing name/ },
    { what: "a name with a space", name: "exa mple.com", error: /invalid name/ },
    { what: "an empty label", name: "a..example.com", error: /empty label/ },
    { what: "a label over 63 bytes", name: `${"a".repeat(64)}.com`, error: /63/ },
    { what: "a name over 255 bytes", name: `${"a".repeat(60)}.`.repeat(5), error: /255/ },
    { what: "an escape", name: "a\\.b.com", error: /invalid name/ },
    { what: "a non-ASCII name", name: "bücher.example", error: /punycode/ },
    { what: "an unknown type", name: "example.com", type: "BOGUS", error: /invalid type/ },
    { what: "type 0", name: "example.com", type: "0", error: /invalid type/ },
  ];
  it.each(bad)("rejects $what", ({ name, type, error }) => {
    const result = buildJsonQuery({ name, type });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.error).toMatch(error);
  });
});

describe("answerToJson", () => {
  const records: { what: string; record: dnsPacket.Answer; type: number; data: string }[] = [
    {
      what: "A",
      record: { type: "A", name: owner, ttl: 1, data: "192.0.2.7" },
      type: 1,
      data: "192.0.2.7",
    },
    {
      what: "AAAA with a zero run",
      record: { type: "AAAA", name: owner, ttl: 1, data: "2001:db8:0:0:0:0:0:1" },
      type: 28,
      data: "2001:db8::1",
    },
    {
      what: "AAAA: the longest zero run is compressed",
      record: { type: "AAAA", name: owner, ttl: 1, data: "2001:0:0:1:0:0:0:1" },
      type: 28,
      data: "2001:0:0:1::1",
    },
    {
      what: "AAAA: a single zero group is not compressed",
      record: { type: "AAAA", name: owner, ttl: 1, data: "2001:db8:0:1:1:1:1:1" },
      type: 28,
      data: "2001:db8:0:1:1:1:1:1",
    },
    {
      what: "AAAA loopback",
      record: { type: "AAAA", name: owner, ttl: 1, data: "::1" },
      type: 28,
      data: "::1",
    },
    {
      what: "AAAA all zero",
      record: { type: "AAAA", name: owner, ttl: 1, data: "::" },
      type: 28,
      data: "::",
    },
    {
      what: "CNAME",
      record: { type: "CNAME", name: owner, ttl: 1, data: "target.example.test" },
      type: 5,
      data: "target.example.test.",
    },
    {
      what: "NS",
      record: { type: "NS", name: owner, ttl: 1, data: "ns1.example.test" },
      type: 2,
      data: "ns1.example.test.",
    },
    {
      what: "PTR",
      record: { type: "PTR", name: owner, ttl: 1, data: "host.example.test" },
      type: 12,
      data: "host.example.test.",
    },
    {
      what: "MX",
      record: {
        type: "MX",
        name: owner,
        ttl: 1,
        data: { preference: 10, exchange: "mail.example.test" },
      },
      type: 15,
      data: "10 mail.example.test.",
    },
    {
      what: "TXT with one string",
      record: { type: "TXT", name: owner, ttl: 1, data: "v=spf1 -all" },
      type: 16,
      data: '"v=spf1 -all"',
    },
    {
      what: "TXT with several strings, quotes and a backslash",
      record: { type: "TXT", name: owner, ttl: 1, data: ['a "b"', "c\\d"] },
      type: 16,
      data: '"a \\"b\\"" "c\\\\d"',
    },
    {
      what: "SOA",
      record: {
        type: "SOA",
        name: owner,
        ttl: 1,
        data: {
          mname: "ns.example.test",
          rname: "hostmaster.example.test",
          serial: 2024010101,
          refresh: 3600,
          retry: 600,
          expire: 86400,
          minimum: 60,
        },
      },
      type: 6,
      data: "ns.example.test. hostmaster.example.test. 2024010101 3600 600 86400 60",
    },
    {
      what: "SRV",
      record: {
        type: "SRV",
        name: owner,
        ttl: 1,
        data: { priority: 1, weight: 5, port: 443, target: "svc.example.test" },
      },
      type: 33,
      data: "1 5 443 svc.example.test.",
    },
    {
      what: "CAA",
      record: {
        type: "CAA",
        name: owner,
        ttl: 1,
        data: { flags: 0, tag: "issue", value: "ca.example" },
      },
      type: 257,
      data: '0 issue "ca.example"',
    },
    {
      what: "an unknown type in RFC 3597 form",
      record: {
        type: "UNKNOWN_65280" as "A",
        name: owner,
        ttl: 1,
        data: Buffer.from([0xde, 0xad]) as unknown as string,
      },
      type: 65280,
      data: "\\# 2 dead",
    },
  ];

  it.each(records)("formats $what", ({ record, type, data }) => {
    const json = answerToJson(answerOf(responseWith([record])));
    expect(json.Answer).toEqual([{ name: `${owner}.`, type, TTL: 1, data }]);
  });

  it("reports flags, the question and TTLs in Google's shape", () => {
    const wire = responseWith(
      [
        { type: "CNAME", name: owner, ttl: 300, data: "b.example.test" },
        { type: "A", name: "b.example.test", ttl: 60, data: "192.0.2.9" },
      ],
      {
        flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE |
          dnsPacket.AUTHENTIC_DATA | dnsPacket.CHECKING_DISABLED,
      },
    );
    expect(answerToJson(answerOf(wire))).toEqual({
      Status: 0,
      TC: false,
      RD: true,
      RA: true,
      AD: true,
      CD: true,
      Question: [{ name: "r.example.test.", type: 1 }],
      Answer: [
        { name: "r.example.test.", type: 5, TTL: 300, data: "b.example.test." },
        { name: "b.example.test.", type: 1, TTL: 60, data: "192.0.2.9" },
      ],
    });
  });

  it("gives NXDOMAIN Status 3 with the SOA under Authority and no Answer", () => {
    const json = answerToJson(answerOf(responseWith([], {
      rcode: 3,
      authorities: [{
        type: "SOA",
        name: "example.test",
        ttl: 300,
        data: {
          mname: "ns.example.test",
          rname: "hostmaster.example.test",
          serial: 1,
          refresh: 2,
          retry: 3,
          expire: 4,
          minimum: 5,
        },
      }],
    })));
    expect(json.Status).toBe(3);
    expect(json.Answer).toBeUndefined();
    expect(json.Authority).toEqual([{
      name: "example.test.",
      type: 6,
      TTL: 300,
      data: "ns.example.test. hostmaster.example.test. 1 2 3 4 5",
    }]);
  });

  it("sets TC and takes the extended rcode and Extended DNS Errors from the OPT record", () => {
    const wire = encode({
      type: "response",
      id: 0,
      flags: dnsPacket.TRUNCATED_RESPONSE | 2,
      questions: [{ type: "A", name: owner, class: "IN" }],
      additionals: [{
        type: "OPT",
        name: ".",
        udpPayloadSize: 1232,
        extendedRcode: 1,
        flags: 0,
        options: [{ code: 15, data: Buffer.from([0, 22, ...new TextEncoder().encode("no auth")]) }],
      } as unknown as dnsPacket.Answer],
    });
    const json = answerToJson(answerOf(wire));
    expect(json.TC).toBe(true);
    expect(json.Status).toBe(18); // (1 << 4) | 2
    expect(json.Comment).toBe("EDE(22): no auth");
    expect(json.Answer).toBeUndefined();
  });

  it("falls back to the generic form for malformed RDATA", () => {
    const wire = responseWith([{ type: "A", name: owner, ttl: 5, data: "192.0.2.1" }]);
    // Grow the A record's RDLENGTH to 5 and append a byte: well-formed message, bad A RDATA.
    const bigger = new Uint8Array(wire.length + 1);
    bigger.set(wire);
    bigger[wire.length - 5] = 5;
    bigger[wire.length] = 0xff;
    expect(answerToJson(answerOf(bigger)).Answer![0].data).toBe("\\# 5 c0000201ff");
  });

  it("throws on bytes whose records run past what their parse promised", () => {
    const wire = responseWith([{ type: "A", name: owner, ttl: 5, data: "192.0.2.1" }]);
    const { info } = answerOf(wire);
    expect(() => answerToJson({ wire: wire.subarray(0, wire.length - 2), info })).toThrow(
      RangeError,
    );
  });

  it("takes the header, question and OPT record from the parse, not the bytes again", () => {
    const wire = responseWith([{ type: "A", name: owner, ttl: 5, data: "192.0.2.1" }]);
    const answer = answerOf(wire);
    // A parse that says SERVFAIL with TC, and an OPT record with an EDE, over the same bytes.
    const info = {
      ...answer.info,
      flags: answer.info.flags | dnsPacket.TRUNCATED_RESPONSE | 2,
      opt: {
        start: wire.length,
        end: wire.length,
        udpSize: 1232,
        ttl: 0,
        options: [{ code: 15, data: Uint8Array.from([0, 3]) }],
      },
    };
    const json = answerToJson({ wire, info });
    expect([json.Status, json.TC, json.Comment]).toEqual([2, true, "EDE(3)"]);
    expect(json.Question).toEqual([{ name: `${owner}.`, type: 1 }]);
  });

  it("lists every question of a message with more than one", () => {
    const wire = encode({
      type: "response",
      id: 0,
      flags: 0,
      questions: [
        { type: "A", name: owner, class: "IN" },
        { type: "AAAA", name: "b.example.test", class: "IN" },
      ],
    });
    expect(answerToJson(answerOf(wire)).Question).toEqual([
      { name: `${owner}.`, type: 1 },
      { name: "b.example.test.", type: 28 },
    ]);
  });
});
