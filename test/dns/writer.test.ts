import { describe, expect, it } from "vitest";
import { Buffer } from "node:buffer";
import type dnsPacket from "dns-packet";
import { RrType } from "../../src/dns/constants.ts";
import { encodeName, nameWireLength } from "../../src/dns/name.ts";
import { WireWriter } from "../../src/dns/writer.ts";
import { decodePacket, makeQuery } from "./fixtures.ts";

/** A response: `query`'s header and question with QR set and `ancount`, then `body`. */
function response(query: Uint8Array, ancount: number, body: readonly number[]): Uint8Array {
  const out = new Uint8Array(query.length + body.length);
  out.set(query);
  out[2] |= 0x80;
  out[7] = ancount;
  out.set(body, query.length);
  return out;
}

describe("WireWriter", () => {
  it.each([
    ["the question name itself", "nas.lan", [0xc0, 12]],
    ["a suffix of the question name", "lan", [0xc0, 16]],
    ["a new label before a known suffix", "tv.lan", [2, 0x74, 0x76, 0xc0, 16]],
    ["a name with nothing known", "example", [7, ...new TextEncoder().encode("example"), 0]],
    ["the root", "", [0]],
  ])("compresses %s", (_, name, bytes) => {
    const w = new WireWriter(40);
    w.knownName("nas.lan", 12);
    w.name(name);
    expect(w.out).toEqual(bytes);
  });

  it("points later names to names it wrote, at their offsets in the message", () => {
    const w = new WireWriter(100);
    w.name("a.example");
    w.name("b.example");
    w.name("a.example");
    expect(w.out).toEqual([
      ...encodeName("a.example"),
      1,
      0x62,
      0xc0,
      102, // "example" inside the first name
      0xc0,
      100,
    ]);
  });

  it("writes records that an independent decoder reads back", () => {
    const query = makeQuery({ id: 7, name: "nas.lan", type: "A" });
    const w = new WireWriter(query.length);
    w.knownName("nas.lan", 12);
    w.record("nas.lan", RrType.A, 300, (w) => w.bytes([10, 0, 0, 2]));
    w.record("nas.lan", RrType.CNAME, 60, (w) => w.name("tv.lan"));
    w.record("tv.lan", RrType.TXT, 0x7fffffff, (w) => w.bytes([2, 0x68, 0x69]));
    const answers = decodePacket(response(query, 3, w.out)).answers as dnsPacket.StringAnswer[];
    expect(answers.map((r) => [r.name, r.type, r.ttl, r.data])).toEqual([
      ["nas.lan", "A", 300, "10.0.0.2"],
      ["nas.lan", "CNAME", 60, "tv.lan"],
      ["tv.lan", "TXT", 0x7fffffff, [Buffer.from("hi")]],
    ]);
    expect(w.offset).toBe(query.length + w.out.length);
  });

  it("does not point at names past the 14-bit pointer range", () => {
    const w = new WireWriter(0x4000);
    w.name("far.example");
    w.name("far.example");
    expect(w.out.length).toBe(2 * nameWireLength("far.example"));
  });

  it("writes u8, u16 and u32 in network order", () => {
    const w = new WireWriter();
    w.u8(0x1ff);
    w.u16(0x1234);
    w.u32(0xdeadbeef);
    expect(w.out).toEqual([0xff, 0x12, 0x34, 0xde, 0xad, 0xbe, 0xef]);
  });
});
