import { describe, expect, it } from "vitest";
import { DEFAULT_UPSTREAMS, envName, OPTIONS } from "../../src/config/options.ts";
import {
  type Config,
  ConfigError,
  type ConfigSources,
  helpText,
  parseAddress,
  parseConfig,
  parseDuration,
} from "../../src/config/parse.ts";

/** Parses and returns the config, failing the test if help was requested. */
function config(sources: Partial<ConfigSources>): Config {
  const result = parseConfig({ args: [], env: {}, ...sources });
  if (result.help) throw new Error("unexpected help");
  return result.config;
}

/** The ConfigError a parse throws (fails the test if it does not throw one). */
function configError(sources: Partial<ConfigSources>): ConfigError {
  try {
    parseConfig({ args: [], env: {}, ...sources });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).name).toBe("ConfigError");
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

function files(map: Record<string, string>): (path: string) => string {
  return (path) => {
    if (!(path in map)) throw new Error(`No such file: ${path}`);
    return map[path];
  };
}

describe("parseConfig defaults", () => {
  it("gives every documented default when nothing is set", () => {
    const c = config({});
    expect(c).toMatchObject({
      dot: {
        listen: { hostname: "127.0.0.1", port: 8853 },
        idleTimeoutMs: 10_000,
        handshakeTimeoutMs: 5_000,
        frameTimeoutMs: 5_000,
        maxConnections: 10_000,
        maxInFlight: 128,
        maxFrameSize: 65535,
      },
      upstream: {
        upstreams: DEFAULT_UPSTREAMS,
        upstreamStrategy: "failover",
        dohMethod: "POST",
        upstreamCooldownMs: 30_000,
        attemptTimeoutMs: 2_000,
      },
      resolver: { queryTimeoutMs: 5_000, keepClientSubnet: false },
      runtime: { shutdownGraceMs: 5_000 },
      certificate: { stateDir: ".dotbridge" },
      log: { logLevel: "info", logFormat: "logfmt", logQueries: false },
    });
    expect(c.certificate.certFile).toBeUndefined();
    expect(c.certificate.keyFile).toBeUndefined();
    expect(c.upstream.upstreamCaFiles).toEqual([]);
  });

  it("works without env or file access given", () => {
    const result = parseConfig({ args: ["--listen", ":853"] });
    expect(!result.help && result.config.dot.listen).toEqual({ hostname: "0.0.0.0", port: 853 });
  });

  it("returns help for --help and -h, whatever else is given", () => {
    expect(parseConfig({ args: ["--help"] })).toEqual({ help: true, show: "help" });
    expect(parseConfig({ args: ["--listen", "x", "-h"] })).toEqual({ help: true, show: "help" });
    expect(parseConfig({ args: ["-h", "--bogus"] })).toEqual({ help: true, show: "help" });
  });
});

describe("parseConfig precedence", () => {
  const file = files({
    "cfg.json": JSON.stringify({ listen: "127.0.0.1:1001", "max-inflight": 7 }),
  });

  it("takes the file over defaults", () => {
    const c = config({ args: ["--config", "cfg.json"], readTextFile: file });
    expect(c.dot.listen.port).toBe(1001);
    expect(c.dot.maxInFlight).toBe(7);
    expect(c.origin.listen).toBe('cfg.json: "listen"');
  });

  it("takes the environment over the file", () => {
    const c = config({
      args: ["--config", "cfg.json"],
      env: { DOTBRIDGE_LISTEN: "127.0.0.1:1002" },
      readTextFile: file,
    });
    expect(c.dot.listen.port).toBe(1002);
    expect(c.dot.maxInFlight).toBe(7);
    expect(c.origin.listen).toBe("DOTBRIDGE_LISTEN");
  });

  it("takes the command line over the environment and the file", () => {
    const c = config({
      args: ["--config", "cfg.json", "--listen=127.0.0.1:1003"],
      env: { DOTBRIDGE_LISTEN: "127.0.0.1:1002", DOTBRIDGE_MAX_INFLIGHT: "9" },
      readTextFile: file,
    });
    expect(c.dot.listen.port).toBe(1003);
    expect(c.dot.maxInFlight).toBe(9);
    expect(c.origin).toMatchObject({
      listen: "--listen",
      "max-inflight": "DOTBRIDGE_MAX_INFLIGHT",
    });
  });

  it("reads the config path from the environment too", () => {
    const c = config({ env: { DOTBRIDGE_CONFIG: "cfg.json" }, readTextFile: file });
    expect(c.dot.listen.port).toBe(1001);
  });

  it("lets the last of a repeated single-valued option win", () => {
    expect(config({ args: ["--max-inflight", "3", "--max-inflight", "4"] }).dot.maxInFlight).toBe(
      4,
    );
  });

  it("ignores empty environment variables", () => {
    expect(config({ env: { DOTBRIDGE_LISTEN: "" } }).dot.listen.port).toBe(8853);
  });
});

