import dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import { buildQuery } from "../../src/dns/build_query.ts";
import { Flag, RrType } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";

/** The same query written by dns-packet, the independent encoder. */
function reference(name: string, type: number, flags: number, dnssecOk?: boolean): Uint8Array {
  return new Uint8Array(dnsPacket.encode({
    type: "query",
    id: 0,
    flags,
    questions: [{
      name: name || ".",
      type: `UNKNOWN_${type}` as dnsPacket.RecordType,
      class: "IN",
    }],
    additionals: dnssecOk === undefined ? [] : [
      {
        type: "OPT",
        name: ".",
        udpPayloadSize: 1232,
        flags: dnssecOk ? dnsPacket.DNSSEC_OK : 0,
      } as dnsPacket.Answer,
    ],
  }));
}

describe("buildQuery", () => {
  it.each([
    ["example.com", RrType.A, Flag.RD, undefined],
    ["example.com.", RrType.AAAA, Flag.RD, false],
    ["a.b.example.test", 65, Flag.RD | Flag.CD, true],
    ["", RrType.NS, Flag.RD, false],
    [".", 257, 0, undefined],
  ])("writes %s type %i as dns-packet does", (name, type, flags, dnssecOk) => {
    const wire = buildQuery({
      name,
      type,
      flags,
      edns: dnssecOk === undefined ? undefined : { dnssecOk },
    });
    expect(wire).toEqual(reference(name.replace(/\.$/, ""), type, flags, dnssecOk));
  });

  it("writes the ID, class and UDP size asked for, and a message the parser accepts", () => {
    const wire = buildQuery({
      name: "x.example",
      type: RrType.TXT,
      id: 0xbeef,
      class: 3,
      edns: { udpSize: 4096 },
    });
    const info = parseMessage(wire);
    expect(info.id).toBe(0xbeef);
    expect(info.flags).toBe(Flag.RD);
    expect(info.question).toEqual({ name: "x.example", type: RrType.TXT, class: 3 });
    expect(info.opt?.udpSize).toBe(4096);
  });

  it.each([
    ["a..b", /bad label length 0/],
    ["x".repeat(64) + ".test", /bad label length 64/],
    [Array(50).fill("abcdef").join("."), /over 255 bytes/],
    ["bücher.例え.test", /not plain ASCII or Latin-1/],
  ])("refuses %s", (name, message) => {
    expect(() => buildQuery({ name, type: 1 })).toThrow(message);
  });
});
