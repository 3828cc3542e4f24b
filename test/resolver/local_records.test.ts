import { answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { Rcode } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { validateAnswer } from "../../src/dns/response.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import {
  detectFormat,
  type LocalRecord,
  LocalRecords,
  localRecordsMiddleware,
  parseHosts,
  parseLocalRecords,
  parseZone,
} from "../../src/resolver/local_records.ts";
import { createProcessor } from "../../src/resolver/processor.ts";
import type { Handler, QueryContext } from "../../src/resolver/types.ts";

interface QueryOptions {
  id?: number;
  type?: string;
  edns?: boolean;
  dnssecOk?: boolean;
  rd?: boolean;
  klass?: string;
}

function query(name: string, options: QueryOptions = {}): Query {
  const wire = new Uint8Array(dnsPacket.encode({
    type: "query",
    id: options.id ?? 0x4242,
    flags: options.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{
      type: (options.type ?? "A") as "A",
      name,
      class: (options.klass ?? "IN") as "IN",
    }],
    additionals: options.edns
      ? [{
        type: "OPT",
        name: ".",
        udpPayloadSize: 4096,
        flags: options.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
      } as unknown as dnsPacket.Answer]
      : [],
  }));
  const c = classifyQuery(wire);
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

function enc(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** A decoded record, the fields these tests read. */
interface Rec {
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}

function decode(wire: Uint8Array) {
  const p = dnsPacket.decode(Buffer.from(wire));
  return {
    id: p.id!,
    flags: p.flags!,
    rcode: wire[3] & 0x0f,
    qname: p.questions![0].name,
    answers: (p.answers ?? []) as Rec[],
    authorities: (p.authorities ?? []) as Rec[],
  };
}

/** Answer-section records as "name TYPE data" strings, for compact assertions. */
function answers(wire: Uint8Array): string[] {
  return decode(wire).answers.map((r) => {
    const data = r.type === "TXT"
      ? (r.data as Buffer[]).map((b) => b.toString()).join("|")
      : r.type === "SOA"
      ? (r.data as dnsPacket.SoaData).mname
      : String(r.data);
    return `${r.name} ${r.type} ${data}`;
  });
}

function ask(local: LocalRecords, name: string, options: QueryOptions = {}): Uint8Array {
  const q = query(name, options);
  const wire = local.answer(q);
  if (!wire) throw new Error(`no local answer for ${name}`);
  validateAnswer(q.info, wire, q.info.id); // well formed, same ID and question
  return wire;
}

const ZONE = `
$ORIGIN home.arpa.
$TTL 1h
@         IN TXT   "v=spf1 -all"
nas       60 IN A  192.168.1.10
          IN 60 AAAA fd00::10          ; same owner as above
media     CNAME    nas
www       CNAME    media.home.arpa.
alias     CNAME    www
out       CNAME    example.com.
loop1     CNAME    loop2
loop2     CNAME    loop1
txt       TXT      "a \\"quoted\\" word" "second" "\\065BC"
deep.sub  A        192.168.1.20
10.1.168.192.in-addr.arpa. PTR nas
`;

const HOSTS = `
# my LAN
127.0.0.1      localhost
192.168.1.10   nas.lan nas   # trailing comment
192.168.1.11   printer.lan
fe80::1%lo0    localhost
2001:db8::10   nas.lan
0.0.0.0        ads.example  tracker.example
`;

describe("parseHosts", () => {
  it("turns each name into A/AAAA and a PTR for its address", () => {
    const records = parseHosts(HOSTS);
    expect(records).toContainEqual({
      name: "nas.lan",
      type: "A",
      address: "192.168.1.10",
      line: 4,
    });
    expect(records).toContainEqual({
      name: "10.1.168.192.in-addr.arpa",
      type: "PTR",
      target: "nas",
      line: 4,
    });
    expect(records).toContainEqual({
      name: "localhost",
      type: "AAAA",
      address: "fe80::1",
      line: 6,
    });
    const v6ptr = records.find((r) =>
      r.type === "PTR" && r.target === "nas.lan" &&
      r.name.endsWith("ip6.arpa")
    );
    expect(v6ptr?.name).toBe(
      "0.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa",
    );
  });

  it("gives sinkhole addresses (0.0.0.0) no PTR", () => {
    const records = parseHosts("0.0.0.0 ads.example tracker.example\n");
    expect(records.map((r) => r.type)).toEqual(["A", "A"]);
  });

  it.each([
    ["300.1.2.3 host", 'line 1: bad address "300.1.2.3"'],
    ["\n\n10.0.0.1", 'line 3: address "10.0.0.1" has no host names'],
    ["10.0.0.1 ok\n10.0.0.2 bad..name", 'line 2: bad name "bad..name"'],
    ["2001:db8::zz host", 'line 1: bad address "2001:db8::zz"'],
    ["10.0.0.1 " + "x".repeat(64), "line 1: bad name"],
  ])("rejects %j", (text, message) => {
    expect(() => parseHosts(text)).toThrow(message);
  });
});

describe("parseZone", () => {
  const byName = (records: LocalRecord[], name: string) => records.filter((r) => r.name === name);

  it("applies $ORIGIN, $TTL, @, relative names, blank owners and TTL/class in either order", () => {
    const records = parseZone(ZONE);
    expect(byName(records, "home.arpa")).toEqual([
      { name: "home.arpa", ttl: 3600, line: 4, type: "TXT", strings: [enc("v=spf1 -all")] },
    ]);
    expect(byName(records, "nas.home.arpa")).toEqual([
      { name: "nas.home.arpa", ttl: 60, line: 5, type: "A", address: "192.168.1.10" },
      { name: "nas.home.arpa", ttl: 60, line: 6, type: "AAAA", address: "fd00::10" },
    ]);
    expect(byName(records, "media.home.arpa")[0]).toMatchObject({ target: "nas.home.arpa" });
    expect(byName(records, "www.home.arpa")[0]).toMatchObject({ target: "media.home.arpa" });
    expect(byName(records, "deep.sub.home.arpa")).toHaveLength(1);
    expect(byName(records, "10.1.168.192.in-addr.arpa")[0]).toMatchObject({
      type: "PTR",
      target: "nas.home.arpa",
    });
  });

  it("decodes quoted strings with escapes", () => {
    const txt = byName(parseZone(ZONE), "txt.home.arpa")[0];
    expect(txt.type === "TXT" && txt.strings.map((s) => new TextDecoder().decode(s as Uint8Array)))
      .toEqual(['a "quoted" word', "second", "ABC"]);
  });

  it("uses the given default TTL before any $TTL", () => {
    expect(parseZone("a.example. A 10.0.0.1\n", 42)[0].ttl).toBe(42);
    expect(parseZone("a.example. 1h30m A 10.0.0.1\n")[0].ttl).toBe(5400);
  });

  it.each([
    [
      "$ORIGIN x.\n\n\n\n\n\n\n\n\n\n\nh AAAA 2001:db8::zz",
      'line 12: bad AAAA address "2001:db8::zz"',
    ],
    ["a.example. A 10.0.0.256", 'line 1: bad A address "10.0.0.256"'],
    ["a.example. A 10.0.0.1 10.0.0.2", 'line 1: unexpected "10.0.0.2"'],
    ["a.example. MX 10 mail.example.", 'line 1: unsupported type "MX"'],
    ['a.example. CH TXT "x"', 'line 1: unsupported class "CH"'],
    ["nas A 10.0.0.1", 'line 1: relative name "nas" with no $ORIGIN'],
    ["@ A 10.0.0.1", 'line 1: "@" with no $ORIGIN'],
    ['a.example. TXT "open', "line 1: unterminated quoted string"],
    ["a.example. TXT unquoted", "line 1: TXT data must be quoted strings"],
    [`a.example. TXT "${"x".repeat(256)}"`, "line 1: TXT string of 256 bytes"],
    ["a.example. SOA ( ns. host. 1 2 3 4 5 )", "line 1: parentheses"],
    ["$INCLUDE other.zone", 'line 1: unsupported directive "$INCLUDE"'],
    ["$TTL forever", 'line 1: bad TTL "forever"'],
    ["$TTL 9999999999", 'line 1: bad TTL "9999999999"'],
    ["a.example. 300 IN", "line 1: missing record type"],
    ["a.example. CNAME", "line 1: missing CNAME data"],
    ["  A 10.0.0.1", "line 1: indented record with no previous owner"],
    ["bad_\u00e9.example. A 10.0.0.1", 'line 1: bad name "bad_\u00e9.example."'],
  ])("rejects %j", (text, message) => {
    expect(() => parseZone(text)).toThrow(message);
  });
});

describe("detectFormat", () => {
  it.each(
    [
      ["", "10.0.0.1 a", "hosts"],
      ["", "# comment\n::1 localhost", "hosts"],
      ["", "; comment\n$ORIGIN x.\n", "zone"],
      ["", "nas.example. A 10.0.0.1", "zone"],
      ["/etc/hosts", "nas.example. A 10.0.0.1", "hosts"],
      ["lan.hosts", "", "hosts"],
      ["conf/lan.ZONE", "10.0.0.1 a", "zone"],
    ] as const,
  )("file %j with %j is %s", (fileName, text, format) => {
    expect(detectFormat(text, fileName)).toBe(format);
  });
});

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

  it("refuses to load an RRset too large for one message", () => {
    const many = Array.from({ length: 4200 }, (_, i) => `big.test. A 10.${i >> 8}.${i & 255}.1`);
    expect(() => parseLocalRecords(many.join("\n"))).toThrow(
      /answer for "big.test" A is \d+ bytes/,
    );
  });
});