describe("parseConfig upstreams", () => {
  const cases: { name: string; sources: Partial<ConfigSources>; want: string[] }[] = [
    {
      name: "repeated --upstream",
      sources: { args: ["--upstream", "https://a.example/dns-query", "--upstream=https://b/q"] },
      want: ["https://a.example/dns-query", "https://b/q"],
    },
    {
      name: "comma-separated --upstream, spaces trimmed",
      sources: { args: ["--upstream", "https://a/q, https://b/q,,https://c/q"] },
      want: ["https://a/q", "https://b/q", "https://c/q"],
    },
    {
      name: "repeated and comma-separated mixed",
      sources: { args: ["--upstream", "https://a/q,https://b/q", "--upstream", "https://c/q"] },
      want: ["https://a/q", "https://b/q", "https://c/q"],
    },
    {
      name: "comma-separated environment variable",
      sources: { env: { DOTBRIDGE_UPSTREAM: "https://a/q,https://b/q" } },
      want: ["https://a/q", "https://b/q"],
    },
    {
      name: "the command line replacing (not adding to) the environment",
      sources: {
        args: ["--upstream", "https://cli/q"],
        env: { DOTBRIDGE_UPSTREAM: "https://env/q" },
      },
      want: ["https://cli/q"],
    },
    {
      name: "a JSON array in the file",
      sources: {
        args: ["--config", "f.json"],
        readTextFile: files({ "f.json": '{"upstream":["https://a/q","https://b/q"]}' }),
      },
      want: ["https://a/q", "https://b/q"],
    },
    {
      name: "a single string in the file",
      sources: {
        args: ["--config", "f.json"],
        readTextFile: files({ "f.json": '{"upstream":"https://a/q"}' }),
      },
      want: ["https://a/q"],
    },
    {
      name: "http:// on 127.0.0.1",
      sources: { args: ["--upstream", "http://127.0.0.1:8080/dns-query"] },
      want: ["http://127.0.0.1:8080/dns-query"],
    },
    {
      name: "http:// on localhost",
      sources: { args: ["--upstream", "http://localhost:8080/dns-query"] },
      want: ["http://localhost:8080/dns-query"],
    },
    {
      name: "http:// on [::1]",
      sources: { args: ["--upstream", "http://[::1]:8080/dns-query"] },
      want: ["http://[::1]:8080/dns-query"],
    },
  ];
  for (const c of cases) {
    it(`accepts ${c.name}`, () => {
      expect(config(c.sources).upstream.upstreams).toEqual(c.want);
    });
  }
});

describe("unknown keys", () => {
  it("suggest the nearest option on the command line, in the environment and in the file", () => {
    expect(configError({ args: ["--qury-timeout", "3s"] }).message).toBe(
      "--qury-timeout: unknown option (did you mean --query-timeout?)",
    );
    expect(configError({ args: ["--upstreams", "https://a/q"] }).message).toBe(
      "--upstreams: unknown option (did you mean --upstream?)",
    );
    expect(configError({ env: { DOTBRIDGE_UPSTREAMS: "https://a/q" } }).message).toBe(
      "DOTBRIDGE_UPSTREAMS: unknown variable (did you mean DOTBRIDGE_UPSTREAM?)",
    );
    expect(
      configError({
        args: ["--config", "f.json"],
        readTextFile: files({ "f.json": '{"cache_size": 5}' }),
      }).message,
    ).toBe('f.json: "cache_size": unknown key (did you mean cache-size?)');
    expect(configError({ args: ["--zzzzzzzzzzzz"] }).message).toBe(
      "--zzzzzzzzzzzz: unknown option (see --help=all)",
    );
  });

  it("leave other environment variables alone", () => {
    expect(config({ env: { HOME: "/root", DOTBRIDGE_LISTEN: "" } }).dot.listen.port).toBe(8853);
  });
});

describe("help and version", () => {
  it("asks for the short help, every option, or the version", () => {
    expect(parseConfig({ args: ["--help"] })).toEqual({ help: true, show: "help" });
    expect(parseConfig({ args: ["--listen", "x", "-h"] })).toEqual({ help: true, show: "help" });
    expect(parseConfig({ args: ["--help=all"] })).toEqual({ help: true, show: "help-all" });
    expect(parseConfig({ args: ["--version"] })).toEqual({ help: true, show: "version" });
  });

  it("groups the short help by concern, with examples, and points at --help=all", () => {
    const text = helpText("dotbridge");
    expect(text).toContain("Examples:");
    expect(text).toContain("Upstreams and routes:");
    expect(text).toContain("--no-x");
    expect(text).toContain("dotbridge --help=all");
    expect(text.split("\n").length).toBeLessThan(80);
    expect(helpText("dotbridge", true).split("\n").length).toBeGreaterThan(200);
  });
});

