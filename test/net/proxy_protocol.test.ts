/**
 * The PROXY protocol parser: version 1 and 2 headers byte by byte, the malformed, truncated and
 * oversized corpus, and properties over arbitrary bytes (fast-check).
 */
import * as fc from "fast-check";
import ipaddr from "ipaddr.js";
import { describe, expect, it } from "vitest";
import {
  parseProxyHeader,
  ProxyProtocolError,
  proxySignature,
  V1_MAX,
} from "../../src/net/proxy_protocol.ts";
import { MALFORMED, SIG, tcp4, v2 } from "./proxy_corpus.ts";

const text = (s: string) => new TextEncoder().encode(s);
/** Feeds `bytes` one byte at a time; returns the first result that is not "need more". */
function byteByByte(bytes: Uint8Array) {
  for (let n = 1; n <= bytes.length; n++) {
    const h = parseProxyHeader(bytes.subarray(0, n));
    if (h) return { header: h, at: n };
  }
  return undefined;
}

describe("version 1", () => {
  it("reads TCP4 and TCP6 lines, only once the CRLF has arrived", () => {
    const line = text("PROXY TCP4 192.0.2.7 198.51.100.1 56324 853\r\n");
    const got = byteByByte(line);
    expect(got?.at).toBe(line.length);
    expect(got?.header).toEqual({
      version: 1,
      client: { address: "192.0.2.7", port: 56324 },
      length: line.length,
    });
    const six = parseProxyHeader(text("PROXY TCP6 2001:DB8::0:1 2001:db8::2 1 65535\r\nrest"));
    expect(six).toEqual({ version: 1, client: { address: "2001:db8::1", port: 1 }, length: 46 });
  });

  it("takes UNKNOWN as no address", () => {
    expect(parseProxyHeader(text("PROXY UNKNOWN\r\n"))).toEqual({ version: 1, length: 15 });
    expect(parseProxyHeader(text("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"))?.client)
      .toBeUndefined();
  });

  it("accepts a line of exactly 107 bytes and refuses one byte more", () => {
    const longest = text(
      "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    );
    expect(parseProxyHeader(longest)?.client?.port).toBe(65535);
    const unknown = text(
      "PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n",
    );
    expect(unknown.length).toBe(V1_MAX); // the specification's worst case
    expect(parseProxyHeader(unknown)?.length).toBe(V1_MAX);
    const padded = text("PROXY UNKNOWN " + "x".repeat(V1_MAX - 15) + "\r\n");
    expect(padded.length).toBe(V1_MAX + 1);
    expect(() => parseProxyHeader(padded)).toThrow(ProxyProtocolError);
    // No CR within 107 bytes: refused before the rest arrives.
    expect(() => parseProxyHeader(text("PROXY UNKNOWN " + "y".repeat(200)))).toThrow(/longer/);
  });
});

describe("version 2", () => {
  it("reads TCP4 with TLVs skipped, only once the whole length has arrived", () => {
    const tlv = [0x04, 0x00, 0x03, 1, 2, 3]; // PP2_TYPE_NOOP, 3 bytes
    const h = v2(1, 0x11, [...tcp4([127, 0, 0, 9], [127, 0, 0, 1], 40000, 853), ...tlv]);
    const got = byteByByte(h);
    expect(got?.at).toBe(h.length);
    expect(got?.header).toEqual({
      version: 2,
      client: { address: "127.0.0.9", port: 40000 },
      length: 16 + 18,
    });
  });

  it("reads TCP6", () => {
    const src = [0x20, 0x01, 0x0d, 0xb8, ...new Array(11).fill(0), 0x09];
    const h = v2(1, 0x21, [...src, ...new Array(16).fill(0), 0x12, 0x34, 0x03, 0x55]);
    expect(parseProxyHeader(h)?.client).toEqual({ address: "2001:db8::9", port: 0x1234 });
  });

  it("takes LOCAL and UNSPEC as no address", () => {
    expect(parseProxyHeader(v2(0, 0x00, []))).toEqual({ version: 2, length: 16 });
    expect(parseProxyHeader(v2(0, 0x11, tcp4([1, 2, 3, 4], [5, 6, 7, 8], 1, 2)))?.client)
      .toBeUndefined();
    expect(parseProxyHeader(v2(1, 0x00, []))?.client).toBeUndefined();
  });
});

describe("the malformed corpus", () => {
  it.each(MALFORMED)("refuses %s", (_why, bytes) => {
    expect(() => parseProxyHeader(bytes)).toThrow(ProxyProtocolError);
  });

  it("knows an oversized v2 header from its fixed part alone", () => {
    expect(() => parseProxyHeader(new Uint8Array([...SIG, 0x21, 0x11, 0x02, 0x00])))
      .toThrow(/above 512/);
    const atCap = v2(1, 0x11, [...tcp4([1, 2, 3, 4], [1, 2, 3, 4], 1, 2), ...new Array(484)]);
    expect(atCap.length).toBe(512);
    expect(parseProxyHeader(atCap)?.client?.address).toBe("1.2.3.4");
  });

  it("waits on every proper prefix of a good header (truncated is not an error)", () => {
    for (
      const good of [
        text("PROXY TCP4 10.0.0.1 10.0.0.2 1000 853\r\n"),
        v2(1, 0x11, tcp4([10, 0, 0, 1], [10, 0, 0, 2], 1000, 853)),
      ]
    ) {
      for (let n = 1; n < good.length; n++) {
        expect(parseProxyHeader(good.subarray(0, n))).toBeUndefined();
      }
    }
  });

  it("tells signatures apart from other first bytes", () => {
    expect(proxySignature(text("PRO"))).toBe("maybe");
    expect(proxySignature(text("PROXY "))).toBe("header");
    expect(proxySignature(new Uint8Array(SIG))).toBe("header");
    expect(proxySignature(text("PRI * HTTP/2.0"))).toBe("no");
    expect(proxySignature(text("POST /dns-query"))).toBe("no");
  });
});

describe("properties", () => {
  it("never throws anything but ProxyProtocolError, and never claims more than it was given", () => {
    const noise = fc.uint8Array({ maxLength: 600 });
    const afterSig = fc.tuple(
      fc.constantFrom(new Uint8Array(SIG), text("PROXY ")),
      fc.uint8Array({ maxLength: 600 }),
    ).map(([a, b]) => new Uint8Array([...a, ...b]));
    fc.assert(
      fc.property(fc.oneof(noise, afterSig), (bytes) => {
        try {
          const h = parseProxyHeader(bytes);
          if (h) {
            expect(h.length).toBeLessThanOrEqual(bytes.length);
            expect(h.length).toBeLessThanOrEqual(512);
          }
        } catch (e) {
          expect(e).toBeInstanceOf(ProxyProtocolError);
        }
      }),
      { numRuns: 3_000 },
    );
  });

  it("reads back any TCP4 or TCP6 header it is given, in any split, with trailing bytes", () => {
    const v4 = fc.tuple(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.nat(65535));
    const v6 = fc.tuple(fc.uint8Array({ minLength: 16, maxLength: 16 }), fc.nat(65535));
    fc.assert(
      fc.property(
        fc.oneof(v4, v6),
        fc.boolean(),
        fc.uint8Array({ maxLength: 40 }),
        fc.uint8Array({ maxLength: 64 }),
        ([addr, port], textual, tlvs, tail) => {
          const four = addr.length === 4;
          const address = four ? [...addr].join(".") : ipv6Text(addr);
          const header = textual
            ? text(`PROXY TCP${four ? 4 : 6} ${address} ${address} ${port} 853\r\n`)
            : v2(1, four ? 0x11 : 0x21, [
              ...addr,
              ...addr,
              port >> 8,
              port & 0xff,
              3,
              0x55,
              ...tlvs,
            ]);
          const all = new Uint8Array([...header, ...tail]);
          const got = byteByByte(all);
          expect(got?.at).toBe(header.length);
          expect(got?.header.client).toEqual({ address, port });
          expect(got?.header.length).toBe(header.length);
        },
      ),
      { numRuns: 500 },
    );
  });
});

/** The canonical (RFC 5952) text of 16 address bytes. */
function ipv6Text(bytes: Uint8Array): string {
  return ipaddr.fromByteArray([...bytes]).toString();
}
