import { describe, expect, it } from "vitest";
import {
  addressScope,
  isPrivateAddress,
  LOCAL_RANGES,
  PRIVATE_RANGES,
} from "../../src/net/private_ranges.ts";
import { CidrSet } from "../../src/net/cidr_set.ts";

describe("addressScope", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.255.254", "loopback"],
    ["::1", "loopback"],
    ["[::1]", "loopback"],
    ["10.0.0.1", "private"],
    ["10.255.255.255", "private"],
    ["172.16.0.1", "private"],
    ["172.31.255.255", "private"],
    ["172.15.255.255", "public"],
    ["172.32.0.1", "public"],
    ["192.168.1.20", "private"],
    ["192.169.0.1", "public"],
    ["100.64.0.1", "shared"],
    ["100.127.255.255", "shared"],
    ["100.128.0.1", "public"],
    ["100.63.255.255", "public"],
    ["169.254.10.1", "link-local"],
    ["fe80::1", "link-local"],
    ["fe80::1%eth0", "link-local"],
    ["febf::1", "link-local"],
    ["fec0::1", "public"],
    ["fc00::1", "unique-local"],
    ["fd12:3456:789a::1", "unique-local"],
    ["fe00::1", "public"],
    ["::ffff:192.168.0.1", "private"], // IPv4-mapped: the IPv4 address
    ["::ffff:100.64.0.1", "shared"],
    ["::ffff:8.8.8.8", "public"],
    ["8.8.8.8", "public"],
    ["203.0.113.9", "public"],
    ["2001:db8::1", "public"],
    ["0.0.0.0", "public"],
    ["::", "public"],
  ])("%s is %s", (address, scope) => {
    expect(addressScope(address)).toBe(scope);
  });

  it.each(["", "not an address", "192.168.1.256", "1.2.3.4.5", "::g", "192.168.1.1:53"])(
    "%j is no address",
    (text) => {
      expect(addressScope(text)).toBeUndefined();
      expect(isPrivateAddress(text)).toBe(false);
    },
  );

  it("says private for every local scope and not for public", () => {
    expect(isPrivateAddress("192.168.0.1")).toBe(true);
    expect(isPrivateAddress("100.64.1.1")).toBe(true);
    expect(isPrivateAddress("fd00::5")).toBe(true);
    expect(isPrivateAddress("9.9.9.9")).toBe(false);
  });

  it("lists every local range once, as CIDRs a CidrSet reads, agreeing with the classifier", () => {
    expect(PRIVATE_RANGES).toEqual(Object.values(LOCAL_RANGES).flat());
    const set = new CidrSet(PRIVATE_RANGES, "test");
    for (const address of ["127.0.0.2", "10.9.8.7", "172.20.1.1", "100.100.1.1", "fd00::1"]) {
      expect(set.has(address), address).toBe(true);
      expect(isPrivateAddress(address), address).toBe(true);
    }
    for (const address of ["1.1.1.1", "2606:4700::1111", "192.0.2.1"]) {
      expect(set.has(address), address).toBe(false);
      expect(isPrivateAddress(address), address).toBe(false);
    }
  });
});
