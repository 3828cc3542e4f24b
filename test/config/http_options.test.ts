import { describe, expect, it } from "vitest";
import { type Config, ConfigError, helpText, parseConfig } from "../../src/config/parse.ts";

function config(args: string[], env: Record<string, string> = {}, file?: string): Config {
  const result = parseConfig({ args, env, readTextFile: () => file ?? "{}" });
  if (result.help) throw new Error("unexpected --help");
  return result.config;
}

function configError(args: string[], env: Record<string, string> = {}): ConfigError {
  try {
    config(args, env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

describe("config: the DoH face keys", () => {
  it("defaults: HTTPS on 127.0.0.1:8443, JSON API on, no trusted proxy header", () => {
    const c = config([]);
    expect(c.doh.httpListen).toEqual({ hostname: "127.0.0.1", port: 8443 });
    expect(c.doh.httpTls).toBe(true);
    expect(c.doh.jsonApi).toBe(true);
    expect(c.doh.trustedProxyHeader).toBeUndefined();
  });

  it.each([
    ["--http-listen", "[::1]:443", { hostname: "::1", port: 443 }],
    ["--http-listen", ":8080", { hostname: "0.0.0.0", port: 8080 }],
    ["--http-listen", "127.0.0.1:0", { hostname: "127.0.0.1", port: 0 }],
  ])("%s %s", (flag, value, expected) => {
    expect(config([flag, value]).doh.httpListen).toEqual(expected);
  });

  it.each(["off", "OFF", " off "])("--http-listen %j disables the HTTP face", (value) => {
    expect(config(["--http-listen", value]).doh.httpListen).toBeUndefined();
  });

  it("does not accept off for --listen (DoT cannot be disabled)", () => {
    expect(configError(["--listen", "off"]).key).toBe("--listen");
  });

  it("reads the keys from the environment and a config file", () => {
    const fromEnv = config([], {
      DOTBRIDGE_HTTP_LISTEN: "off",
      DOTBRIDGE_HTTP_TLS: "false",
      DOTBRIDGE_JSON_API: "0",
      DOTBRIDGE_TRUSTED_PROXY_HEADER: "X-Forwarded-For",
    });
    expect(fromEnv.doh.httpListen).toBeUndefined();
    expect(fromEnv.doh.httpTls).toBe(false);
    expect(fromEnv.doh.jsonApi).toBe(false);
    expect(fromEnv.doh.trustedProxyHeader).toBe("x-forwarded-for");

    const fromFile = config(
      ["--config", "f.json"],
      {},
      JSON.stringify({ "http-listen": "0.0.0.0:443", "http-tls": false, "json-api": false }),
    );
    expect(fromFile.doh.httpListen).toEqual({ hostname: "0.0.0.0", port: 443 });
    expect(fromFile.doh.httpTls).toBe(false);
    expect(fromFile.doh.jsonApi).toBe(false);
  });

  it("takes --no-http-tls, --http-tls=false and --no-json-api", () => {
    expect(config(["--no-http-tls"]).doh.httpTls).toBe(false);
    expect(config(["--http-tls=false"]).doh.httpTls).toBe(false);
    expect(config(["--no-json-api"]).doh.jsonApi).toBe(false);
  });

  it("trusts a proxy header only from loopback unless --trusted-proxy-from says otherwise", () => {
    expect(config([]).doh.trustedProxyFrom).toEqual(["127.0.0.0/8", "::1"]);
    expect(
      config(["--trusted-proxy-from", "10.0.0.0/24", "--trusted-proxy-from", "2001:db8::7"]).doh
        .trustedProxyFrom,
    ).toEqual(["10.0.0.0/24", "2001:db8::7"]);
  });

  it("lower-cases the trusted proxy header", () => {
    expect(config(["--trusted-proxy-header", "X-Real-IP"]).doh.trustedProxyHeader).toBe(
      "x-real-ip",
    );
  });

  const bad: { what: string; args: string[]; env?: Record<string, string>; key: string }[] = [
    { what: "a bad --http-listen", args: ["--http-listen", "nowhere"], key: "--http-listen" },
    { what: "a bad --http-tls", args: ["--http-tls=maybe"], key: "--http-tls" },
    { what: "a bad --json-api", args: ["--json-api=2"], key: "--json-api" },
    {
      what: "a header name with a space",
      args: ["--trusted-proxy-header", "x forwarded"],
      key: "--trusted-proxy-header",
    },
    {
      what: "a header name with a colon, from the environment",
      args: [],
      env: { DOTBRIDGE_TRUSTED_PROXY_HEADER: "x-real-ip:" },
      key: "DOTBRIDGE_TRUSTED_PROXY_HEADER",
    },
    {
      what: "a --trusted-proxy-from that is not a range",
      args: ["--trusted-proxy-from", "10.0.0.0/33"],
      key: "--trusted-proxy-from",
    },
    {
      what: "the Forwarded header, which is not read",
      args: ["--trusted-proxy-header", "Forwarded"],
      key: "--trusted-proxy-header",
    },
    {
      what: "an empty header name",
      args: ["--trusted-proxy-header="],
      key: "--trusted-proxy-header",
    },
  ];
  it.each(bad)("rejects $what, naming $key", ({ args, env, key }) => {
    const e = configError(args, env);
    expect(e.key).toBe(key);
    expect(e.message.startsWith(`${key}: `)).toBe(true);
  });

  it("lists the keys in --help", () => {
    const help = helpText("dotbridge", true);
    for (
      const key of [
        "--http-listen HOST:PORT|off",
        "--http-tls",
        "--trusted-proxy-header",
        "--trusted-proxy-from CIDR",
        "--json-api",
      ]
    ) {
      expect(help).toContain(key);
    }
    expect(help).toContain("DOTBRIDGE_HTTP_LISTEN");
  });
});