describe("parseConfig booleans", () => {
  const cases: [args: string[], env: Record<string, string>, want: boolean][] = [
    [["--keep-client-subnet"], {}, true],
    [["--keep-client-subnet=false"], {}, false],
    [["--keep-client-subnet=yes"], {}, true],
    [["--keep-client-subnet=OFF"], {}, false],
    [["--no-keep-client-subnet"], { DOTBRIDGE_KEEP_CLIENT_SUBNET: "true" }, false],
    [[], { DOTBRIDGE_KEEP_CLIENT_SUBNET: "1" }, true],
    [[], { DOTBRIDGE_KEEP_CLIENT_SUBNET: "on" }, true],
    [["--keep-client-subnet", "--no-keep-client-subnet"], {}, false],
    // docs wrote `--http-tls false`: the value as a separate word, as other options take theirs.
    [["--keep-client-subnet", "false"], {}, false],
    [["--keep-client-subnet", "true"], {}, true],
    [["--keep-client-subnet", "no"], { DOTBRIDGE_KEEP_CLIENT_SUBNET: "true" }, false],
  ];
  for (const [args, env, want] of cases) {
    it(`reads ${JSON.stringify(args)} ${JSON.stringify(env)} as ${want}`, () => {
      expect(config({ args, env }).resolver.keepClientSubnet).toBe(want);
    });
  }

  it("does not swallow the next argument after a bare bool flag", () => {
    const c = config({ args: ["--log-queries", "--listen", "127.0.0.1:1"] });
    expect(c.log.logQueries).toBe(true);
    expect(c.dot.listen.port).toBe(1);
  });

  it("reads JSON booleans in the file", () => {
    const c = config({
      args: ["--config", "f.json"],
      readTextFile: files({ "f.json": '{"log-queries": true, "keep-client-subnet": false}' }),
    });
    expect(c.log.logQueries).toBe(true);
    expect(c.resolver.keepClientSubnet).toBe(false);
  });
});

describe("durations", () => {
  const cases: [text: string, ms: number | undefined][] = [
    ["5s", 5_000],
    ["500ms", 500],
    ["2m", 120_000],
    ["1h", 3_600_000],
    ["250", undefined], // a bare number: ms or s? It needs its unit
    ["1.5", undefined],
    ["1.5s", 1_500],
    [" 3s ", 3_000],
    ["0", 0],
    ["5 s", 5_000],
    ["s", undefined],
    ["-5s", undefined],
    ["5d", 432_000_000],
    ["1d", 86_400_000],
    ["0.5d", 43_200_000],
    ["5w", undefined],
    ["five", undefined],
    ["", undefined],
  ];
  for (const [text, ms] of cases) {
    it(`parseDuration(${JSON.stringify(text)}) is ${ms}`, () => {
      expect(parseDuration(text)).toBe(ms);
    });
  }

  it("applies to every duration option, from every source", () => {
    const c = config({
      args: ["--query-timeout", "2500ms", "--idle-timeout=2m"],
      env: { DOTBRIDGE_ATTEMPT_TIMEOUT: "750ms" },
    });
    expect(c.resolver.queryTimeoutMs).toBe(2500);
    expect(c.dot.idleTimeoutMs).toBe(120_000);
    expect(c.upstream.attemptTimeoutMs).toBe(750);
  });

  it("refuses a bare number from every source, in one line naming the key", () => {
    const why =
      "is not a duration: give its unit, e.g. 5s or 500ms (a bare number could be either)";
    expect(configError({ args: ["--query-timeout", "3"] }).message).toBe(
      `--query-timeout: "3" ${why}`,
    );
    expect(configError({ env: { DOTBRIDGE_IDLE_TIMEOUT: "10" } }).message).toBe(
      `DOTBRIDGE_IDLE_TIMEOUT: "10" ${why}`,
    );
    expect(
      configError({
        args: ["--config", "f.json"],
        readTextFile: files({ "f.json": '{"query-timeout": 3}' }),
      }).message,
    ).toBe(`f.json: "query-timeout": "3" ${why}`);
  });

  it("takes 0 without a unit", () => {
    const c = config({ args: ["--serve-stale", "0", "--health-check-interval=0"] });
    expect(c.resolver.serveStaleMs).toBe(0);
    expect(c.upstream.healthCheckIntervalMs).toBe(0);
  });

  it("takes days, as --serve-stale 1d in docs/configuration.md", () => {
    const c = config({
      args: ["--serve-stale", "1d", "--cache-max-ttl=2d"],
      env: { DOTBRIDGE_UPSTREAM_COOLDOWN: "0.5d" },
    });
    expect(c.resolver.serveStaleMs).toBe(86_400_000);
    expect(c.resolver.cacheMaxTtlMs).toBe(2 * 86_400_000);
    expect(c.upstream.upstreamCooldownMs).toBe(43_200_000);
  });

  it("still bounds a duration given in days", () => {
    expect(configError({ args: ["--query-timeout", "1d"] }).message).toBe(
      "--query-timeout: must be at most 60000 ms",
    );
  });
});

