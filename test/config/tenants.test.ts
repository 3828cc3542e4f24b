import { describe, expect, it } from "vitest";
import {
  guessableTenants,
  guessableTenantsWarning,
  parseTenants,
  tenantFromServerName,
} from "../../src/config/tenants.ts";

describe("parseTenants", () => {
  it("reads the query log opt-out, and refuses a value that is not true or false", () => {
    const parse = (v: unknown) =>
      parseTenants(
        JSON.stringify({ tenants: { kids: { upstream: "https://a.example/q", "query-log": v } } }),
        "t.json",
      );
    expect(parse(false).tenants.get("kids")?.queryLog).toBe(false);
    expect(() => parse("no")).toThrow('t.json: "kids"."query-log": must be true or false');
  });

  it("reads policies with defaults", () => {
    const t = parseTenants(
      JSON.stringify({
        default: "home",
        tenants: {
          home: { upstream: "https://a.example/dns-query" },
          kids: {
            upstream: ["tls://1.1.1.1#family.example", "https://b.example/dns-query"],
            "upstream-strategy": "race",
            cache: false,
            "local-records": "/etc/kids.hosts",
          },
        },
      }),
      "t.json",
    );
    expect(t.defaultTenant).toBe("home");
    expect(t.tenants.get("home")).toEqual({
      name: "home",
      selector: "home",
      id: undefined,
      allow: undefined,
      upstreams: ["https://a.example/dns-query"],
      upstreamStrategy: "failover",
      cache: true,
      localRecords: undefined,
      queryLog: true,
    });
    expect(t.tenants.get("kids")?.upstreamStrategy).toBe("race");
    expect(t.tenants.get("kids")?.cache).toBe(false);
  });

  it.each([
    ["not json", "{", /^t\.json: not valid JSON/],
    ["an unknown top-level key", '{"tenants":{},"x":1}', /^t\.json: "x": unknown key/],
    ["tenants not an object", '{"tenants":[]}', /^t\.json: "tenants": must be an object/],
    [
      "a bad tenant name",
      '{"tenants":{"Bad_Name":{"upstream":"https://a/q"}}}',
      /"Bad_Name": a tenant name/,
    ],
    ["no upstream", '{"tenants":{"a":{}}}', /^t\.json: "a"\."upstream": needs one or more/],
    ["a bad upstream", '{"tenants":{"a":{"upstream":"ftp://x"}}}', /"a"\."upstream": .*https:\/\//],
    [
      "a bad strategy",
      '{"tenants":{"a":{"upstream":"https://a/q","upstream-strategy":"x"}}}',
      /"upstream-strategy"/,
    ],
    [
      "cache not a bool",
      '{"tenants":{"a":{"upstream":"https://a/q","cache":"yes"}}}',
      /"cache": must be true/,
    ],
    [
      "an unknown tenant key",
      '{"tenants":{"a":{"upstream":"https://a/q","x":1}}}',
      /"a"\."x": unknown key/,
    ],
    [
      "an id too short to be unguessable",
      '{"tenants":{"a":{"upstream":"https://a/q","id":"9y65g5s"}}}',
      /^t\.json: "a"\."id": must be 8 to 63 lower-case letters and digits/,
    ],
    [
      "an id with upper case",
      '{"tenants":{"a":{"upstream":"https://a/q","id":"9Y65G5SRSM"}}}',
      /^t\.json: "a"\."id": must be 8 to 63/,
    ],
    [
      "an id that is not one DNS label",
      '{"tenants":{"a":{"upstream":"https://a/q","id":"9y65g5sr.sm"}}}',
      /^t\.json: "a"\."id": must be 8 to 63/,
    ],
    [
      "an id that is not a string",
      '{"tenants":{"a":{"upstream":"https://a/q","id":123456789}}}',
      /^t\.json: "a"\."id": must be 8 to 63/,
    ],
    [
      "an id longer than a DNS label",
      `{"tenants":{"a":{"upstream":"https://a/q","id":"${"a".repeat(64)}"}}}`,
      /^t\.json: "a"\."id": must be 8 to 63/,
    ],
    [
      "a duplicate id",
      '{"tenants":{"a":{"upstream":"https://a/q","id":"9y65g5srsm"},' +
      '"b":{"upstream":"https://a/q","id":"9y65g5srsm"}}}',
      /^t\.json: "b"\."id": "9y65g5srsm" is also the id of "a"$/,
    ],
    [
      "an id that is a tenant's name",
      '{"tenants":{"a":{"upstream":"https://a/q","id":"workshop1"},' +
      '"workshop1":{"upstream":"https://a/q"}}}',
      /^t\.json: "a"\."id": "workshop1" is a tenant's name$/,
    ],
    [
      "an empty allow list",
      '{"tenants":{"a":{"upstream":"https://a/q","allow":[]}}}',
      /^t\.json: "a"\."allow": must list one or more addresses or CIDR ranges/,
    ],
    [
      "an allow list that is a string",
      '{"tenants":{"a":{"upstream":"https://a/q","allow":"10.0.0.0/8"}}}',
      /^t\.json: "a"\."allow": must list/,
    ],
    [
      "a bad CIDR range in allow",
      '{"tenants":{"a":{"upstream":"https://a/q","allow":["10.0.0.0/33"]}}}',
      /^t\.json: "a"\."allow": "10\.0\.0\.0\/33" is not an address or CIDR range$/,
    ],
    [
      "routes that are a list",
      '{"tenants":{"a":{"upstream":"https://a/q","routes":["lan=udp://10.0.0.1"]}}}',
      /^t\.json: "a"\."routes": must be an object of suffixes to upstreams/,
    ],
    [
      "a route without upstreams",
      '{"tenants":{"a":{"upstream":"https://a/q","routes":{"lan":[]}}}}',
      /^t\.json: "a"\."routes"\."lan": needs one or more upstream URLs$/,
    ],
    [
      "a route to a plain DNS upstream by name",
      '{"tenants":{"a":{"upstream":"https://a/q","routes":{"lan":"udp://router.lan"}}}}',
      /^t\.json: "a"\."routes": .*is not an IP address/,
    ],
    [
      "a route whose suffix is no name",
      '{"tenants":{"a":{"upstream":"https://a/q","routes":{"a/b":"udp://10.0.0.1"}}}}',
      /^t\.json: "a"\."routes"\."a\/b": is not a domain name suffix$/,
    ],
    [
      "a default that is not a tenant",
      '{"default":"b","tenants":{"a":{"upstream":"https://a/q"}}}',
      /"default": must name a tenant/,
    ],
  ])("names the key for %s", (_what, text, message) => {
    expect(() => parseTenants(text, "t.json")).toThrow(message);
  });
});

describe("tenants' routes", () => {
  it("reads routes by name (a URL or a list each), canonical suffixes; unset when absent", () => {
    const t = parseTenants(
      JSON.stringify({
        tenants: {
          home: {
            upstream: "https://a.example/dns-query",
            routes: {
              "Lan.": "udp://192.168.1.1",
              "168.192.in-addr.arpa": ["udp://192.168.1.1", "tcp://192.168.1.1"],
            },
          },
          guest: { upstream: "https://a.example/dns-query", routes: {} },
          kids: { upstream: "https://a.example/dns-query" },
        },
      }),
      "t.json",
    );
    expect(t.tenants.get("home")?.routes).toEqual({
      lan: ["udp://192.168.1.1"],
      "168.192.in-addr.arpa": ["udp://192.168.1.1", "tcp://192.168.1.1"],
    });
    expect(t.tenants.get("guest")?.routes).toEqual({});
    expect(t.tenants.get("kids")?.routes).toBeUndefined();
  });
});

describe("tenant ids and allow lists", () => {
  const file = JSON.stringify({
    default: "home",
    tenants: {
      home: { upstream: "https://a/q" },
      kids: { upstream: "https://a/q" },
      work: { upstream: "https://a/q", id: "9y65g5srsm" },
      lab: { upstream: "https://a/q", allow: ["10.0.0.0/8", "2001:db8::/32"] },
    },
  });

  it("selects a tenant with an id by the id alone, others by name", () => {
    const t = parseTenants(file, "t.json");
    expect(t.tenants.get("work")).toMatchObject({ selector: "9y65g5srsm", id: "9y65g5srsm" });
    expect(t.tenants.get("kids")?.selector).toBe("kids");
    expect(t.tenants.get("lab")?.allow).toEqual(["10.0.0.0/8", "2001:db8::/32"]);
  });

  it("calls guessable the tenants without id or allow, other than the default", () => {
    const t = parseTenants(file, "t.json");
    expect(guessableTenants(t)).toEqual(["kids"]);
    expect(guessableTenantsWarning(t, ["EDNS option 65011"])).toBe(
      "tenants: kids can be selected by name by any client (EDNS option 65011); give each an " +
        '"allow" list or an "id" unless its upstreams and local records are for everyone',
    );
    expect(guessableTenantsWarning(t, [])).toBeUndefined();
    const safe = parseTenants(
      JSON.stringify({ tenants: { work: { upstream: "https://a/q", id: "9y65g5srsm" } } }),
      "t.json",
    );
    expect(guessableTenantsWarning(safe, ["EDNS option 65011"])).toBeUndefined();
  });
});

describe("tenantFromServerName", () => {
  it.each([
    ["kids.dot.example.net", "dot.example.net", "kids"],
    ["KIDS.Dot.Example.Net.", "dot.example.net", "kids"],
    ["dot.example.net", "dot.example.net", undefined],
    ["a.b.dot.example.net", "dot.example.net", undefined],
    ["kids.other.example", "dot.example.net", undefined],
    ["xdot.example.net", "dot.example.net", undefined],
    ["9y65g5srsm.dot.example.net", "dot.example.net", "9y65g5srsm"],
  ])("%s under %s is %s", (name, domain, tenant) => {
    expect(tenantFromServerName(name, domain)).toBe(tenant);
  });
});

describe("a tenant's blocklists and allowlists", () => {
  const tenant = (extra: Record<string, unknown>) =>
    parseTenants(
      JSON.stringify({ tenants: { kids: { upstream: "https://a/q", ...extra } } }),
      "t.json",
    ).tenants.get("kids")!;

  it("reads sources, the block response and the TTL, and leaves unset keys unset", () => {
    expect(tenant({
      blocklist: ["https://lists.example/ads.txt", "/etc/kids.txt"],
      allowlist: "/etc/allow.txt",
      "block-response": "null",
      "block-ttl": "5m",
    })).toMatchObject({
      blocklists: ["https://lists.example/ads.txt", "/etc/kids.txt"],
      allowlists: ["/etc/allow.txt"],
      blockResponse: "null",
      blockTtlMs: 300_000,
    });
    expect(tenant({ "block-ttl": 30 }).blockTtlMs).toBe(30_000);
    expect(tenant({ blocklist: [] }).blocklists).toEqual([]);
    const bare = tenant({});
    expect([bare.blocklists, bare.allowlists, bare.blockResponse, bare.blockTtlMs])
      .toEqual([undefined, undefined, undefined, undefined]);
  });

  it.each([
    [{ blocklist: 3 }, /"kids"\."blocklist": must list file paths or URLs/],
    [{ allowlist: [""] }, /"kids"\."allowlist": must list/],
    [{ blocklist: ["ftp://x/list"] }, /"kids"\."blocklist": "ftp:\/\/x" must be https:\/\//],
    [{ blocklist: ["http://lists.example/l"] }, /http:\/\/ only on loopback/],
    [{ "block-response": "drop" }, /"kids"\."block-response": "drop" is not one of/],
    [{ "block-ttl": "2d" }, /"kids"\."block-ttl": must be a duration up to 24h/],
    [{ "block-ttl": 1.5 }, /"block-ttl"/],
  ])("refuses %j", (extra, message) => {
    expect(() => tenant(extra)).toThrow(message);
  });
});
