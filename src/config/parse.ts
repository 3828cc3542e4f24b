/**
 * Configuration from the command line, the environment and a JSON file, parsed once into one
 * typed object. Precedence: command line > environment > file > defaults.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { MIN_SECRET_BYTES } from "../cache/signer.ts";
import { canonicalName, ipv4Bytes, ipv6Bytes } from "../records/record.ts";
import { parseDoqUrl, parseDotUrl } from "../upstream/dot_url.ts";
import { isPlainUrl, parsePlainUrl } from "../upstream/plain_url.ts";
import { type Config, isConfig, type ListenAddress, type OptionName } from "./config.ts";
import { type ConfigGroup, envName, flagSyntax, OPTIONS, type OptionSpec } from "./options.ts";
import { messageOf } from "../errors/message_of.ts";

export type { Config, ListenAddress } from "./config.ts";

/** A configuration problem, naming the key. The edge prints `message` and exits 2. */
export class ConfigError extends Error {
  constructor(readonly key: string, problem: string) {
    super(`${key}: ${problem}`);
    this.name = "ConfigError";
  }
}

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

/** Edit distance (insertions, deletions, substitutions) between two short strings. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * ` (did you mean PREFIX<key>?)` for the known key nearest `name` (lower case, `_` as `-`), or
 * ` (see --help=all)` when none is near.
 */
export function suggestion(name: string, prefix: string): string {
  const wanted = name.toLowerCase().replaceAll("_", "-").replace(/^no-/, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const o of OPTIONS) {
    const d = distance(wanted, o.name);
    if (d < bestDistance) [best, bestDistance] = [o.name, d];
  }
  const near = best !== undefined &&
    (bestDistance <= Math.max(2, Math.floor(wanted.length / 4)) || best.startsWith(wanted));
  if (!near) return " (see --help=all)";
  return ` (did you mean ${prefix === "DOTBRIDGE_" ? envName(best!) : prefix + best}?)`;
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

/**
 * Parses a duration with its unit (`500ms`, `5s`, `2m`, `1h`, `1d`) into milliseconds. A bare
 * number has no unit and is refused (undefined): `3` could mean 3 ms or 3 s; only `0` needs none.
 */
export function parseDuration(text: string): number | undefined {
  const trimmed = text.trim();
  if (trimmed === "0") return 0;
  const m = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(trimmed);
  if (!m) return undefined;
  const scale = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2]]!;
  return Math.round(Number(m[1]) * scale);
}

/** Parses `host:port`, `[v6]:port` or `:port` (all interfaces). */
export function parseAddress(text: string): ListenAddress | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port > 65535) return undefined;
  return { hostname: m[1] ?? (m[2] || "0.0.0.0"), port };
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

function isIPv4(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text);
}

function isIPv6(text: string): boolean {
  return text.includes(":") && ipaddr.IPv6.isValid(text);
}

function parseBootstrap(list: readonly string[], from: string): Record<string, string> {
  const map: Record<string, string> = {};
  for (const entry of list) {
    const m = /^([^=\s]+)=([0-9a-fA-F:.]+)$/.exec(entry.trim());
    if (!m || !(isIPv4(m[2]) || isIPv6(m[2]))) {
      throw new ConfigError(from, `"${entry}" is not HOST=IP (an IPv4 or IPv6 address)`);
    }
    map[m[1].toLowerCase()] = m[2];
  }
  return map;
}

/**
 * Checks a list of addresses and CIDR ranges (`192.0.2.0/24`, `2001:db8::1`).
 *
 * @throws {ConfigError} naming `from` and the bad entry
 */
export function checkCidrs(list: readonly string[], from: string): string[] {
  for (const entry of list) {
    const [addr, bits, extra] = entry.split("/");
    const v4 = isIPv4(addr);
    const max = v4 ? 32 : 128;
    const okBits = bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
    if (extra !== undefined || !(v4 || isIPv6(addr)) || !okBits) {
      throw new ConfigError(from, `"${entry}" is not an address or CIDR range`);
    }
  }
  return [...list];
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

function checkHeader(text: string, from: string): string {
  if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(text)) {
    throw new ConfigError(from, `"${text}" is not a header name`);
  }
  return text.toLowerCase();
}

/**
 * Checks a Redis URL: `redis://` or `rediss://`, a host, a port if any, a database number if any,
 * nothing else. The message never repeats the URL (it may hold a password).
 *
 * @throws {ConfigError} naming `from`
 */
export function checkRedisUrl(url: string, from: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(from, "is not a URL (redis://host:port/db or rediss://...)");
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new ConfigError(from, `must be redis:// or rediss://, not ${u.protocol}//`);
  }
  if (!u.hostname) throw new ConfigError(from, "needs a host (redis://host:port/db)");
  if (!/^\/?(\d{1,5})?$/.test(u.pathname) || u.search || u.hash) {
    throw new ConfigError(from, "the path must be a database number (redis://host:port/0)");
  }
  return url;
}