describe("parseAddress", () => {
  const cases: [text: string, want: { hostname: string; port: number } | undefined][] = [
    ["127.0.0.1:853", { hostname: "127.0.0.1", port: 853 }],
    ["0.0.0.0:1", { hostname: "0.0.0.0", port: 1 }],
    ["[::1]:8853", { hostname: "::1", port: 8853 }],
    ["[::]:853", { hostname: "::", port: 853 }],
    [":853", { hostname: "0.0.0.0", port: 853 }],
    ["localhost:65535", { hostname: "localhost", port: 65535 }],
    ["127.0.0.1", undefined],
    ["127.0.0.1:0", { hostname: "127.0.0.1", port: 0 }], // 0: any free port
    ["127.0.0.1:65536", undefined],
    ["::1:853", undefined],
    ["host:port", undefined],
  ];
  for (const [text, want] of cases) {
    it(`parses ${JSON.stringify(text)}`, () => {
      expect(parseAddress(text)).toEqual(want);
    });
  }
});

describe("parseConfig errors name the key as the user spelled it", () => {
  const readTextFile = files({
    "cfg.json": "{}",
    "bad.json": "{ listen: ",
    "array.json": "[1, 2]",
    "null.json": "null",
  });
  const cases: { name: string; sources: Partial<ConfigSources>; prefix: string; more?: RegExp }[] =
    [
      {
        name: "bad address on the command line",
        sources: { args: ["--listen", "nowhere"] },
        prefix: "--listen: ",
        more: /"nowhere" is not HOST:PORT/,
      },
      {
        name: "bad address with =",
        sources: { args: ["--listen=1.2.3.4:99999"] },
        prefix: "--listen: ",
      },
      {
        name: "bad address in the environment",
        sources: { env: { DOTBRIDGE_LISTEN: "nowhere" } },
        prefix: "DOTBRIDGE_LISTEN: ",
      },
      {
        name: "bad address in the file",
        sources: {
          args: ["--config", "cfg.json"],
          readTextFile: files({ "cfg.json": '{"listen": "nowhere"}' }),
        },
        prefix: 'cfg.json: "listen": ',
      },
      {
        name: "a value missing at the end",
        sources: { args: ["--listen"] },
        prefix: "--listen: ",
        more: /needs a value/,
      },
      {
        name: "an unknown option",
        sources: { args: ["--bogus", "1"] },
        prefix: "--bogus: ",
        more: /unknown option/,
      },
      {
        name: "--no- on a non-bool",
        sources: { args: ["--no-listen"] },
        prefix: "--no-listen: ",
        more: /unknown option/,
      },
      {
        name: "--no-x=value",
        sources: { args: ["--no-log-queries=true"] },
        prefix: "--no-log-queries: ",
        more: /takes no value/,
      },
      {
        name: "a positional argument",
        sources: { args: ["serve"] },
        prefix: "serve: ",
        more: /unexpected argument/,
      },
      {
        name: "a single-dash option",
        sources: { args: ["-listen"] },
        prefix: "-listen: ",
      },
      {
        name: "a bad bool",
        sources: { args: ["--log-queries=maybe"] },
        prefix: "--log-queries: ",
        more: /"maybe" is not true or false/,
      },
      {
        name: "a bad bool in the environment",
        sources: { env: { DOTBRIDGE_LOG_QUERIES: "2" } },
        prefix: "DOTBRIDGE_LOG_QUERIES: ",
      },
      {
        name: "a bad enum",
        sources: { args: ["--upstream-strategy", "random"] },
        prefix: "--upstream-strategy: ",
        more: /failover, round-robin/,
      },
      {
        name: "a bad int",
        sources: { args: ["--max-inflight", "12x"] },
        prefix: "--max-inflight: ",
        more: /not a whole number/,
      },
      {
        name: "a negative int",
        sources: { args: ["--max-connections", "-1"] },
        prefix: "--max-connections: ",
      },
      {
        name: "an int below its minimum",
        sources: { args: ["--max-frame-size", "11"] },
        prefix: "--max-frame-size: ",
        more: /at least 12$/,
      },
      {
        name: "an int above its maximum",
        sources: { env: { DOTBRIDGE_MAX_INFLIGHT: "65536" } },
        prefix: "DOTBRIDGE_MAX_INFLIGHT: ",
        more: /at most 65535$/,
      },
      {
        name: "a bad duration",
        sources: { args: ["--query-timeout", "soon"] },
        prefix: "--query-timeout: ",
        more: /duration like 5s/,
      },
      {
        name: "a duration below its minimum",
        sources: { args: ["--attempt-timeout", "0"] },
        prefix: "--attempt-timeout: ",
        more: /at least 1 ms/,
      },
      {
        name: "a duration above its maximum",
        sources: { args: ["--query-timeout", "2m"] },
        prefix: "--query-timeout: ",
        more: /at most 60000 ms/,
      },
      {
        name: "an empty string option",
        sources: { args: ["--state-dir="] },
        prefix: "--state-dir: ",
        more: /must not be empty/,
      },
      {
        name: "an unreadable config file",
        sources: { args: ["--config", "missing.json"], readTextFile },
        prefix: "--config: ",
        more: /cannot read "missing.json"/,
      },
      {
        name: "a config file named in the environment that cannot be read",
        sources: { env: { DOTBRIDGE_CONFIG: "missing.json" }, readTextFile },
        prefix: "DOTBRIDGE_CONFIG: ",
      },
      {
        name: "a config file without file access",
        sources: { args: ["--config", "cfg.json"] },
        prefix: "--config: ",
      },
      {
        name: "bad JSON",
        sources: { args: ["--config", "bad.json"], readTextFile },
        prefix: "bad.json: ",
        more: /not valid JSON/,
      },
      {
        name: "a JSON array",
        sources: { args: ["--config", "array.json"], readTextFile },
        prefix: "array.json: ",
        more: /JSON object/,
      },
      {
        name: "JSON null",
        sources: { args: ["--config", "null.json"], readTextFile },
        prefix: "null.json: ",
      },
      {
        name: "an unknown key in the file",
        sources: {
          args: ["--config", "cfg.json"],
          readTextFile: files({ "cfg.json": '{"lisen": "x"}' }),
        },
        prefix: 'cfg.json: "lisen": ',
        more: /unknown key/,
      },
      {
        name: "a nested config key in the file",
        sources: {
          args: ["--config", "cfg.json"],
          readTextFile: files({ "cfg.json": '{"config": "other.json"}' }),
        },
        prefix: 'cfg.json: "config": ',
      },
      {
        name: "an object value in the file",
        sources: {
          args: ["--config", "cfg.json"],
          readTextFile: files({ "cfg.json": '{"listen": {"port": 1}}' }),
        },
        prefix: 'cfg.json: "listen": ',
        more: /string, number or boolean/,
      },
      {
        name: "a non-string upstream in the file",
        sources: {
          args: ["--config", "cfg.json"],
          readTextFile: files({ "cfg.json": '{"upstream": ["https://a/q", 5]}' }),
        },
        prefix: 'cfg.json: "upstream": ',
        more: /must be strings/,
      },
      {
        name: "a bad value in the file",
        sources: {
          args: ["--config", "cfg.json"],
          readTextFile: files({ "cfg.json": '{"max-inflight": 0}' }),
        },
        prefix: 'cfg.json: "max-inflight": ',
      },
      {
        name: "--cert without --key",
        sources: { args: ["--cert", "c.pem"] },
        prefix: "--key: ",
        more: /go together/,
      },
      {
        name: "--key without --cert",
        sources: { args: ["--key", "k.pem"] },
        prefix: "--cert: ",
        more: /go together/,
      },
      {
        name: "an upstream that is not a URL",
        sources: { args: ["--upstream", "dns.example"] },
        prefix: "--upstream: ",
        more: /not a URL/,
      },
      {
        name: "an http:// upstream off loopback",
        sources: { args: ["--upstream", "http://dns.example/dns-query"] },
        prefix: "--upstream: ",
        more:
          /must be https:\/\/, tls:\/\/, quic:\/\/, udp:\/\/ or tcp:\/\/ \(http:\/\/ only on loopback\)/,
      },
      {
        name: "an http:// upstream on a LAN address, from the environment",
        sources: { env: { DOTBRIDGE_UPSTREAM: "http://192.168.1.1/dns-query" } },
        prefix: "DOTBRIDGE_UPSTREAM: ",
      },
      {
        name: "an http:// upstream from the file",
        sources: {
          args: ["--config", "cfg.json"],
          readTextFile: files({ "cfg.json": '{"upstream": ["http://dns.example/q"]}' }),
        },
        prefix: 'cfg.json: "upstream": ',
      },
      {
        name: "a non-http upstream scheme",
        sources: { args: ["--upstream", "ftp://1.1.1.1"] },
        prefix: "--upstream: ",
      },
      {
        name: "a quic:// upstream with an SPKI pin (Deno's QUIC client cannot check one)",
        sources: {
          args: [
            "--upstream",
            "quic://dns.example?pin=n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=",
          ],
        },
        prefix: "--upstream: ",
        more: /DoQ upstream .*SPKI pins are not supported on quic:\/\//,
      },
      {
        name: "an upstream with a fragment",
        sources: { args: ["--upstream", "https://dns.example/q#frag"] },
        prefix: "--upstream: ",
        more: /fragment/,
      },
      {
        name: "an empty upstream list",
        sources: { args: ["--upstream", ","] },
        prefix: "--upstream: ",
        more: /at least one URL/,
      },
    ];
  for (const c of cases) {
    it(`for ${c.name}`, () => {
      const e = configError(c.sources);
      expect(e.message.startsWith(c.prefix), e.message).toBe(true);
      expect(e.key).toBe(c.prefix.slice(0, -2));
      if (c.more) expect(e.message).toMatch(c.more);
    });
  }

  it("never prints the credentials of an upstream URL it rejects", () => {
    const e = configError({ args: ["--upstream", "http://user:s3cret@dns.example/q?token=abc"] });
    expect(e.message).not.toContain("s3cret");
    expect(e.message).not.toContain("token=abc");
    expect(e.message).toContain("dns.example");
  });
});

