import { describe, expect, it } from "vitest";
import { ResponseRateLimiter, rrlNetwork } from "../../src/net/rrl.ts";

describe("rrlNetwork", () => {
  it.each([
    ["192.0.2.77", "192.0.2"],
    ["192.0.2.1", "192.0.2"],
    ["::ffff:192.0.2.9", "192.0.2"],
    ["2001:db8:aa:bbcc::1", "2001:db8:aa:bb/56"],
    ["2001:db8:aa:bbff:1:2:3:4", "2001:db8:aa:bb/56"],
    ["2001:db8:aa:cc00::1", "2001:db8:aa:cc/56"],
    ["::1", "0:0:0:0/56"],
  ])("%s counts under %s", (address, network) => {
    expect(rrlNetwork(address)).toBe(network);
  });
});

describe("ResponseRateLimiter", () => {
  function limiter(options: { rate: number; burst?: number; slip?: number; maxNetworks?: number }) {
    let t = 0;
    const rrl = new ResponseRateLimiter({ ...options, now: () => t });
    return { rrl, advance: (ms: number) => (t += ms) };
  }

  it("sends the burst, then slips every second answer and drops the rest (slip 2)", () => {
    const { rrl } = limiter({ rate: 5 });
    const verdicts = Array.from({ length: 11 }, () => rrl.check("192.0.2.1"));
    expect(verdicts).toEqual([
      "send",
      "send",
      "send",
      "send",
      "send",
      "drop",
      "slip",
      "drop",
      "slip",
      "drop",
      "slip",
    ]);
  });

  it("counts a whole /24 together, and other networks apart", () => {
    const { rrl } = limiter({ rate: 2, slip: 1 });
    expect(rrl.check("192.0.2.1")).toBe("send");
    expect(rrl.check("192.0.2.200")).toBe("send");
    expect(rrl.check("192.0.2.3")).toBe("slip");
    expect(rrl.check("198.51.100.1")).toBe("send");
    expect(rrl.check("2001:db8:0:1::1")).toBe("send");
    expect(rrl.check("2001:db8:0:1f::9")).toBe("send"); // the same /56
    expect(rrl.check("2001:db8:0:10::9")).toBe("slip");
    expect(rrl.check("2001:db8:0:100::1")).toBe("send"); // the next /56
  });

  it("refills at the rate", () => {
    const { rrl, advance } = limiter({ rate: 10, slip: 0 });
    for (let i = 0; i < 10; i++) expect(rrl.check("192.0.2.1")).toBe("send");
    expect(rrl.check("192.0.2.1")).toBe("drop");
    advance(100); // one answer's worth
    expect(rrl.check("192.0.2.1")).toBe("send");
    expect(rrl.check("192.0.2.1")).toBe("drop");
    advance(10_000); // no more than the burst accrues
    for (let i = 0; i < 10; i++) expect(rrl.check("192.0.2.1")).toBe("send");
    expect(rrl.check("192.0.2.1")).toBe("drop");
  });

  it("with slip 1 truncates every answer past the limit, with slip 0 drops them all", () => {
    const one = limiter({ rate: 1, slip: 1 }).rrl;
    one.check("192.0.2.1");
    expect([one.check("192.0.2.1"), one.check("192.0.2.1")]).toEqual(["slip", "slip"]);
    const none = limiter({ rate: 1, slip: 0 }).rrl;
    none.check("192.0.2.1");
    expect([none.check("192.0.2.1"), none.check("192.0.2.1")]).toEqual(["drop", "drop"]);
  });

  it("takes a larger burst, and forgets the least recently seen networks past its cap", () => {
    const { rrl } = limiter({ rate: 1, burst: 3, slip: 0, maxNetworks: 2 });
    expect([1, 2, 3, 4].map(() => rrl.check("192.0.2.1"))).toEqual([
      "send",
      "send",
      "send",
      "drop",
    ]);
    rrl.check("198.51.100.1");
    rrl.check("203.0.113.1"); // pushes 192.0.2 out
    expect(rrl.size).toBe(2);
    expect(rrl.check("192.0.2.1")).toBe("send"); // a fresh bucket
  });

  it("refuses a rate that is not above 0 and a fractional slip", () => {
    expect(() => new ResponseRateLimiter({ rate: 0 })).toThrow(RangeError);
    expect(() => new ResponseRateLimiter({ rate: 5, slip: 1.5 })).toThrow(RangeError);
  });
});
