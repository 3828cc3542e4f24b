import { describe, expect, it } from "vitest";
import { ConnectionSlots } from "../../src/deno/connection_slots.ts";

describe("ConnectionSlots", () => {
  it("counts an IPv6 client by its /64, in any spelling, as the rate limits do", () => {
    const slots = new ConnectionSlots({ maxConnectionsPerIp: 2 });
    expect("release" in slots.take("2001:db8:1:2::1", false)).toBe(true);
    expect("release" in slots.take("2001:DB8:1:2:ffff:ffff:ffff:ffff", false)).toBe(true);
    expect(slots.take("[2001:db8:1:2::99]", false)).toEqual({ refused: "max-connections-per-ip" });
    expect("release" in slots.take("2001:db8:1:3::1", false)).toBe(true); // another /64
    expect(slots.open).toBe(3);
  });

  it("counts an IPv4-mapped address as the IPv4 one; IPv4 addresses one by one", () => {
    const slots = new ConnectionSlots({ maxConnectionsPerIp: 1 });
    expect("release" in slots.take("192.0.2.1", false)).toBe(true);
    expect(slots.take("::ffff:192.0.2.1", false)).toEqual({ refused: "max-connections-per-ip" });
    expect("release" in slots.take("192.0.2.2", false)).toBe(true);
  });

  it("frees the client's count on release, once", () => {
    const slots = new ConnectionSlots({ maxConnectionsPerIp: 1 });
    const a = slots.take("2001:db8::1", false);
    if (!("release" in a)) throw new Error("refused");
    a.release();
    a.release();
    expect(slots.open).toBe(0);
    expect("release" in slots.take("2001:db8::2", false)).toBe(true);
    expect(slots.take("2001:db8::3", false)).toEqual({ refused: "max-connections-per-ip" });
  });

  it("spares a forwarder the per-client cap and the ACL, not --max-connections", () => {
    const slots = new ConnectionSlots({
      maxConnections: 5,
      maxConnectionsPerIp: 1,
      accept: (address) => address !== "127.0.0.1",
    });
    expect(slots.take("127.0.0.1", false)).toEqual({ refused: "acl" });
    for (let i = 0; i < 4; i++) {
      expect("release" in slots.take("127.0.0.1", false, true)).toBe(true);
    }
    // Its connections do not count against the client at its address either.
    expect("release" in slots.take("127.0.0.2", false)).toBe(true);
    expect(slots.take("127.0.0.1", false, true)).toEqual({ refused: "max-connections" });
    expect(slots.take("127.0.0.1", true, true)).toEqual({ refused: "shutdown" });
  });
});