/**
 * Checks a secret's length (UTF-8 bytes). The message gives the length, never the text.
 *
 * @throws {ConfigError} naming `from`
 */
export function checkSecret(text: string, from: string): string {
  const bytes = new TextEncoder().encode(text).length;
  if (bytes < MIN_SECRET_BYTES) {
    throw new ConfigError(
      from,
      `must be at least ${MIN_SECRET_BYTES} bytes, not ${bytes} (make one with: ` +
        "openssl rand -base64 32)",
    );
  }
  return text;
}

/**
 * Checks a blocklist or allowlist source: an `https://` URL (`http://` only on loopback, as a
 * list fetched in the clear could be altered on the way), or else a file path. The message
 * never repeats the URL's query (it may hold a token).
 *
 * @throws {ConfigError} naming `from`
 */
export function checkListSource(source: string, from: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(source)) return source;
  let u: URL;
  try {
    u = new URL(source);
  } catch {
    throw new ConfigError(from, "is not a URL (https://host/path) or a file path");
  }
  const loopback = u.hostname === "localhost" || u.hostname === "127.0.0.1" ||
    u.hostname === "[::1]";
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw new ConfigError(
      from,
      `"${u.protocol}//${u.host}" must be https:// (http:// only on loopback) or a file path`,
    );
  }
  return source;
}

/**
 * Parses routes by name: items `SUFFIX=URL`, each item without `SUFFIX=` (no `=` before any `:`
 * or `/`) adding a URL to the route before it, so `lan=udp://10.0.0.1,tcp://10.0.0.1` is one
 * route with two upstreams. Suffixes are DNS names (lower-cased, no final dot), each given once;
 * every URL is checked as `--upstream` checks it.
 *
 * @throws {ConfigError} naming `from`
 *
 * @example
 * ```ts
 * parseRoutes(["lan=udp://192.168.1.1", "168.192.in-addr.arpa=udp://192.168.1.1"], "--route");
 * // { lan: ["udp://192.168.1.1"], "168.192.in-addr.arpa": ["udp://192.168.1.1"] }
 * ```
 */
export function parseRoutes(
  list: readonly string[],
  from: string,
): Record<string, readonly string[]> {
  const routes: Record<string, string[]> = {};
  let current: string[] | undefined;
  for (const item of list) {
    const m = /^([^=:/]*)=(.*)$/.exec(item.trim());
    if (!m) {
      if (!current) {
        throw new ConfigError(
          from,
          `"${item}" is not SUFFIX=UPSTREAM (e.g. lan=udp://192.168.1.1)`,
        );
      }
      current.push(checkUpstream(item.trim(), from));
      continue;
    }
    const suffix = canonicalName(m[1].trim());
    if (!suffix) {
      throw new ConfigError(
        from,
        `"${m[1]}" is not a domain name suffix (the root is --upstream's, not a route's)`,
      );
    }
    if (Object.hasOwn(routes, suffix)) {
      throw new ConfigError(from, `"${suffix}" is routed twice (list every upstream in one route)`);
    }
    const url = m[2].trim();
    if (!url) throw new ConfigError(from, `"${item}" names no upstream`);
    current = routes[suffix] = [checkUpstream(url, from)];
  }
  return routes;
}

/**
 * Checks one upstream URL: `https://`, `tls://` (RFC 8310 form), `quic://` (RFC 9250),
 * `udp://` or `tcp://` (plain DNS, by IP address), or `http://` on loopback.
 *
 * @throws {ConfigError} naming `from`
 */
export function checkUpstream(url: string, from: string): string {
  if (isPlainUrl(url)) {
    try {
      parsePlainUrl(url);
    } catch (e) {
      throw new ConfigError(from, messageOf(e));
    }
    return url;
  }
  if (/^tls:/i.test(url)) {
    try {
      parseDotUrl(url);
    } catch (e) {
      throw new ConfigError(from, messageOf(e));
    }
    return url;
  }
  if (/^quic:/i.test(url)) {
    try {
      parseDoqUrl(url);
    } catch (e) {
      throw new ConfigError(from, messageOf(e));
    }
    return url;
  }
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(from, `"${url}" is not a URL`);
  }
  const loopback = u.hostname === "localhost" || u.hostname === "127.0.0.1" ||
    u.hostname === "[::1]";
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw new ConfigError(
      from,
      `"${u.protocol}//${u.host}" must be https://, tls://, quic://, udp:// or tcp:// ` +
        "(http:// only on loopback)",
    );
  }
  if (u.hash) throw new ConfigError(from, `a DoH URL has no #fragment`);
  return url;
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

/** What each group of options is about, in `--help` order. */
const GROUP_TITLES: Readonly<Record<ConfigGroup, string>> = {
  certificate: "Certificate",
  dot: "DoT face (and the connection limits every face shares)",
  doh: "DoH face",
  dns: "Plain DNS face (UDP and TCP)",
  upstream: "Upstreams and routes",
  resolver: "Resolver policy: cache, ACL, rate limit, tenants, local records, blocklists, DDR",
  log: "Logs, query log and dnstap",
  metrics: "Metrics, readiness and the status page",
  runtime: "Process",
};