describe("helpText", () => {
  const text = helpText("dotbridge", true);

  it("mentions every option and its environment variable", () => {
    for (const o of OPTIONS) {
      expect(text).toContain(`--${o.name}`);
      expect(text).toContain(envName(o.name));
      expect(text).toContain(o.help);
    }
  });

  it("shows defaults and choices", () => {
    expect(text).toContain("default: 127.0.0.1:8853");
    expect(text).toContain("failover | round-robin");
    expect(text.startsWith("Usage: dotbridge [options]")).toBe(true);
  });

  it("derives environment names from keys", () => {
    expect(envName("upstream-strategy")).toBe("DOTBRIDGE_UPSTREAM_STRATEGY");
    expect(envName("listen")).toBe("DOTBRIDGE_LISTEN");
  });
});

describe("OPTIONS table", () => {
  it("has unique names and defaults that parse", () => {
    const names = OPTIONS.map((o) => o.name);
    expect(new Set(names).size).toBe(names.length);
    expect(() => config({})).not.toThrow();
  });

  it("maps every option to a Config field or origin entry", () => {
    const c = config({});
    for (const o of OPTIONS) expect(Reflect.get(c.origin, o.name)).toBeDefined();
  });
});

describe("parseConfig DoT upstreams", () => {
  it("accepts tls:// upstreams next to https:// ones", () => {
    const r = parseConfig({
      args: ["--upstream", "tls://1.1.1.1:853#cloudflare-dns.com", "--upstream", "https://a/q"],
    });
    if (r.help) throw new Error("help");
    expect(r.config.upstream.upstreams).toEqual([
      "tls://1.1.1.1:853#cloudflare-dns.com",
      "https://a/q",
    ]);
  });

  it("names the key for a bad tls:// upstream", () => {
    expect(() => parseConfig({ args: ["--upstream", "tls://1.1.1.1:99999"] })).toThrow(
      /^--upstream: /,
    );
  });
});

