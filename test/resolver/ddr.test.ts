/**
 * DDR (RFC 9462) through the built resolver. The answers are read with a decoder written here
 * from RFC 1035 §4.1 and RFC 9460 §2.2, sharing nothing with the writer.
 */
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { ConfigError } from "../../src/config/parse.ts";
import { buildQuery } from "../../src/dns/build_query.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { svcbRdata } from "../../src/dns/svcb.ts";
import { buildResolver } from "../../src/resolver/build.ts";
import { type DdrPorts, ddrPortsFromConfig } from "../../src/resolver/ddr.ts";
import type { Upstream } from "../../src/upstream/types.ts";

const SVCB = 64;

// ---- an independent reader -------------------------------------------------------------------

function readName(b: Uint8Array, at: number): { name: string; end: number } {
  const labels: string[] = [];
  let end = -1;
  for (let hops = 0; hops < 32; hops++) {
    const len = b[at];
    if (len === 0) {
      if (end < 0) end = at + 1;
      return { name: labels.join("."), end };
    }
    if ((len & 0xc0) === 0xc0) {
      if (end < 0) end = at + 2;
      at = ((len & 0x3f) << 8) | b[at + 1];
      continue;
    }
    labels.push(String.fromCharCode(...b.subarray(at + 1, at + 1 + len)));
    at += 1 + len;
  }
  throw new Error("name loops");
}

interface Svcb {
  priority: number;
  target: string;
  /** key → raw value, in wire order */
  params: [number, Uint8Array][];
  /** true if the TargetName was written as a pointer (RFC 9460 §2.2 forbids it) */
  compressedTarget: boolean;
}

function decodeSvcb(rdata: Uint8Array): Svcb {
  const priority = (rdata[0] << 8) | rdata[1];
  let at = 2;
  const labels: string[] = [];
  let compressedTarget = false;
  while (rdata[at] !== 0) {
    if ((rdata[at] & 0xc0) !== 0) {
      compressedTarget = true;
      break;
    }
    labels.push(String.fromCharCode(...rdata.subarray(at + 1, at + 1 + rdata[at])));
    at += 1 + rdata[at];
  }
  at++;
  const params: [number, Uint8Array][] = [];
  while (at < rdata.length) {
    const key = (rdata[at] << 8) | rdata[at + 1];
    const len = (rdata[at + 2] << 8) | rdata[at + 3];
    params.push([key, rdata.subarray(at + 4, at + 4 + len)]);
    at += 4 + len;
  }
  if (at !== rdata.length) throw new Error("SvcParams overrun the RDATA");
  return { priority, target: labels.join("."), params, compressedTarget };
}

interface Rr {
  name: string;
  type: number;
  class: number;
  ttl: number;
  rdata: Uint8Array;
}

interface Decoded {
  id: number;
  flags: number;
  rcode: number;
  answers: Rr[];
  nscount: number;
  arcount: number;
  additional: Rr[];
}

function decode(wire: Uint8Array): Decoded {
  const v = new DataView(wire.buffer, wire.byteOffset, wire.byteLength);
  const qd = v.getUint16(4), an = v.getUint16(6), ns = v.getUint16(8), ar = v.getUint16(10);
  let at = 12;
  for (let i = 0; i < qd; i++) at = readName(wire, at).end + 4;
  const rrs: Rr[] = [];
  for (let i = 0; i < an + ns + ar; i++) {
    const { name, end } = readName(wire, at);
    const len = v.getUint16(end + 8);
    rrs.push({
      name,
      type: v.getUint16(end),
      class: v.getUint16(end + 2),
      ttl: v.getUint32(end + 4),
      rdata: wire.subarray(end + 10, end + 10 + len),
    });
    at = end + 10 + len;
  }
  expect(at).toBe(wire.length);
  return {
    id: v.getUint16(0),
    flags: v.getUint16(2),
    rcode: v.getUint16(2) & 0xf,
    answers: rrs.slice(0, an),
    nscount: ns,
    arcount: ar,
    additional: rrs.slice(an + ns),
  };
}

