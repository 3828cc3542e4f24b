/**
 * The plain DNS face's keys and routes by name in the configuration: defaults, the route
 * syntax from every source, and the one-line errors naming the key.
 *
 * @module
 */
import { describe, expect, it } from "vitest";
import { type Config, ConfigError, parseConfig, parseRoutes } from "../../src/config/parse.ts";
import { PRIVATE_RANGES } from "../../src/net/private_ranges.ts";

function config(args: string[], env: Record<string, string> = {}, file?: string): Config {
  const result = parseConfig({
    args: file ? ["--config", "f.json", ...args] : args,
    env,
    readTextFile: () => file ?? "{}",
  });
  if (result.help) throw new Error("unexpected help");
  return result.config;
}

function errorOf(args: string[], env: Record<string, string> = {}, file?: string): string {
  try {
    config(args, env, file);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error("expected a ConfigError");
}

describe("the plain DNS face's keys", () => {
  it("is off by default, answering only the local ranges when on, 1232-byte UDP answers, RRL on", () => {
    const c = config([]);
    expect(c.dns.listen).toBeUndefined();
    expect(c.dns.defaultAllow).toEqual(PRIVATE_RANGES);
    expect(c.dns.maxUdpSize).toBe(1232);
    expect(c.dns.rrlRate).toBe(200);
    expect(c.dns.rrlSlip).toBe(2);
    expect(c.upstream.routes).toEqual({});
  });

  it("reads them from the command line, the environment and the file", () => {
    expect(config(["--dns-listen", "0.0.0.0:53"]).dns.listen).toEqual({
      hostname: "0.0.0.0",
      port: 53,
    });
    expect(config([], { DOTBRIDGE_DNS_LISTEN: "[::]:5353" }).dns.listen).toEqual({
      hostname: "::",
      port: 5353,
    });
    const c = config(
      [],
      {},
      '{"dns-max-udp-size": 4096, "dns-rrl": 0, "dns-default-allow": ["10.0.0.0/8"]}',
    );
    expect(c.dns.maxUdpSize).toBe(4096);
    expect(c.dns.rrlRate).toBe(0);
    expect(c.dns.defaultAllow).toEqual(["10.0.0.0/8"]);
  });

  it.each([
    [["--dns-listen", "53"], /^--dns-listen: "53" is not HOST:PORT/],
    [["--dns-max-udp-size", "100"], /^--dns-max-udp-size: must be at least 512/],
    [["--dns-max-udp-size", "9000"], /^--dns-max-udp-size: must be at most 4096/],
    [["--dns-rrl-slip", "11"], /^--dns-rrl-slip: must be at most 10/],
    [["--dns-default-allow", "lan"], /^--dns-default-allow: "lan" is not an address or CIDR/],
  ])("refuses %j in one line naming the key", (args, message) => {
    expect(errorOf(args)).toMatch(message);
  });
});

describe("routes by name", () => {
  it("reads SUFFIX=URL, more URLs after commas, repeated flags, and canonical suffixes", () => {
    const c = config([
      "--route",
      "Lan.=udp://192.168.1.1,tcp://192.168.1.1",
      "--route",
      "168.192.in-addr.arpa=udp://192.168.1.1",
      "--route",
      "corp.example=tls://10.0.0.53?pin=n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=#dns.corp.example",
    ]);
    expect(c.upstream.routes).toEqual({
      lan: ["udp://192.168.1.1", "tcp://192.168.1.1"],
      "168.192.in-addr.arpa": ["udp://192.168.1.1"],
      "corp.example": [
        "tls://10.0.0.53?pin=n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=#dns.corp.example",
      ],
    });
  });

  it("reads them from the environment (one comma list) and the file (a list)", () => {
    expect(
      config([], { DOTBRIDGE_ROUTE: "lan=udp://10.0.0.1,home.arpa=udp://10.0.0.1,tcp://10.0.0.2" })
        .upstream.routes,
    ).toEqual({ lan: ["udp://10.0.0.1"], "home.arpa": ["udp://10.0.0.1", "tcp://10.0.0.2"] });
    expect(
      config([], {}, '{"route": ["lan=udp://10.0.0.1", "https://dns.example/dns-query"]}').upstream
        .routes,
    ).toEqual({ lan: ["udp://10.0.0.1", "https://dns.example/dns-query"] });
  });

  it.each([
    [["--route", "udp://10.0.0.1"], /^--route: "udp:\/\/10\.0\.0\.1" is not SUFFIX=UPSTREAM/],
    [["--route", "lan="], /^--route: "lan=" names no upstream/],
    [["--route", "=udp://10.0.0.1"], /^--route: "" is not a domain name suffix/],
    [["--route", ".=udp://10.0.0.1"], /is not a domain name suffix \(the root is --upstream's/],
    [["--route", "lan=udp://router.lan"], /^--route: .*is not an IP address/],
    [["--route", "lan=ftp://10.0.0.1"], /^--route: "ftp:\/\/10\.0\.0\.1" must be https:\/\//],
    [
      ["--route", "lan=udp://10.0.0.1", "--route", "LAN=udp://10.0.0.2"],
      /^--route: "lan" is routed twice/,
    ],
    [["--route", "a b=udp://10.0.0.1"], /"a b" is not a domain name suffix/],
  ])("refuses %j in one line naming the key", (args, message) => {
    expect(errorOf(args)).toMatch(message);
  });

  it("names the environment variable and the file key in errors", () => {
    expect(errorOf([], { DOTBRIDGE_ROUTE: "lan=udp://x" })).toMatch(/^DOTBRIDGE_ROUTE: /);
    expect(errorOf([], {}, '{"route": "lan"}')).toMatch(/^f\.json: "route": /);
  });

  it("parseRoutes takes the list form directly", () => {
    expect(parseRoutes(["lan=udp://10.0.0.1", "tcp://10.0.0.1"], "x")).toEqual({
      lan: ["udp://10.0.0.1", "tcp://10.0.0.1"],
    });
  });
});