describe("parseConfig upstream transport", () => {
  it("defaults to http2 and accepts fetch", () => {
    const a = parseConfig({ args: [] });
    const b = parseConfig({ args: ["--upstream-transport", "fetch"] });
    if (a.help || b.help) throw new Error("help");
    expect(a.config.upstream.upstreamTransport).toBe("http2");
    expect(b.config.upstream.upstreamTransport).toBe("fetch");
  });

  it("refuses a DoH bootstrap address with fetch, naming --bootstrap", () => {
    expect(() =>
      parseConfig({
        args: [
          "--upstream",
          "https://dns.example/dns-query",
          "--bootstrap",
          "dns.example=192.0.2.1",
          "--upstream-transport",
          "fetch",
        ],
      })
    ).toThrow(/^--bootstrap: dns\.example: .*--upstream-transport http2/);
    const ok = parseConfig({
      args: [
        "--upstream",
        "https://dns.example/dns-query",
        "--bootstrap",
        "dns.example=192.0.2.1",
        "--upstream-transport",
        "http2",
      ],
    });
    expect(ok.help).toBe(false);
  });
});

describe("parseConfig --dot-server", () => {
  it("defaults to node; native comes from the flag, the environment or the file", () => {
    expect(config({}).dot.dotServer).toBe("node");
    expect(config({ args: ["--dot-server", "native"] }).dot.dotServer).toBe("native");
    expect(config({ env: { DOTBRIDGE_DOT_SERVER: "native" } }).dot.dotServer).toBe("native");
    const readTextFile = files({ "c.json": '{"dot-server":"native"}' });
    expect(config({ args: ["--config", "c.json"], readTextFile }).dot.dotServer).toBe("native");
  });

  it("refuses another value, naming the key as it was given", () => {
    expect(configError({ args: ["--dot-server", "rustls"] }).message).toBe(
      '--dot-server: "rustls" is not one of node, native',
    );
    expect(configError({ env: { DOTBRIDGE_DOT_SERVER: "deno" } }).key).toBe(
      "DOTBRIDGE_DOT_SERVER",
    );
  });

  it("refuses native with tenants chosen by SNI (--tenant-domain), in one line", () => {
    const e = configError({
      args: ["--dot-server", "native", "--tenants", "t.json", "--tenant-domain", "dot.example"],
    });
    expect(e.key).toBe("--dot-server");
    expect(e.message).toMatch(/^--dot-server: native has no SNI.*--tenant-domain/);
    expect(e.message).not.toContain("\n");
    // Tenants chosen by the EDNS option alone need no SNI.
    expect(config({ args: ["--dot-server", "native", "--tenants", "t.json"] }).dot.dotServer)
      .toBe("native");
    expect(config({ args: ["--tenant-domain", "dot.example"] }).dot.dotServer).toBe("node");
  });
});