/** The params of one record as presentation text, the way dig prints them. */
function present(s: Svcb): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of s.params) {
    switch (key) {
      case 1: {
        const ids: string[] = [];
        for (let i = 0; i < value.length; i += 1 + value[i]) {
          ids.push(String.fromCharCode(...value.subarray(i + 1, i + 1 + value[i])));
        }
        out.alpn = ids.join(",");
        break;
      }
      case 3:
        expect(value.length).toBe(2);
        out.port = String((value[0] << 8) | value[1]);
        break;
      case 4: {
        expect(value.length % 4).toBe(0);
        const a: string[] = [];
        for (let i = 0; i < value.length; i += 4) a.push([...value.subarray(i, i + 4)].join("."));
        out.ipv4hint = a.join(",");
        break;
      }
      case 6: {
        expect(value.length % 16).toBe(0);
        const a: string[] = [];
        for (let i = 0; i < value.length; i += 16) {
          const groups: string[] = [];
          for (let j = 0; j < 16; j += 2) {
            groups.push(((value[i + j] << 8) | value[i + j + 1]).toString(16));
          }
          a.push(groups.join(":"));
        }
        out.ipv6hint = a.join(",");
        break;
      }
      case 7:
        out.dohpath = new TextDecoder().decode(value);
        break;
      default:
        out[`key${key}`] = "?";
    }
  }
  return out;
}

// ---- the resolver under test ------------------------------------------------------------------

function q(name: string, type = SVCB, opts: { id?: number; edns?: boolean; class?: number } = {}) {
  const c = classifyQuery(buildQuery({
    name,
    type,
    id: opts.id ?? 0x1234,
    class: opts.class,
    edns: opts.edns ? { udpSize: 1232 } : undefined,
  }));
  if (c.kind !== "query") throw new Error("not a query");
  return c.query;
}

function resolver(args: string[], ports?: () => DdrPorts) {
  const parsed = parseConfig({ args, env: {} });
  if (parsed.help) throw new Error("unreachable");
  const asked: string[] = [];
  const upstream: Upstream = {
    name: "fake",
    exchange: (query: Query) => {
      asked.push(query.question.name);
      return Promise.reject(new Error("upstream asked"));
    },
    close: () => Promise.resolve(),
  } as unknown as Upstream;
  const r = buildResolver(parsed.config, { upstreamFor: () => upstream, ddrPorts: ports });
  const ask = async (query: Query) => {
    const answer = await r.handler(query, { face: "dot", signal: new AbortController().signal });
    expect(answer.info).toEqual(parseMessage(answer.wire)); // the info describes the bytes, TTL too
    return decode(answer.wire);
  };
  return { ask, asked, config: parsed.config };
}

function records(d: Decoded): (Svcb & { owner: string; ttl: number; p: Record<string, string> })[] {
  return d.answers.map((rr) => {
    expect(rr.type).toBe(SVCB);
    expect(rr.class).toBe(1);
    const s = decodeSvcb(rr.rdata);
    const keys = s.params.map(([k]) => k);
    expect(keys).toEqual([...keys].sort((a, b) => a - b)); // ascending, RFC 9460 §2.2
    expect(new Set(keys).size).toBe(keys.length);
    expect(s.compressedTarget).toBe(false);
    return { ...s, owner: rr.name, ttl: rr.ttl, p: present(s) };
  });
}

const ALL: DdrPorts = { dot: 853, doh: 443, doq: 8853 };

