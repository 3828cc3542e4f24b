import { describe, expect, it } from "vitest";
import { isPlainUrl, parsePlainUrl } from "../../src/upstream/plain_url.ts";

describe("parsePlainUrl", () => {
  it.each([
    ["udp://192.168.1.1", "udp", "192.168.1.1", 53, "udp://192.168.1.1:53"],
    ["UDP://192.168.1.1:5353", "udp", "192.168.1.1", 5353, "udp://192.168.1.1:5353"],
    ["tcp://10.0.0.53/", "tcp", "10.0.0.53", 53, "tcp://10.0.0.53:53"],
    ["tcp://[fd00::1]", "tcp", "fd00::1", 53, "tcp://[fd00::1]:53"],
    ["udp://[FD00:0::1]:54", "udp", "fd00::1", 54, "udp://[fd00::1]:54"],
  ])("%s", (url, scheme, hostname, port, display) => {
    expect(parsePlainUrl(url)).toEqual({ scheme, hostname, port, display });
    expect(isPlainUrl(url)).toBe(true);
  });

  it.each([
    ["udp://router.lan", /is not an IP address .*resolving its name would need plain DNS/],
    ["udp://", /no host/],
    ["tcp://1.2.3.4/dns", /no path, query or fragment/],
    ["tcp://1.2.3.4?x=1", /no path, query or fragment/],
    ["udp://1.2.3.4#name", /no path, query or fragment/],
    ["udp://user@1.2.3.4", /user info/],
    ["udp://fd00::1", /must be in brackets/],
    ["udp://[fd00::1", /missing \]/],
    ["udp://[fd00::1]x", /unexpected "x"/],
    ["udp://1.2.3.999", /is not an IP address/],
    ["tls://1.2.3.4", /scheme must be udp:\/\/ or tcp:\/\//],
  ])("refuses %s", (url, message) => {
    expect(() => parsePlainUrl(url)).toThrow(message);
  });

  it.each(["udp://1.2.3.4:0", "udp://1.2.3.4:65536", "tcp://1.2.3.4:x"])(
    "refuses the port of %s",
    (url) => {
      expect(() => parsePlainUrl(url)).toThrow(/port .* is not a number from 1 to 65535/);
    },
  );

  it("tells plain URLs from others", () => {
    expect(isPlainUrl("https://dns.example/dns-query")).toBe(false);
    expect(isPlainUrl("tls://1.1.1.1")).toBe(false);
  });
});