describe("parseConfig PROXY protocol and connection rate limits", () => {
  it("reads --proxy-protocol-from as a CIDR list from flags, env and file", () => {
    expect(config({}).dot.proxyProtocolFrom).toEqual([]);
    expect(
      config({
        args: ["--proxy-protocol-from", "10.0.0.0/8,::1", "--proxy-protocol-from", "192.0.2.7"],
      })
        .dot.proxyProtocolFrom,
    ).toEqual(["10.0.0.0/8", "::1", "192.0.2.7"]);
    expect(config({ env: { DOTBRIDGE_PROXY_PROTOCOL_FROM: "10.1.0.0/16" } }).dot.proxyProtocolFrom)
      .toEqual(["10.1.0.0/16"]);
    const readTextFile = files({ "c.json": '{"proxy-protocol-from":["127.0.0.1"]}' });
    expect(config({ args: ["--config", "c.json"], readTextFile }).dot.proxyProtocolFrom)
      .toEqual(["127.0.0.1"]);
    expect(configError({ args: ["--proxy-protocol-from", "10.0.0.0/33"] }).message).toBe(
      '--proxy-protocol-from: "10.0.0.0/33" is not an address or CIDR range',
    );
  });

  it("defaults the rate limits off and their bursts to twice the rate", () => {
    const off = config({}).dot;
    expect([off.connectionRateLimit, off.handshakeRateLimit]).toEqual([0, 0]);
    const on =
      config({ args: ["--connection-rate-limit", "5", "--handshake-rate-limit", "3"] }).dot;
    expect([on.connectionRateBurst, on.handshakeRateBurst]).toEqual([10, 6]);
    expect(
      config({ args: ["--connection-rate-limit", "5", "--connection-rate-burst", "7"] }).dot
        .connectionRateBurst,
    ).toBe(7);
  });

  it("refuses them with --dot-server native, in one line naming the key", () => {
    const e = configError({
      args: ["--dot-server", "native", "--proxy-protocol-from", "10.0.0.1"],
    });
    expect(e.key).toBe("--dot-server");
    expect(e.message).toMatch(/^--dot-server: native starts TLS at accept.*--proxy-protocol-from/);
    expect(e.message).not.toContain("\n");
    const r = configError({ args: ["--dot-server", "native", "--handshake-rate-limit", "5"] });
    expect(r.message).toMatch(/--handshake-rate-limit/);
  });
});

describe("parseConfig --cache-redis", () => {
  it("is unset by default, with a 5 ms budget", () => {
    const c = config({});
    expect(c.resolver.cacheRedis).toBeUndefined();
    expect(c.resolver.cacheRedisBudgetMs).toBe(5);
  });

  it.each([
    "redis://127.0.0.1:6379/0",
    "rediss://user:secret@cache.example:6380/3",
    "redis://cache.example",
    "redis://[::1]:6379/1",
  ])("accepts %s", (url) => {
    expect(config({ args: ["--cache-redis", url] }).resolver.cacheRedis).toBe(url);
  });

  it("is read from the environment and the config file too", () => {
    expect(config({ env: { DOTBRIDGE_CACHE_REDIS: "redis://h:1/2" } }).resolver.cacheRedis)
      .toBe("redis://h:1/2");
    const c = config({
      args: ["--config", "c.json"],
      readTextFile: files({
        "c.json": '{"cache-redis": "rediss://h/0", "cache-redis-budget": "20ms"}',
      }),
    });
    expect(c.resolver.cacheRedis).toBe("rediss://h/0");
    expect(c.resolver.cacheRedisBudgetMs).toBe(20);
  });

  it.each([
    ["https://h/0", "--cache-redis: must be redis:// or rediss://, not https://"],
    ["nonsense", "--cache-redis: is not a URL (redis://host:port/db or rediss://...)"],
    ["redis://h/zero", "--cache-redis: the path must be a database number (redis://host:port/0)"],
    [
      "redis://h/0?tls=1",
      "--cache-redis: the path must be a database number (redis://host:port/0)",
    ],
  ])("refuses %s in one line naming the key", (url, message) => {
    expect(configError({ args: ["--cache-redis", url] }).message).toBe(message);
  });

  it("never repeats a URL that may hold a password", () => {
    const e = configError({ env: { DOTBRIDGE_CACHE_REDIS: "http://user:hunter2@h/0" } });
    expect(e.message).toMatch(/^DOTBRIDGE_CACHE_REDIS: /);
    expect(e.message).not.toContain("hunter2");
  });

  it("bounds the budget", () => {
    expect(configError({ args: ["--cache-redis-budget", "0"] }).message).toBe(
      "--cache-redis-budget: must be at least 1 ms",
    );
    expect(configError({ args: ["--cache-redis-budget", "2s"] }).message).toBe(
      "--cache-redis-budget: must be at most 1000 ms",
    );
  });
});