describe("svcbRdata", () => {
  it("matches RFC 9460 Appendix D.2's ServiceMode vector byte for byte", () => {
    // example.com. SVCB 16 foo.example.com. port=53
    const expected = [
      0x00,
      0x10,
      0x03,
      0x66,
      0x6f,
      0x6f,
      0x07,
      0x65,
      0x78,
      0x61,
      0x6d,
      0x70,
      0x6c,
      0x65,
      0x03,
      0x63,
      0x6f,
      0x6d,
      0x00,
      0x00,
      0x03,
      0x00,
      0x02,
      0x00,
      0x35,
    ];
    expect([...svcbRdata({ priority: 16, target: "foo.example.com", port: 53 })]).toEqual(expected);
  });

  it("writes alpn, port, hints and dohpath in ascending key order with exact lengths", () => {
    const rdata = svcbRdata({
      priority: 2,
      target: "dns.example",
      dohpath: "/dns-query{?dns}",
      ipv6hint: [Uint8Array.from([0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 1])],
      ipv4hint: [Uint8Array.from([192, 0, 2, 1]), Uint8Array.from([192, 0, 2, 2])],
      port: 443,
      alpn: ["h2"],
    });
    const s = decodeSvcb(rdata);
    expect(s.priority).toBe(2);
    expect(s.target).toBe("dns.example");
    expect(s.params.map(([k]) => k)).toEqual([1, 3, 4, 6, 7]);
    expect(present(s)).toEqual({
      alpn: "h2",
      port: "443",
      ipv4hint: "192.0.2.1,192.0.2.2",
      ipv6hint: "2001:db8:0:0:0:0:0:1",
      dohpath: "/dns-query{?dns}",
    });
  });

  it("refuses AliasMode priority, bad ports and bad addresses", () => {
    expect(() => svcbRdata({ priority: 0, target: "a" })).toThrow(RangeError);
    expect(() => svcbRdata({ priority: 1, target: "a", port: 65536 })).toThrow(RangeError);
    expect(() => svcbRdata({ priority: 1, target: "a", ipv4hint: [new Uint8Array(3)] }))
      .toThrow(RangeError);
    expect(() => svcbRdata({ priority: 1, target: "a", alpn: [""] })).toThrow(RangeError);
  });
});

