/**
 * Configuration from the command line, the environment and a JSON file, parsed once into one
 * typed object. Precedence: command line > environment > file > defaults.
 *
 * @module
 */
import { canonicalName, ipv4Bytes, ipv6Bytes } from "../records/record.ts";
import { type Config, isConfig, type OptionName } from "./config.ts";
import { envName, OPTIONS, type OptionSpec } from "./options.ts";
import { messageOf } from "../errors/message_of.ts";
import { ConfigError } from "./error.ts";
import { suggestion } from "./help.ts";
import {
  checkCidrs,
  checkHeader,
  checkListSource,
  checkRedisUrl,
  checkSecret,
  checkUpstream,
  parseAddress,
  parseBootstrap,
  parseDuration,
  parseRoutes,
} from "./values.ts";

export type { Config, ListenAddress } from "./config.ts";
export { ConfigError } from "./error.ts";
export { helpText, suggestion } from "./help.ts";
export {
  checkCidrs,
  checkListSource,
  checkRedisUrl,
  checkSecret,
  checkUpstream,
  parseAddress,
  parseDuration,
  parseRoutes,
} from "./values.ts";

/** What the parser reads. The edge supplies these from the runtime. */
export interface ConfigSources {
  args: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Reads the `--config` file; throws if it cannot. */
  readTextFile?: (path: string) => string;
}

/**
 * The parse result: a config, or a request to print something and exit (`show`: the short
 * `--help`, every option with `--help=all`, or `--version`).
 */
export type ParseResult =
  | { help: true; show: "help" | "help-all" | "version" }
  | { help: false; config: Config };

type Raw = Map<string, { value: string | string[]; from: string }>;

const SPECS = new Map(OPTIONS.map((o) => [o.name, o]));
const BOOL_TRUE = new Set(["true", "1", "yes", "on"]);
const BOOL_FALSE = new Set(["false", "0", "no", "off"]);

/** What `--help`, `--help=all` or `--version` asks for, if an argument does. */
function showOf(arg: string): "help" | "help-all" | "version" | undefined {
  if (arg === "--help" || arg === "-h") return "help";
  if (arg === "--help=all") return "help-all";
  if (arg === "--version" || arg === "-V") return "version";
  return undefined;
}

function readArgs(
  args: readonly string[],
  raw: Raw,
): "help" | "help-all" | "version" | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    const show = showOf(arg);
    if (show) return show;
    if (!arg.startsWith("--")) {
      throw new ConfigError(arg, "unexpected argument (options start with --)");
    }
    let name = arg.slice(2);
    let value: string | undefined;
    const eq = name.indexOf("=");
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    let spec = SPECS.get(name);
    if (!spec && name.startsWith("no-") && SPECS.get(name.slice(3))?.kind === "bool") {
      spec = SPECS.get(name.slice(3))!;
      if (value !== undefined) throw new ConfigError(`--${name}`, "takes no value");
      value = "false";
    }
    if (!spec) throw new ConfigError(`--${name}`, `unknown option${suggestion(name, "--")}`);
    if (value === undefined) {
      if (spec.kind === "bool") {
        // `--x`, or `--x true|false` (and yes/no, on/off, 1/0) as the other forms take them.
        const next = args[i + 1]?.toLowerCase();
        value = next !== undefined && (BOOL_TRUE.has(next) || BOOL_FALSE.has(next))
          ? args[++i]
          : "true";
      } else if (i + 1 < args.length) value = args[++i];
      else throw new ConfigError(`--${name}`, "needs a value");
    }
    const key = `--${spec.name}`;
    if (spec.kind === "list") {
      const prev = raw.get(spec.name);
      const list = prev?.from === key ? (prev.value as string[]) : [];
      raw.set(spec.name, { value: list.concat(splitList(value)), from: key });
    } else {
      raw.set(spec.name, { value, from: key });
    }
  }
  return undefined;
}

function splitList(value: string): string[] {
  return value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
}

