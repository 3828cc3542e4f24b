/**
 * dnstap's address bytes: parsed once per address (a face's own address is on every message).
 */
import { describe, expect, it } from "vitest";
import { addressBytes, addressBytesMemo } from "../../src/observe/dnstap.ts";

describe("addressBytes", () => {
  it("reads IPv4, bracketed IPv6 with a zone, and nothing else", () => {
    expect([...addressBytes("192.0.2.1")!.bytes]).toEqual([192, 0, 2, 1]);
    const v6 = addressBytes("[fe80::1%eth0]")!;
    expect(v6.bytes.length).toBe(16);
    expect(v6.bytes[15]).toBe(1);
    expect(addressBytes("dns.example")).toBeUndefined();
  });
});

describe("addressBytesMemo", () => {
  it("answers as addressBytes does, the same object for an address seen before", () => {
    const bytesOf = addressBytesMemo();
    const first = bytesOf("2001:db8::53");
    expect(first).toEqual(addressBytes("2001:db8::53"));
    expect(bytesOf("2001:db8::53")).toBe(first);
    expect(bytesOf("not an address")).toBeUndefined();
    expect(bytesOf("not an address")).toBeUndefined();
    expect(bytesOf(undefined)).toBeUndefined();
  });
});
