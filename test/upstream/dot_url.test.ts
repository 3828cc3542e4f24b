import { describe, expect, it } from "vitest";
import { type DotUrl, parseDotUrl } from "../../src/upstream/dot_url.ts";

const PIN_A = "n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=";
const PIN_B = new Uint8Array(32).fill(0xfb).toBase64(); // "+/v7..." exercises + and /

describe("parseDotUrl: valid URLs", () => {
  const cases: [string, Partial<DotUrl>][] = [
    ["tls://dns.example", {
      hostname: "dns.example",
      port: 853,
      servername: "dns.example",
      pins: [],
      opportunistic: false,
      display: "tls://dns.example:853",
    }],
    ["tls://1.1.1.1:853#cloudflare-dns.com", {
      hostname: "1.1.1.1",
      port: 853,
      servername: "cloudflare-dns.com",
      display: "tls://1.1.1.1:853#cloudflare-dns.com",
    }],
    ["tls://[2606:4700::1111]#cloudflare-dns.com", {
      hostname: "2606:4700::1111",
      port: 853,
      servername: "cloudflare-dns.com",
      display: "tls://[2606:4700::1111]:853#cloudflare-dns.com",
    }],
    ["tls://[2606:4700:0:0::1111]:8853", {
      hostname: "2606:4700::1111",
      port: 8853,
      servername: "2606:4700::1111",
      display: "tls://[2606:4700::1111]:8853",
    }],
    ["TLS://DNS.Example.:5353/", {
      hostname: "dns.example",
      port: 5353,
      servername: "dns.example",
      display: "tls://dns.example:5353",
    }],
    ["tls://127.0.0.1:8853#Localhost", { hostname: "127.0.0.1", servername: "localhost" }],
    ["tls://9.9.9.9#[2620:fe::fe]", { servername: "2620:fe::fe" }],
    [`tls://9.9.9.9?pin=${PIN_A}`, { pins: [PIN_A], opportunistic: false }],
    [`tls://9.9.9.9?pin=${PIN_A}&pin=${encodeURIComponent(PIN_B)}&pin=${PIN_A}`, {
      pins: [PIN_A, PIN_B],
    }],
    [`tls://9.9.9.9?pin=${PIN_B}`, { pins: [PIN_B] }], // a literal + is not a space
    [`tls://9.9.9.9?pin=${PIN_A.slice(0, -1)}`, { pins: [PIN_A] }], // padding optional
    ["tls://9.9.9.9?opportunistic=1", { opportunistic: true, pins: [] }],
    ["tls://9.9.9.9?opportunistic", { opportunistic: true }],
    ["tls://9.9.9.9?opportunistic=true#dns9.quad9.net", {
      opportunistic: true,
      servername: "dns9.quad9.net",
    }],
    ["tls://9.9.9.9?opportunistic=0", { opportunistic: false }],
    ["tls://_dot.example:65535", { hostname: "_dot.example", port: 65535 }],
  ];
  for (const [url, expected] of cases) {
    it(`parses ${url}`, () => {
      expect(parseDotUrl(url)).toMatchObject(expected);
    });
  }
});

describe("parseDotUrl: invalid URLs", () => {
  const cases: [string, ErrorConstructor | RangeErrorConstructor, RegExp][] = [
    ["https://dns.example/dns-query", TypeError, /scheme must be tls:\/\//],
    ["tls://", TypeError, /no host/],
    ["tls://:853", TypeError, /no host/],
    ["tls://[]:853", TypeError, /no host/],
    ["tls://dns.example:0", RangeError, /port "0" is not a number from 1 to 65535/],
    ["tls://dns.example:65536", RangeError, /port "65536"/],
    ["tls://dns.example:", RangeError, /port ""/],
    ["tls://dns.example:85x", RangeError, /port "85x"/],
    ["tls://dns.example/dns-query", TypeError, /no path/],
    ["tls://2606:4700::1111", TypeError, /IPv6 address must be in brackets/],
    ["tls://[2606:4700::1111", TypeError, /missing \]/],
    ["tls://[2606:4700::1111]853", TypeError, /unexpected "853"/],
    ["tls://[zz::1]", TypeError, /not a valid IPv6 address/],
    ["tls://1.2.3.256", TypeError, /not a valid IPv4 address/],
    ["tls://dns..example", TypeError, /not a valid host name/],
    ["tls://-dns.example", TypeError, /not a valid host name/],
    ["tls://dns example", TypeError, /not a valid host name/],
    ["tls://9.9.9.9#", TypeError, /empty authentication name/],
    ["tls://9.9.9.9#bad name", TypeError, /authentication name "bad name"/],
    ["tls://9.9.9.9?pin=not*base64", TypeError, /pin "not\*base64" is not valid base64/],
    ["tls://9.9.9.9?pin=AAAA", RangeError, /is 3 bytes; a SHA-256 SPKI pin is 32/],
    ["tls://9.9.9.9?pin=", RangeError, /is 0 bytes/],
    ["tls://9.9.9.9?pins=x", TypeError, /unknown parameter "pins"/],
    ["tls://9.9.9.9?opportunistic=maybe", TypeError, /opportunistic must be 1 or 0/],
    [`tls://9.9.9.9?opportunistic=1&pin=${PIN_A}`, TypeError, /contradict/],
    ["tls://9.9.9.9?pin=%zz", TypeError, /bad percent-encoding/],
  ];
  for (const [url, type, message] of cases) {
    it(`rejects ${url}`, () => {
      let error: unknown;
      try {
        parseDotUrl(url);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
      expect((error as Error).message).toMatch(/^DoT upstream "/);
    });
  }

  it("never repeats user info in its error", () => {
    const url = "tls://user:s3cret@dns.example";
    expect(() => parseDotUrl(url)).toThrow(TypeError);
    expect(() => parseDotUrl(url)).toThrow(/user info is not allowed/);
    try {
      parseDotUrl(url);
    } catch (e) {
      expect((e as Error).message).not.toContain("s3cret");
    }
  });
});
