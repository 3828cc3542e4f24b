import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Rcode } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { type LocalRecord, LocalRecords, parseLocalRecords } from "../../src/records/mod.ts";
import { answers, ask, decode, HOSTS, query, ZONE } from "./fixtures.ts";

describe("LocalRecords.from", () => {
  it.each([
    [
      "a.example. A 10.0.0.1\na.example. CNAME b.example.",
      'line 2: CNAME at "a.example" alongside',
    ],
    [
      "a.example. CNAME b.example.\na.example. A 10.0.0.1",
      'line 2: CNAME at "a.example" alongside',
    ],
    ["a.example. CNAME b.example.\na.example. CNAME c.example.", 'line 2: "a.example" already has'],
  ])("rejects conflicting data %j", (text, message) => {
    expect(() => parseLocalRecords(text, { format: "zone" })).toThrow(message);
  });

  it("rejects a CNAME at an authoritative zone's apex and bad options", () => {
    const text = "home.arpa. CNAME elsewhere.example.";
    expect(() => parseLocalRecords(text, { authoritativeZones: ["home.arpa"] })).toThrow(
      'line 1: CNAME at "home.arpa" alongside zone apex',
    );
    expect(() => LocalRecords.from([], { authoritativeZones: [""] })).toThrow(RangeError);
    expect(() => LocalRecords.from([], { defaultTtl: -1 })).toThrow(RangeError);
  });

  it("merges duplicates and counts records", () => {
    const local = parseLocalRecords("10.0.0.1 a.example\n10.0.0.1 a.example\n10.0.0.2 a.example\n");
    expect(local.size).toBe(4); // 2 A, 2 PTR
  });
});

describe("LocalRecords.from, record checks", () => {
  it.each(
    [
      [
        { name: "bad..name", type: "A", address: "10.0.0.1", line: 3 },
        'line 3: bad name "bad..name"',
      ],
      [
        { name: "a.example", type: "A", address: "10.0.0.256", line: 4 },
        'line 4: bad A address "10.0.0.256"',
      ],
      [{ name: "a.example", type: "AAAA", address: "10.0.0.1" }, 'bad AAAA address "10.0.0.1"'],
      [{ name: "a.example", type: "A", address: "10.0.0.1", ttl: -1 }, "bad TTL -1"],
      [{ name: "a.example", type: "A", address: "10.0.0.1", ttl: 1.5 }, "bad TTL 1.5"],
      [{ name: "a.example", type: "A", address: "10.0.0.1", ttl: 2 ** 31 }, "bad TTL 2147483648"],
      [{ name: "a.example", type: "CNAME", target: "b..example" }, 'bad CNAME target "b..example"'],
      [{ name: "a.example", type: "PTR", target: "" }, 'bad PTR target ""'],
      [
        { name: "a.example", type: "TXT", strings: [], line: 9 },
        "line 9: TXT record without strings",
      ],
      [{ name: "a.example", type: "TXT", strings: ["x".repeat(256)] }, "TXT string of 256 bytes"],
    ] satisfies [LocalRecord, string][],
  )("rejects %j", (record, message) => {
    expect(() => LocalRecords.from([record])).toThrow(SyntaxError);
    expect(() => LocalRecords.from([record])).toThrow(message);
  });

  it("names no line for a record that came without one", () => {
    expect(() => LocalRecords.from([{ name: "a..b", type: "A", address: "10.0.0.1" }])).toThrow(
      /^bad name "a\.\.b"$/,
    );
  });

  it("takes UTF-8 strings and raw bytes for TXT", () => {
    const local = LocalRecords.from([
      { name: "t.example", type: "TXT", strings: ["h\u00e9", Uint8Array.of(0, 255)] },
    ]);
    expect(ask(local, "t.example", { type: "TXT" }).subarray(-9)).toEqual(
      Uint8Array.of(0, 7, 3, 0x68, 0xc3, 0xa9, 2, 0, 255), // RDLENGTH, "hé", 00 ff
    );
  });
});

describe("parseLocalRecords", () => {
  it.each(
    [
      [{}, "10.0.0.1 a.example", "a.example"],
      [{ fileName: "/etc/dotbridge/lan.zone" }, "a.example. A 10.0.0.1", "a.example"],
      [{ format: "zone" }, "$ORIGIN example.\na A 10.0.0.1", "a.example"],
    ] as const,
  )("builds a table from text alone (%j)", (options, text, name) => {
    expect(answers(ask(parseLocalRecords(text, options), name))).toEqual([`${name} A 10.0.0.1`]);
  });

  it("reads the text in the format the file name gives", () => {
    expect(() => parseLocalRecords("10.0.0.1 a.example", { fileName: "lan.zone" })).toThrow(
      'line 1: relative name "10.0.0.1" with no $ORIGIN',
    );
  });
});