/** Every option's environment variable. */
const ENV_NAMES = new Set(OPTIONS.map((o) => envName(o.name)));

function readEnv(env: Readonly<Record<string, string | undefined>>, raw: Raw): void {
  for (const [name, value] of Object.entries(env)) {
    // A misspelt variable would otherwise be ignored without a word.
    if (name.startsWith("DOTBRIDGE_") && !ENV_NAMES.has(name) && value) {
      const key = name.slice("DOTBRIDGE_".length).toLowerCase();
      throw new ConfigError(name, `unknown variable${suggestion(key, "DOTBRIDGE_")}`);
    }
  }
  for (const spec of OPTIONS) {
    const name = envName(spec.name);
    const value = env[name];
    if (value === undefined || value === "") continue;
    raw.set(spec.name, { value: spec.kind === "list" ? splitList(value) : value, from: name });
  }
}

function readFile(path: string, text: string, raw: Raw): void {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(path, `not valid JSON: ${messageOf(e)}`);
  }
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new ConfigError(path, "must hold a JSON object of option names to values");
  }
  for (const [name, value] of Object.entries(data)) {
    const spec = SPECS.get(name);
    const from = `${path}: "${name}"`;
    if (!spec || name === "config") {
      throw new ConfigError(from, `unknown key${suggestion(name, "")}`);
    }
    if (spec.kind === "list") {
      const list = Array.isArray(value) ? value : [value];
      if (!list.every((v) => typeof v === "string")) throw new ConfigError(from, "must be strings");
      raw.set(name, { value: list as string[], from });
    } else if (["string", "number", "boolean"].includes(typeof value)) {
      raw.set(name, { value: String(value), from });
    } else {
      throw new ConfigError(from, "must be a string, number or boolean");
    }
  }
}

function convert(spec: OptionSpec, value: string | string[], from: string): unknown {
  if (Array.isArray(value)) return convertList(spec, value, from);
  const text = value;
  switch (spec.kind) {
    case "list":
      return convertList(spec, splitList(text), from);
    case "string":
      if (text === "") throw new ConfigError(from, "must not be empty");
      if (spec.format === "header") return checkHeader(text, from);
      if (spec.format === "redis-url") return checkRedisUrl(text, from);
      if (spec.format === "secret") return checkSecret(text, from);
      return text;
    case "bool":
      if (BOOL_TRUE.has(text.toLowerCase())) return true;
      if (BOOL_FALSE.has(text.toLowerCase())) return false;
      throw new ConfigError(from, `"${text}" is not true or false`);
    case "enum": {
      const hit = spec.choices!.find((c) => c.toLowerCase() === text.toLowerCase());
      if (!hit) throw new ConfigError(from, `"${text}" is not one of ${spec.choices!.join(", ")}`);
      return hit;
    }
    case "address": {
      if (spec.allowOff && text.trim().toLowerCase() === "off") return undefined;
      const address = parseAddress(text);
      if (!address) {
        throw new ConfigError(
          from,
          `"${text}" is not HOST:PORT with a port 0-65535 (0: any free port)`,
        );
      }
      return address;
    }
    case "int":
    case "duration": {
      if (spec.allowAuto && text.trim().toLowerCase() === "auto") return 0;
      const n = spec.kind === "int"
        ? (/^\d+$/.test(text.trim()) ? Number(text) : undefined)
        : parseDuration(text);
      if (n === undefined) {
        const what = spec.kind === "int"
          ? "a whole number"
          : /^\s*\d+(\.\d+)?\s*$/.test(text)
          ? "a duration: give its unit, e.g. 5s or 500ms (a bare number could be either)"
          : "a duration like 5s or 500ms";
        throw new ConfigError(from, `"${text}" is not ${what}`);
      }
      const unit = spec.kind === "duration" ? " ms" : "";
      if (spec.min !== undefined && n < spec.min) {
        throw new ConfigError(from, `must be at least ${spec.min}${unit}`);
      }
      if (spec.max !== undefined && n > spec.max) {
        throw new ConfigError(from, `must be at most ${spec.max}${unit}`);
      }
      return n;
    }
  }
}

