import { describe, expect, it } from "vitest";
import { parseTenants, tenantFromServerName } from "../../src/config/tenants.ts";

describe("parseTenants", () => {
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
      upstreams: ["https://a.example/dns-query"],
      upstreamStrategy: "failover",
      cache: true,
      localRecords: undefined,
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
      "a default that is not a tenant",
      '{"default":"b","tenants":{"a":{"upstream":"https://a/q"}}}',
      /"default": must name a tenant/,
    ],
  ])("names the key for %s", (_what, text, message) => {
    expect(() => parseTenants(text, "t.json")).toThrow(message);
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
  ])("%s under %s is %s", (name, domain, tenant) => {
    expect(tenantFromServerName(name, domain)).toBe(tenant);
  });
});