describe("DDR middleware", () => {
  it("fits the largest configuration the parser allows in one message", async () => {
    const long = (i: number) =>
      `${"a".repeat(60)}.${"b".repeat(60)}.${"c".repeat(60)}.n${i}.example`;
    const names = Array.from({ length: 16 }, (_, i) => long(i)).join(",");
    const v4 = Array.from({ length: 8 }, (_, i) => `192.0.2.${i}`).join(",");
    const v6 = Array.from({ length: 8 }, (_, i) => `2001:db8::${i}`).join(",");
    const r = resolver(
      ["--ddr-name", names, "--ddr-ipv4-hint", v4, "--ddr-ipv6-hint", v6],
      () => ALL,
    );
    const rs = records(await r.ask(q("_dns.resolver.arpa")));
    expect(rs.length).toBe(48);
    expect(rs[47].priority).toBe(48);
    expect(rs[47].p.ipv6hint.split(",").length).toBe(8);
  });

  it("answers _dns.resolver.arpa SVCB with one record per face, without the upstream", async () => {
    const r = resolver(["--ddr-name", "dns.example"], () => ALL);
    const d = await r.ask(q("_dns.resolver.arpa", SVCB, { id: 0xbeef }));
    expect(r.asked).toEqual([]);
    expect(d.id).toBe(0xbeef);
    expect(d.rcode).toBe(0);
    expect(d.flags & 0x8000).toBe(0x8000); // QR
    expect(d.flags & 0x0400).toBe(0x0400); // AA
    const rs = records(d);
    expect(rs.map((s) => [s.owner, s.ttl, s.priority, s.target])).toEqual([
      ["_dns.resolver.arpa", 300, 1, "dns.example"],
      ["_dns.resolver.arpa", 300, 2, "dns.example"],
      ["_dns.resolver.arpa", 300, 3, "dns.example"],
    ]);
    expect(rs.map((s) => s.p)).toEqual([
      { alpn: "dot", port: "853" },
      { alpn: "h2", port: "443", dohpath: "/dns-query{?dns}" },
      { alpn: "doq", port: "8853" },
    ]);
  });

  it("advertises only the faces that are on", async () => {
    const r = resolver(["--ddr-name", "dns.example"], () => ({ dot: 853 }));
    const rs = records(await r.ask(q("_dns.resolver.arpa")));
    expect(rs.map((s) => s.p)).toEqual([{ alpn: "dot", port: "853" }]);
  });

  it("gives every designated name its records, priorities 1..n, and the hints on each", async () => {
    const r = resolver([
      "--ddr-name",
      "a.example",
      "--ddr-name",
      "B.Example.",
      "--ddr-ipv4-hint",
      "192.0.2.53",
      "--ddr-ipv6-hint",
      "2001:db8::53",
    ], () => ({ dot: 853, doh: 443 }));
    const rs = records(await r.ask(q("_dns.resolver.arpa")));
    expect(rs.map((s) => [s.priority, s.target, s.p.alpn])).toEqual([
      [1, "a.example", "dot"],
      [2, "a.example", "h2"],
      [3, "b.example", "dot"],
      [4, "b.example", "h2"],
    ]);
    for (const s of rs) {
      expect(s.p.ipv4hint).toBe("192.0.2.53");
      expect(s.p.ipv6hint).toBe("2001:db8:0:0:0:0:0:53");
    }
  });

  it("answers _dns.<name> SVCB for each designated name, owned by that name", async () => {
    const r = resolver(["--ddr-name", "a.example", "--ddr-name", "b.example"], () => ALL);
    const rs = records(await r.ask(q("_dns.b.example")));
    expect(rs.length).toBe(6);
    expect(new Set(rs.map((s) => s.owner))).toEqual(new Set(["_dns.b.example"]));
    expect(r.asked).toEqual([]);
  });

  it("matches names case-insensitively", async () => {
    const r = resolver(["--ddr-name", "dns.example"], () => ALL);
    expect(records(await r.ask(q("_DNS.Resolver.ARPA"))).length).toBe(3);
  });

  it("gives NODATA for other types there and for any name under resolver.arpa", async () => {
    const r = resolver(["--ddr-name", "dns.example"], () => ALL);
    for (
      const [name, type] of [
        ["_dns.resolver.arpa", 1],
        ["_dns.resolver.arpa", 65],
        ["_dns.dns.example", 28],
        ["resolver.arpa", SVCB],
        ["x._dns.resolver.arpa", SVCB],
        ["anything.resolver.arpa", 16],
      ] as const
    ) {
      const d = await r.ask(q(name, type));
      expect([name, type, d.rcode, d.answers.length, d.nscount]).toEqual([name, type, 0, 0, 0]);
    }
    expect(r.asked).toEqual([]);
  });

  it("passes other names, and other classes, to the upstream", async () => {
    const r = resolver(["--ddr-name", "dns.example"], () => ALL);
    const d = await r.ask(q("example.com", SVCB));
    expect(d.rcode).toBe(2); // the fake upstream fails: SERVFAIL
    await r.ask(q("_dns.resolver.arpa", SVCB, { class: 3 }));
    await r.ask(q("dns.example", 1));
    await r.ask(q("_dns.other.example", SVCB));
    expect(r.asked).toEqual([
      "example.com",
      "_dns.resolver.arpa",
      "dns.example",
      "_dns.other.example",
    ]);
  });

  it("is off without a name, and off when the edge gives no ports", async () => {
    const off = resolver([], () => ALL);
    await off.ask(q("_dns.resolver.arpa"));
    const noPorts = resolver(["--ddr-name", "dns.example"]);
    await noPorts.ask(q("_dns.resolver.arpa"));
    expect([off.asked, noPorts.asked]).toEqual([["_dns.resolver.arpa"], ["_dns.resolver.arpa"]]);
  });

  it("carries an OPT record when the query had one", async () => {
    const r = resolver(["--ddr-name", "dns.example"], () => ALL);
    const d = await r.ask(q("_dns.resolver.arpa", SVCB, { edns: true }));
    expect(d.arcount).toBe(1);
    expect(d.additional[0].type).toBe(41);
    expect(records({ ...d, answers: d.answers }).length).toBe(3);
  });

  it("remakes the answers when a face's port becomes known", async () => {
    let ports: DdrPorts = { dot: 0 };
    const r = resolver(["--ddr-name", "dns.example"], () => ports);
    expect(records(await r.ask(q("_dns.resolver.arpa")))[0].p.port).toBe("0");
    ports = { dot: 40853, doh: 40443 };
    const rs = records(await r.ask(q("_dns.resolver.arpa")));
    expect(rs.map((s) => s.p.port)).toEqual(["40853", "40443"]);
  });

  it("is checked by the ACL first", async () => {
    const r = resolver(["--ddr-name", "dns.example", "--deny", "0.0.0.0/0"], () => ALL);
    const parsed = parseConfig({ args: ["--ddr-name", "dns.example", "--deny", "0.0.0.0/0"] });
    if (parsed.help) throw new Error("unreachable");
    const built = buildResolver(parsed.config, {
      upstreamFor: () => ({} as Upstream),
      ddrPorts: () => ALL,
    });
    const answer = await built.handler(q("_dns.resolver.arpa"), {
      face: "dot",
      signal: new AbortController().signal,
      client: { address: "192.0.2.7" },
    });
    expect(decode(answer.wire).rcode).toBe(5); // REFUSED
    expect(r.asked).toEqual([]);
  });
});