describe("parseConfig --cache-redis-secret", () => {
  const SECRET = "k".repeat(31) + "!"; // 32 bytes
  const REDIS = ["--cache-redis", "redis://h:6379/0"];

  it("is unset by default, and taken from the environment or the config file", () => {
    expect(config({}).resolver.cacheRedisSecret).toBeUndefined();
    expect(
      config({ args: REDIS, env: { DOTBRIDGE_CACHE_REDIS_SECRET: SECRET } }).resolver
        .cacheRedisSecret,
    ).toBe(SECRET);
    const c = config({
      args: ["--config", "c.json", ...REDIS],
      readTextFile: files({ "c.json": JSON.stringify({ "cache-redis-secret": SECRET }) }),
    });
    expect(c.resolver.cacheRedisSecret).toBe(SECRET);
  });

  it.each([
    [["--cache-redis-secret", "short secret"], {}, "--cache-redis-secret"],
    [[], { DOTBRIDGE_CACHE_REDIS_SECRET: "k".repeat(31) }, "DOTBRIDGE_CACHE_REDIS_SECRET"],
  ])("refuses one under 32 bytes, naming the key, never the secret", (args, env, key) => {
    const e = configError({ args: [...REDIS, ...args], env });
    expect(e.message).toMatch(new RegExp(`^${key}: must be at least 32 bytes, not \\d+`));
    expect(e.message).not.toContain("short secret");
    expect(e.message).not.toContain("k".repeat(8));
  });

  it("counts bytes, not characters", () => {
    expect(configError({ args: [...REDIS, "--cache-redis-secret", "é".repeat(15)] }).message)
      .toMatch(/not 30 /);
    expect(config({ args: [...REDIS, "--cache-redis-secret", "é".repeat(16)] })).toBeDefined();
  });

  it("needs --cache-redis", () => {
    expect(configError({ args: ["--cache-redis-secret", SECRET] }).message).toBe(
      "--cache-redis-secret: needs --cache-redis (it signs the entries of the shared cache)",
    );
  });
});

describe("parseConfig cache bounds", () => {
  it("defaults to 64 MiB in all and 16 KiB an answer", () => {
    const c = config({});
    expect(c.resolver.cacheMaxBytes).toBe(64 * 1024 * 1024);
    expect(c.resolver.cacheMaxEntryBytes).toBe(16_384);
  });

  it("bounds them", () => {
    expect(configError({ args: ["--cache-max-bytes", "1000"] }).message).toBe(
      "--cache-max-bytes: must be at least 65536",
    );
    expect(configError({ args: ["--cache-max-entry-bytes", "65536"] }).message).toBe(
      "--cache-max-entry-bytes: must be at most 65535",
    );
    expect(configError({ args: ["--cache-max-entry-bytes", "100"] }).message).toBe(
      "--cache-max-entry-bytes: must be at least 512",
    );
  });
});

describe("blocklist and allowlist options", () => {
  const config = (args: string[]) => {
    const r = parseConfig({ args, env: {} });
    if (r.help) throw new Error("help");
    return r.config;
  };

  it("defaults to no lists, NXDOMAIN, 60 s, a daily refresh, 64 MiB and 60 s", () => {
    const { resolver } = config([]);
    expect(resolver).toMatchObject({
      blocklists: [],
      allowlists: [],
      blockResponse: "nxdomain",
      blockTtlMs: 60_000,
      blocklistRefreshMs: 86_400_000,
      blocklistMaxBytes: 67_108_864,
      blocklistTimeoutMs: 60_000,
    });
  });

  it("repeats --blocklist and takes files, https:// URLs and http:// on loopback", () => {
    const { resolver } = config([
      "--blocklist",
      "/etc/ads.txt",
      "--blocklist=https://lists.example/hosts",
      "--allowlist",
      "http://127.0.0.1:8080/allow.txt",
    ]);
    expect(resolver.blocklists).toEqual(["/etc/ads.txt", "https://lists.example/hosts"]);
    expect(resolver.allowlists).toEqual(["http://127.0.0.1:8080/allow.txt"]);
  });

  it("refuses a list fetched in the clear from elsewhere, naming the key, not the query", () => {
    expect(() => config(["--blocklist", "http://lists.example/a?token=s3cret"])).toThrow(
      /^--blocklist: "http:\/\/lists\.example" must be https:\/\/ \(http:\/\/ only on loopback\)/,
    );
    expect(() => config(["--blocklist", "http://lists.example/a?token=s3cret"])).not.toThrow(
      /s3cret/,
    );
    expect(() => config(["--block-response", "drop"])).toThrow(/^--block-response: "drop"/);
    expect(() => config(["--blocklist-refresh", "10s"])).toThrow(/^--blocklist-refresh: must be/);
  });
});
