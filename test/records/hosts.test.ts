import { describe, expect, it } from "vitest";
import { parseHosts } from "../../src/records/mod.ts";
import { HOSTS } from "./fixtures.ts";

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
