import dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import { parseMessage } from "../../src/dns/message.ts";
import { ageTtls, minAnswerTtl } from "../../src/dns/ttl.ts";

const SOA_DATA = {
  mname: "ns.example.test",
  rname: "hostmaster.example.test",
  serial: 1,
  refresh: 3600,
  retry: 600,
  expire: 86400,
  minimum: 60,
};

function response(
  rcode: number,
  answers: dnsPacket.Answer[],
  authorities: dnsPacket.Answer[] = [],
  withOpt = false,
): Uint8Array {
  return new Uint8Array(dnsPacket.encode({
    type: "response",
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE | rcode,
    questions: [{ type: "A", name: "a.example.test", class: "IN" }],
    answers,
    authorities,
    additionals: withOpt
      ? [{ type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0 } as dnsPacket.Answer]
      : [],
  }));
}

const a = (ttl: number, data = "192.0.2.1"): dnsPacket.Answer => ({
  type: "A",
  name: "a.example.test",
  ttl,
  data,
});
const soa = (ttl: number, minimum: number): dnsPacket.Answer => ({
  type: "SOA",
  name: "example.test",
  ttl,
  data: { ...SOA_DATA, minimum },
});

const ascii = (s: string) => [s.length, ...new TextEncoder().encode(s)];

/** Hand-made: `example.com A` answered by a record whose owner is a pointer to the question. */
// deno-fmt-ignore
const COMPRESSED_ANSWER = Uint8Array.from([
  0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0,
  ...ascii("example"), ...ascii("com"), 0, 0, 1, 0, 1,
  0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 42, 0, 4, 192, 0, 2, 1,
]);

/** Hand-made NXDOMAIN whose SOA owner and MNAME/RNAME are compressed; SOA TTL 900, MINIMUM 120. */
// deno-fmt-ignore
const COMPRESSED_SOA = Uint8Array.from([
  0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 1, 0, 0,
  ...ascii("nx"), ...ascii("example"), ...ascii("com"), 0, 0, 1, 0, 1,
  0xc0, 0x0f, 0, 6, 0, 1, 0, 0, 0x03, 0x84, 0, 27, // owner <example.com>, TTL 900, RDLENGTH 27
  ...ascii("ns"), 0xc0, 0x0f, // MNAME ns.<example.com>
  0xc0, 0x0f, // RNAME <example.com>
  0, 0, 0, 1, 0, 0, 0x0e, 0x10, 0, 0, 0x02, 0x58, 0, 1, 0x51, 0x80, 0, 0, 0, 120,
]);

describe("minAnswerTtl", () => {
  const cases: { what: string; wire: Uint8Array; expected: number | undefined }[] = [
    { what: "one answer: its TTL", wire: response(0, [a(300)]), expected: 300 },
    {
      what: "several answers: the smallest",
      wire: response(0, [a(300), a(45, "192.0.2.2"), a(3600, "192.0.2.3")]),
      expected: 45,
    },
    {
      what: "answers with an OPT record: OPT ignored",
      wire: response(0, [a(120)], [], true),
      expected: 120,
    },
    {
      what: "answers and an authority SOA: the answers decide",
      wire: response(0, [a(500)], [soa(10, 5)]),
      expected: 500,
    },
    {
      what: "NXDOMAIN: SOA MINIMUM when below the SOA TTL",
      wire: response(3, [], [soa(300, 60)]),
      expected: 60,
    },
    {
      what: "NXDOMAIN: SOA TTL when below MINIMUM (RFC 2308 §5)",
      wire: response(3, [], [soa(30, 3600)]),
      expected: 30,
    },
    { what: "NODATA: the SOA's negative TTL", wire: response(0, [], [soa(300, 90)]), expected: 90 },
    {
      what: "NXDOMAIN after a CNAME: the smaller of CNAME TTL and negative TTL",
      wire: response(
        3,
        [{ type: "CNAME", name: "a.example.test", ttl: 10, data: "nx.example.test" }],
        [soa(300, 60)],
      ),
      expected: 10,
    },
    { what: "NXDOMAIN without an SOA: none", wire: response(3, []), expected: undefined },
    { what: "NODATA without an SOA: none", wire: response(0, []), expected: undefined },
    { what: "SERVFAIL: none", wire: response(2, [a(300)]), expected: undefined },
    { what: "REFUSED: none", wire: response(5, []), expected: undefined },
    {
      what: "a TTL with the top bit set counts as 0 (RFC 2181 §8)",
      wire: response(0, [a(300), a(0x80000000, "192.0.2.9")]),
      expected: 0,
    },
    { what: "a compressed owner name", wire: COMPRESSED_ANSWER, expected: 42 },
    { what: "an SOA with compressed names", wire: COMPRESSED_SOA, expected: 120 },
    { what: "a zero TTL", wire: response(0, [a(0)]), expected: 0 },
    { what: "a bare header", wire: new Uint8Array(12), expected: undefined },
    { what: "fewer than 12 bytes", wire: new Uint8Array(5), expected: undefined },
    {
      what: "a record cut short",
      wire: response(0, [a(300)]).subarray(0, response(0, [a(300)]).length - 2),
      expected: undefined,
    },
    {
      what: "an SOA whose RDATA is cut short",
      wire: COMPRESSED_SOA.subarray(0, COMPRESSED_SOA.length - 4),
      expected: undefined,
    },
  ];

  it.each(cases)("$what", ({ wire, expected }) => {
    expect(minAnswerTtl(wire)).toBe(expected);
  });

  // The same rule, learnt by the two other walks: the parse, and the ageing of a cached copy.
  const parseable = cases.filter(({ wire }) => {
    try {
      parseMessage(wire);
      return true;
    } catch {
      return false;
    }
  });

  it.each(parseable)("parseMessage learns it too: $what", ({ wire, expected }) => {
    expect(parseMessage(wire).minTtl).toBe(expected);
  });

  const ageings = [
    { seconds: 0, floor: 0, ceiling: undefined },
    { seconds: 20, floor: 0, ceiling: undefined },
    { seconds: 100, floor: 0, ceiling: undefined },
    { seconds: 0x7fffffff, floor: 30, ceiling: undefined },
    { seconds: 0, floor: 0, ceiling: 50 },
  ];
  it.each(parseable)("ageTtls returns it for the aged copy: $what", ({ wire }) => {
    for (const { seconds, floor, ceiling } of ageings) {
      const copy = wire.slice();
      const learnt = ageTtls(copy, seconds, floor, ceiling);
      expect(learnt, `${seconds}/${floor}/${ceiling}`).toBe(minAnswerTtl(copy));
    }
  });

  it("ageTtls keeps an SOA's MINIMUM as it is, so a negative TTL may stay above the aged TTL", () => {
    const wire = response(3, [], [soa(300, 60)]);
    expect(ageTtls(wire, 100)).toBe(60); // SOA TTL now 200, MINIMUM still 60
    expect(ageTtls(wire, 190)).toBe(10); // SOA TTL now 10
  });

  it("does not read past a header that promises more records than the message holds", () => {
    const wire = response(0, [a(300)]);
    wire[7] = 5; // ANCOUNT 5, one record present
    expect(minAnswerTtl(wire)).toBeUndefined();
  });
});
