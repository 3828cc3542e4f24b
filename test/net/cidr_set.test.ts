import { describe, expect, it } from "vitest";
import { CidrSet, parseAddress } from "../../src/net/cidr_set.ts";

describe("CidrSet", () => {
  const loopback = new CidrSet(["127.0.0.0/8", "::1"], "--trusted-proxy-from");

  it.each([
    ["127.0.0.1", true],
    ["127.255.0.9", true],
    ["::1", true],
    ["[::1]", true],
    ["::ffff:127.0.0.1", true], // IPv4-mapped: the IPv4 address
    ["0:0:0:0:0:ffff:7f00:1", true],
    ["128.0.0.1", false],
    ["::2", false],
    ["2001:db8::1", false],
    ["not an address", false],
    ["", false],
  ])("%s in 127.0.0.0/8, ::1: %s", (address, expected) => {
    expect(loopback.has(address)).toBe(expected);
  });

  it("takes an IPv4-mapped range as the IPv4 range", () => {
    const set = new CidrSet(["::ffff:10.0.0.0/104"], "x");
    expect(set.has("10.1.2.3")).toBe(true);
    expect(set.has("11.0.0.1")).toBe(false);
  });

  it("is empty for an empty list, and names the list and entry it cannot read", () => {
    expect(new CidrSet([], "x").size).toBe(0);
    expect(new CidrSet([], "x").has("127.0.0.1")).toBe(false);
    expect(() => new CidrSet(["10.0.0.0/8", "ten"], "--trusted-proxy-from"))
      .toThrow('--trusted-proxy-from: "ten" is not an address or CIDR range');
  });

  it("parses addresses with brackets or a zone, and refuses the rest", () => {
    expect(parseAddress("[2001:db8::1]")?.toString()).toBe("2001:db8::1");
    expect(parseAddress("fe80::1%eth0")?.toString()).toBe("fe80::1");
    expect(parseAddress("192.0.2.1:53")).toBeUndefined();
  });
});