/** The options the short `--help` lists, by group. */
const COMMON: readonly string[] = [
  "config",
  "cert",
  "key",
  "listen",
  "http-listen",
  "doq-listen",
  "dns-listen",
  "upstream",
  "upstream-strategy",
  "route",
  "cache",
  "allow",
  "tenants",
  "local-records",
  "blocklist",
  "allowlist",
  "log-level",
  "query-log",
  "metrics-listen",
  "threads",
];

const EXAMPLES = [
  ["dotbridge", "DoT on 127.0.0.1:8853 and DoH on :8443, a development certificate"],
  [
    "dotbridge --cert fullchain.pem --key privkey.pem --listen 0.0.0.0:853 --http-listen 0.0.0.0:443",
    "production faces with your certificate",
  ],
  [
    "dotbridge --dns-listen 0.0.0.0:53 --route lan=udp://192.168.1.1 --blocklist /etc/ads.txt",
    "a LAN's resolver: plain DNS, the router for lan., a blocklist",
  ],
  ["dotbridge --config /etc/dotbridge/dotbridge.json", "every option from a JSON file"],
] as const;

/**
 * A help text's first clause, for the short `--help`: up to its first `; ` (or a `: ` after a
 * dozen characters) outside parentheses, without the parenthesised parts, at most 70 characters.
 */
function firstClause(help: string): string {
  let depth = 0;
  let end = help.length;
  for (let i = 0; i < help.length; i++) {
    const c = help[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (depth === 0 && help[i + 1] === " " && (c === ";" || (c === ":" && i >= 12))) {
      end = i;
      break;
    }
  }
  const clause = strip(help.slice(0, end));
  return clause.length <= 70 ? clause : `${clause.slice(0, clause.lastIndexOf(" ", 68))} …`;
}

/** `text` without its parenthesised parts. */
function strip(text: string): string {
  return text.replace(/\s*\([^()]*(\([^()]*\)[^()]*)*\)/g, "").trim();
}

function optionBlock(o: OptionSpec): string[] {
  let detail = `      ${o.help}`;
  if (o.choices) detail += ` (${o.choices.join(" | ")})`;
  const dflt = o.default !== undefined ? `default: ${o.default}; ` : "";
  const negated = o.kind === "bool" ? `; --no-${o.name}` : "";
  return [`  ${flagSyntax(o)}`, detail, `      ${dflt}env: ${envName(o.name)}${negated}`];
}

/**
 * The `--help` text: usage, examples and the common options by group (`all`: every option, by
 * group, with its default and environment variable, as `--help=all` prints it).
 *
 * @example
 * ```ts
 * console.log(helpText("dotbridge", true));
 * ```
 */
export function helpText(program = "dotbridge", all = false): string {
  const lines = [
    `Usage: ${program} [options]`,
    "",
    "Bridges encrypted DNS both ways: DoT, DoH, DoQ and plain DNS faces to DoH, DoT, DoQ and",
    "plain DNS upstreams, through one resolver (cache, ACL, tenants, local records, blocklists).",
    "",
    "Examples:",
    ...EXAMPLES.flatMap(([command, what]) => [`  ${command}`, `      ${what}`]),
    "",
    "Every option is also an environment variable (DOTBRIDGE_LISTEN for --listen) and a key of",
    "the --config file; the command line wins, then the environment, then the file. Booleans take",
    "--x, --no-x, --x=false or --x false. Durations need a unit: 500ms, 5s, 2m, 1h, 1d.",
    "",
  ];
  const groups = Object.keys(GROUP_TITLES) as ConfigGroup[];
  if (!all) {
    for (const group of [undefined, ...groups]) {
      const names = OPTIONS.filter((o) => o.group === group && COMMON.includes(o.name));
      if (names.length === 0) continue;
      lines.push(group ? `${GROUP_TITLES[group]}:` : "General:");
      for (const o of names) lines.push(`  ${flagSyntax(o).padEnd(30)} ${firstClause(o.help)}`);
      lines.push("");
    }
    lines.push(
      `${OPTIONS.length} options in all: ${program} --help=all`,
      `  ${"--version".padEnd(30)} print the version and exit`,
    );
    return lines.join("\n");
  }
  for (const group of [undefined, ...groups]) {
    const options = OPTIONS.filter((o) => o.group === group);
    if (options.length === 0) continue;
    lines.push(group ? `${GROUP_TITLES[group]}:` : "General:");
    for (const o of options) lines.push(...optionBlock(o));
    lines.push("");
  }
  lines.push(
    "  --help, --help=all",
    "      the common options, or all of them",
    "  --version",
    "      print the version and exit",
  );
  return lines.join("\n");
}