describe("LocalRecords.answer", () => {
  const zone = parseLocalRecords(ZONE, { authoritativeZones: ["home.arpa"], defaultTtl: 120 });
  const hosts = parseLocalRecords(HOSTS);

  it("answers A and AAAA authoritatively with the zone's TTLs", () => {
    const a = ask(zone, "nas.home.arpa");
    const p = decode(a);
    expect(answers(a)).toEqual(["nas.home.arpa A 192.168.1.10"]);
    expect(p.answers[0].ttl).toBe(60);
    expect(p.flags & dnsPacket.AUTHORITATIVE_ANSWER).toBeTruthy();
    expect(p.flags & dnsPacket.RECURSION_AVAILABLE).toBeTruthy();
    expect(p.flags & dnsPacket.RECURSION_DESIRED).toBeTruthy();
    expect(p.rcode).toBe(Rcode.NOERROR);
    expect(answers(ask(zone, "nas.home.arpa", { type: "AAAA" }))).toEqual([
      "nas.home.arpa AAAA fd00::10",
    ]);
    expect(answers(ask(hosts, "nas.lan", { type: "AAAA" }))).toEqual(["nas.lan AAAA 2001:db8::10"]);
  });

  it("copies RD from the query rather than always setting it", () => {
    const p = decode(ask(zone, "nas.home.arpa", { rd: false }));
    expect(p.flags & dnsPacket.RECURSION_DESIRED).toBe(0);
  });

  it("answers TXT with every string", () => {
    expect(answers(ask(zone, "txt.home.arpa", { type: "TXT" }))).toEqual([
      'txt.home.arpa TXT a "quoted" word|second|ABC',
    ]);
  });

  it("answers PTR for hosts addresses, IPv4 and IPv6", () => {
    expect(answers(ask(hosts, "10.1.168.192.in-addr.arpa", { type: "PTR" }))).toEqual([
      "10.1.168.192.in-addr.arpa PTR nas.lan",
      "10.1.168.192.in-addr.arpa PTR nas",
    ]);
    const v6 = "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa";
    expect(answers(ask(hosts, v6, { type: "PTR" }))).toEqual([`${v6} PTR nas.lan`]);
  });

  it("follows CNAMEs through local names and stops at the first name it does not hold", () => {
    expect(answers(ask(zone, "alias.home.arpa"))).toEqual([
      "alias.home.arpa CNAME www.home.arpa",
      "www.home.arpa CNAME media.home.arpa",
      "media.home.arpa CNAME nas.home.arpa",
      "nas.home.arpa A 192.168.1.10",
    ]);
    const out = ask(zone, "out.home.arpa");
    expect(answers(out)).toEqual(["out.home.arpa CNAME example.com"]);
    expect(decode(out).rcode).toBe(Rcode.NOERROR);
    expect(decode(out).authorities).toEqual([]);
  });

  it("answers a CNAME question with the CNAME alone", () => {
    expect(answers(ask(zone, "www.home.arpa", { type: "CNAME" }))).toEqual([
      "www.home.arpa CNAME media.home.arpa",
    ]);
  });

  it("stops CNAME loops and chains longer than 8", () => {
    expect(answers(ask(zone, "loop1.home.arpa"))).toEqual([
      "loop1.home.arpa CNAME loop2.home.arpa",
      "loop2.home.arpa CNAME loop1.home.arpa",
    ]);
    const chain = Array.from({ length: 12 }, (_, i) => `c${i} CNAME c${i + 1}`).join("\n");
    const long = parseLocalRecords(`$ORIGIN s.test.\n${chain}\nc12 A 10.0.0.12\n`);
    const cut = answers(ask(long, "c0.s.test")); // 12 hops: cut after 8 CNAMEs
    expect(cut).toHaveLength(8);
    expect(cut.every((r) => r.includes(" CNAME "))).toBe(true);
    const eight = answers(ask(long, "c4.s.test")); // exactly 8 hops: the target's A too
    expect(eight).toHaveLength(9);
    expect(eight.at(-1)).toBe("c12.s.test A 10.0.0.12");
  });

  it("answers NODATA with a synthetic SOA (default TTL) when the name has other types", () => {
    const nodata = ask(zone, "txt.home.arpa", { type: "A" });
    const p = decode(nodata);
    expect(p.rcode).toBe(Rcode.NOERROR);
    expect(p.answers).toEqual([]);
    expect(p.authorities).toHaveLength(1);
    const soa = p.authorities[0];
    expect([soa.type, soa.name, soa.ttl]).toEqual(["SOA", "home.arpa", 120]);
    expect((soa.data as dnsPacket.SoaData).minimum).toBe(120);
    const outside = decode(ask(hosts, "printer.lan", { type: "AAAA" }));
    expect(outside.answers).toEqual([]);
    expect(outside.authorities.map((r) => [r.type, r.name, r.ttl])).toEqual([
      ["SOA", "printer.lan", 300],
    ]);
  });

  it("answers NODATA through a CNAME whose target lacks the type", () => {
    const p = decode(ask(zone, "media.home.arpa", { type: "TXT" }));
    expect(p.answers.map((r) => r.type)).toEqual(["CNAME"]);
    expect(p.authorities.map((r) => r.type)).toEqual(["SOA"]);
  });

  it("answers NXDOMAIN under an authoritative zone, NODATA for parents of declared names", () => {
    expect(ask(zone, "missing.home.arpa")[3] & 0x0f).toBe(Rcode.NXDOMAIN);
    const nx = decode(ask(zone, "missing.home.arpa"));
    expect(nx.rcode).toBe(Rcode.NXDOMAIN);
    expect(nx.flags & dnsPacket.AUTHORITATIVE_ANSWER).toBeTruthy();
    expect(nx.authorities.map((r) => [r.type, r.name])).toEqual([["SOA", "home.arpa"]]);
    expect(decode(ask(zone, "x.y.deep.sub.home.arpa")).rcode).toBe(Rcode.NXDOMAIN);
    const ent = decode(ask(zone, "sub.home.arpa"));
    expect([ent.rcode, ent.answers.length, ent.authorities.length]).toEqual([Rcode.NOERROR, 0, 1]);
    expect(answers(ask(zone, "home.arpa", { type: "SOA" }))).toEqual([
      "home.arpa SOA localhost",
    ]);
  });

  it("returns undefined outside its names and zones, and for other classes", () => {
    expect(zone.answer(query("example.com"))).toBeUndefined();
    expect(zone.answer(query("arpa", { type: "SOA" }))).toBeUndefined();
    expect(hosts.answer(query("missing.lan"))).toBeUndefined();
    expect(hosts.answer(query("x.nas.lan"))).toBeUndefined();
    expect(zone.answer(query("nas.home.arpa", { klass: "CH" }))).toBeUndefined();
    expect(LocalRecords.empty().answer(query("nas.home.arpa"))).toBeUndefined();
  });

  it("echoes the client's ID and spelling of the name (0x20)", () => {
    const wire = ask(zone, "NaS.HoMe.ArPa", { id: 0xbeef });
    const p = decode(wire);
    expect(p.id).toBe(0xbeef);
    expect(p.qname).toBe("NaS.HoMe.ArPa");
    expect(p.answers[0].name).toBe("NaS.HoMe.ArPa");
    expect(decode(ask(zone, "MiSsInG.home.arpa", { id: 7 })).qname).toBe(
      "MiSsInG.home.arpa",
    );
  });

  it("carries an OPT record (DO copied) only when the query had EDNS", () => {
    const withOpt = parseMessage(ask(zone, "nas.home.arpa", { edns: true, dnssecOk: true }));
    expect(withOpt.opt).toBeDefined();
    expect(withOpt.opt!.ttl & 0x8000).toBe(0x8000);
    expect(withOpt.opt!.udpSize).toBe(1232);
    expect(parseMessage(ask(zone, "missing.home.arpa", { edns: true })).opt).toBeDefined();
    expect(parseMessage(ask(zone, "nas.home.arpa")).opt).toBeUndefined();
    expect(parseMessage(ask(zone, "nas.home.arpa")).arcount).toBe(0);
  });

  it("answers ANY with every RRset at the name", () => {
    expect(answers(ask(zone, "nas.home.arpa", { type: "ANY" }))).toEqual([
      "nas.home.arpa A 192.168.1.10",
      "nas.home.arpa AAAA fd00::10",
    ]);
  });

  // Header | question | answer and authority sections | OPT: the bytes the split kept unchanged.
  it.each(
    [
      [
        "nas.home.arpa",
        {},
        "424285800001000100000000",
        "036e617304686f6d6504617270610000010001",
        "c00c000100010000003c0004c0a8010a",
      ],
      [
        "www.home.arpa", // CNAME chain: owners and targets compressed against earlier names
        {},
        "424285800001000300000000",
        "0377777704686f6d6504617270610000010001",
        "c00c0005000100000e100008056d65646961c010" + "c02b0005000100000e100006036e6173c010" +
        "c03f000100010000003c0004c0a8010a",
      ],
      [
        "missing.home.arpa", // NXDOMAIN, the zone's SOA uncompressed, OPT with DO
        { edns: true, dnssecOk: true },
        "424285830001000000010001",
        "076d697373696e6704686f6d650461727061000001" + "0001",
        "04686f6d650461727061000006000100000078002f096c6f63616c686f737400066e6f626f647907696e76" +
        "616c6964000000000100000e1000000258000151800000007800" + "002904d0000080000000",
      ],
      [
        "10.1.168.192.in-addr.arpa", // PTR target's "arpa" points into the question
        { type: "PTR" },
        "424285800001000100000000",
        "0231300131033136380331393207696e2d61646472046172706100000c0001",
        "c00c000c000100000e10000b036e617304686f6d65c021",
      ],
    ] as const,
  )("answers %s %j with the same bytes as before", (name, options, ...hex) => {
    const wire = ask(zone, name, options);
    expect(Array.from(wire, (b) => b.toString(16).padStart(2, "0")).join("")).toBe(hex.join(""));
  });

  it("refuses to load an RRset too large for one message", () => {
    const many = Array.from({ length: 4200 }, (_, i) => `big.test. A 10.${i >> 8}.${i & 255}.1`);
    expect(() => parseLocalRecords(many.join("\n"))).toThrow(
      /answer for "big.test" A is \d+ bytes/,
    );
  });
});