/** A list key's items, checked by the key's format. */
function convertList(spec: OptionSpec, list: string[], from: string): unknown {
  switch (spec.format) {
    case "url":
      if (list.length === 0) throw new ConfigError(from, "needs at least one URL");
      return list.map((url) => checkUpstream(url, from));
    case "cidr":
      return checkCidrs(list, from);
    case "host-ip":
      return parseBootstrap(list, from);
    case "list-source":
      return list.map((source) => checkListSource(source, from));
    case "route":
      return parseRoutes(list, from);
    default:
      return list;
  }
}

/**
 * Parses the configuration.
 *
 * @throws {ConfigError} naming the key (`--cert`, `DOTBRIDGE_LISTEN`, `file.json: "listen"`)
 *
 * @example
 * ```ts
 * const result = parseConfig({ args: ["--listen", "0.0.0.0:853"], env: {} });
 * if (!result.help) console.log(result.config.listen.port); // 853
 * ```
 */
export function parseConfig(sources: ConfigSources): ParseResult {
  const cli: Raw = new Map();
  const show = readArgs(sources.args, cli);
  if (show) return { help: true, show };
  const env: Raw = new Map();
  readEnv(sources.env ?? {}, env);

  const raw: Raw = new Map();
  const configPath = cli.get("config") ?? env.get("config");
  if (configPath) {
    const path = configPath.value as string;
    let text: string;
    try {
      if (!sources.readTextFile) throw new Error("no file access");
      text = sources.readTextFile(path);
    } catch (e) {
      throw new ConfigError(configPath.from, `cannot read "${path}": ${messageOf(e)}`);
    }
    readFile(path, text, raw);
  }
  for (const [k, v] of env) raw.set(k, v);
  for (const [k, v] of cli) raw.set(k, v);

  const fromOf = (name: string) => raw.get(name)?.from ?? `--${name}`;
  const values = new Map<string, unknown>();
  for (const spec of OPTIONS) {
    const given = raw.get(spec.name);
    if (given) values.set(spec.name, convert(spec, given.value, given.from));
    else if (spec.default !== undefined) {
      const value = spec.kind === "list" ? splitList(spec.default) : spec.default;
      values.set(spec.name, convert(spec, value, `default of ${spec.name}`));
    } else if (spec.kind === "list") {
      values.set(spec.name, convert(spec, [], fromOf(spec.name)));
    }
  }
  for (const [name, compute] of Object.entries(COMPUTED)) {
    if (values.get(name) === undefined) values.set(name, compute(values));
  }

  const groups: Record<string, Record<string, unknown>> = {};
  const origin: Record<string, string> = {};
  for (const spec of OPTIONS) {
    origin[spec.name] = fromOf(spec.name);
    if (spec.group === undefined || spec.field === undefined) continue;
    (groups[spec.group] ??= {})[spec.field] = values.get(spec.name);
  }
  const config: unknown = { ...groups, origin };
  if (!isConfig(config)) throw new Error("option table and Config type disagree");
  checkTogether(config);
  return { help: false, config };
}

/** Keys computed from others when unset. */
const COMPUTED: Partial<Record<OptionName, (values: ReadonlyMap<string, unknown>) => unknown>> = {
  "rate-limit-burst": (values) => 2 * Number(values.get("rate-limit")),
  "connection-rate-burst": (values) => 2 * Number(values.get("connection-rate-limit")),
  "handshake-rate-burst": (values) => 2 * Number(values.get("handshake-rate-limit")),
};