describe("DDR configuration", () => {
  const parse = (args: string[], env: Record<string, string> = {}) => {
    const p = parseConfig({ args, env });
    if (p.help) throw new Error("unreachable");
    return p.config;
  };

  it("takes names and hints from flags (repeatable, comma lists) and the environment", () => {
    const c = parse(["--ddr-name", "a.example,b.example", "--ddr-name", "c.example"], {
      DOTBRIDGE_DDR_IPV4_HINT: "192.0.2.1,192.0.2.2",
    });
    expect(c.resolver.ddrNames).toEqual(["a.example", "b.example", "c.example"]);
    expect(c.resolver.ddrIpv4Hints).toEqual(["192.0.2.1", "192.0.2.2"]);
    expect(c.resolver.ddrIpv6Hints).toEqual([]);
    expect(parse([]).resolver.ddrNames).toEqual([]);
  });

  it("rejects bad names, bad hints, and hints without a name, naming the key", () => {
    const bad: [string[], string][] = [
      [["--ddr-name", "bad name"], "--ddr-name"],
      [["--ddr-name", "a..b"], "--ddr-name"],
      [["--ddr-name", "a.example", "--ddr-ipv4-hint", "2001:db8::1"], "--ddr-ipv4-hint"],
      [["--ddr-name", "a.example", "--ddr-ipv4-hint", "300.1.1.1"], "--ddr-ipv4-hint"],
      [["--ddr-name", "a.example", "--ddr-ipv6-hint", "192.0.2.1"], "--ddr-ipv6-hint"],
      [["--ddr-name", "a.example", "--ddr-ipv6-hint", "fe80::1%eth0"], "--ddr-ipv6-hint"],
      [["--ddr-ipv4-hint", "192.0.2.1"], "--ddr-ipv4-hint"],
      [
        ["--ddr-name", Array.from({ length: 17 }, (_, i) => `n${i}.example`).join(",")],
        "--ddr-name",
      ],
      [
        ["--ddr-name", "a.example", "--ddr-ipv6-hint", Array(9).fill("::1").join(",")],
        "--ddr-ipv6-hint",
      ],
    ];
    for (const [args, key] of bad) {
      let error: unknown;
      try {
        parse(args);
      } catch (e) {
        error = e;
      }
      expect(error, args.join(" ")).toBeInstanceOf(ConfigError);
      expect((error as Error).message.startsWith(key), (error as Error).message).toBe(true);
    }
  });

  it("advertises DoH only when the face serves TLS itself, DoQ only when on", () => {
    expect(ddrPortsFromConfig(parse(["--listen", "0.0.0.0:853", "--http-listen", "0.0.0.0:443"])))
      .toEqual({ dot: 853, doh: 443, doq: undefined });
    expect(ddrPortsFromConfig(parse(["--http-tls=false"])).doh).toBeUndefined();
    expect(ddrPortsFromConfig(parse(["--http-listen", "off"])).doh).toBeUndefined();
    expect(ddrPortsFromConfig(parse(["--doq-listen", "0.0.0.0:853"])).doq).toBe(853);
  });
});