describe("localRecordsMiddleware", () => {
  const local = parseLocalRecords("192.168.1.10 nas.lan\n");
  const NEXT_ANSWER = answerOf(new Uint8Array([0, 0, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
  const ctx: QueryContext = { face: "dot", signal: new AbortController().signal };

  function upstream() {
    const seen: string[] = [];
    const handler: Handler = (q) => {
      seen.push(q.question.name);
      return Promise.resolve(NEXT_ANSWER);
    };
    return { seen, handler };
  }

  it("answers local names without calling the next handler", async () => {
    const up = upstream();
    const answer = await localRecordsMiddleware(() => local)(up.handler)(query("nas.lan"), ctx);
    expect(answers(answer.wire)).toEqual(["nas.lan A 192.168.1.10"]);
    expect(up.seen).toEqual([]);
  });

  it("passes other names, and every name when no set is selected, to the next handler", async () => {
    const up = upstream();
    await localRecordsMiddleware(() => local)(up.handler)(query("example.com"), ctx);
    expect(up.seen).toEqual(["example.com"]);
    const none = await localRecordsMiddleware(() => undefined)(up.handler)(query("nas.lan"), ctx);
    expect(none).toBe(NEXT_ANSWER);
    expect(up.seen).toEqual(["example.com", "nas.lan"]);
  });

  it("asks the selector per query with the query's context", async () => {
    const up = upstream();
    const faces: string[] = [];
    const mw = localRecordsMiddleware((c) => {
      faces.push(c.face);
      return c.face === "doh" ? local : undefined;
    });
    const doh = await mw(up.handler)(query("nas.lan"), { ...ctx, face: "doh" });
    await mw(up.handler)(query("nas.lan"), ctx);
    expect(faces).toEqual(["doh", "dot"]);
    expect(decode(doh.wire).rcode).toBe(Rcode.NOERROR);
    expect(up.seen).toEqual(["nas.lan"]);
  });

  it("lets the face's processor pad a local answer to the RFC 8467 block", async () => {
    const wire = new Uint8Array(dnsPacket.encode({
      type: "query",
      id: 3,
      questions: [{ type: "A", name: "nas.lan" }],
      additionals: [{
        type: "OPT",
        name: ".",
        udpPayloadSize: 1232,
        options: [{ code: 12, data: Buffer.alloc(8) }],
      } as unknown as dnsPacket.Answer],
    }));
    const up = upstream();
    const process = createProcessor({ handler: localRecordsMiddleware(() => local)(up.handler) });
    const answer = (await process(wire, ctx))!;
    expect(answer.length % 468).toBe(0);
    expect(answers(answer)).toEqual(["nas.lan A 192.168.1.10"]);
    expect(up.seen).toEqual([]);
  });
});