/** Checks that span several keys; each error names the key to change. */
function checkTogether(config: Config): void {
  const { certificate, upstream, dot, resolver, origin } = config;
  if ((certificate.certFile === undefined) !== (certificate.keyFile === undefined)) {
    throw new ConfigError(
      certificate.certFile === undefined ? "--cert" : "--key",
      "--cert and --key go together",
    );
  }
  if (upstream.upstreamTransport === "fetch") {
    for (const url of upstream.upstreams) {
      if (/^(tls|quic|udp|tcp):/i.test(url)) continue;
      const host = new URL(url).hostname.toLowerCase();
      if (upstream.bootstrap[host]) {
        throw new ConfigError(
          origin.bootstrap,
          `${host}: a DoH upstream's bootstrap address needs --upstream-transport http2 ` +
            "(fetch always resolves names itself)",
        );
      }
    }
  }
  if (dot.dotServer === "native" && resolver.tenantDomain !== undefined) {
    throw new ConfigError(
      origin["dot-server"],
      `native has no SNI, so it cannot pick tenants by server name (${origin["tenant-domain"]}); ` +
        "use --dot-server node",
    );
  }
  if (dot.dotServer === "native" && dot.proxyProtocolFrom.length > 0) {
    throw new ConfigError(
      origin["dot-server"],
      "native starts TLS at accept, so it cannot read a PROXY protocol header first " +
        `(${origin["proxy-protocol-from"]}); use --dot-server node`,
    );
  }
  if (config.doh.trustedProxyHeader === "forwarded") {
    throw new ConfigError(
      origin["trusted-proxy-header"],
      "Forwarded (RFC 7239) is not read; have the proxy send X-Forwarded-For",
    );
  }
  checkDdr(resolver, origin);
  if (resolver.cacheRedisSecret !== undefined && resolver.cacheRedis === undefined) {
    throw new ConfigError(
      origin["cache-redis-secret"],
      "needs --cache-redis (it signs the entries of the shared cache)",
    );
  }
  for (const key of ["connection-rate-limit", "handshake-rate-limit"] as const) {
    const rate = key === "connection-rate-limit" ? dot.connectionRateLimit : dot.handshakeRateLimit;
    if (dot.dotServer === "native" && rate > 0) {
      throw new ConfigError(
        origin["dot-server"],
        `native does not apply --${key} (${origin[key]}); use --dot-server node`,
      );
    }
  }
}

/** Most DDR names and hints of each family: with three faces the answer stays under 40 KB. */
export const MAX_DDR_NAMES = 16;
export const MAX_DDR_HINTS = 8;

/** DDR's names must be DNS names, its hints addresses of their family, and hints need a name. */
function checkDdr(resolver: Config["resolver"], origin: Config["origin"]): void {
  const caps = [
    ["ddr-name", resolver.ddrNames, MAX_DDR_NAMES],
    ["ddr-ipv4-hint", resolver.ddrIpv4Hints, MAX_DDR_HINTS],
    ["ddr-ipv6-hint", resolver.ddrIpv6Hints, MAX_DDR_HINTS],
  ] as const;
  for (const [key, list, max] of caps) {
    if (list.length > max) {
      throw new ConfigError(origin[key], `at most ${max} (the answer must fit)`);
    }
  }
  for (const name of resolver.ddrNames) {
    if (!canonicalName(name) || !canonicalName(`_dns.${name}`)) {
      throw new ConfigError(origin["ddr-name"], `"${name}" is not a DNS name`);
    }
  }
  for (const ip of resolver.ddrIpv4Hints) {
    if (!ipv4Bytes(ip)) {
      throw new ConfigError(origin["ddr-ipv4-hint"], `"${ip}" is not an IPv4 address`);
    }
  }
  for (const ip of resolver.ddrIpv6Hints) {
    if (!ipv6Bytes(ip)) {
      throw new ConfigError(origin["ddr-ipv6-hint"], `"${ip}" is not an IPv6 address`);
    }
  }
  if (resolver.ddrNames.length === 0) {
    const hint = resolver.ddrIpv4Hints.length > 0
      ? "ddr-ipv4-hint"
      : resolver.ddrIpv6Hints.length > 0
      ? "ddr-ipv6-hint"
      : undefined;
    if (hint) throw new ConfigError(origin[hint], "needs --ddr-name (DDR is off without a name)");
  }
}
