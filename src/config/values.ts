/**
 * The checks and conversions of single values: durations, addresses, CIDR lists, header names,
 * Redis URLs, secrets, list sources, routes and upstream URLs. Each names the key it was given
 * (`from`) in its {@linkcode ConfigError}; the parser (`parse.ts`) and the tenants file
 * (`tenants.ts`) share them.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { MIN_SECRET_BYTES } from "../cache/signer.ts";
import { canonicalName } from "../records/record.ts";
import { parseDoqUrl, parseDotUrl } from "../upstream/dot_url.ts";
import { isPlainUrl, parsePlainUrl } from "../upstream/plain_url.ts";
import { messageOf } from "../errors/message_of.ts";
import type { ListenAddress } from "./config.ts";
import { ConfigError } from "./error.ts";

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

function isIPv4(text: string): boolean {
  return ipaddr.IPv4.isValidFourPartDecimal(text);
}

function isIPv6(text: string): boolean {
  return text.includes(":") && ipaddr.IPv6.isValid(text);
}

export function parseBootstrap(list: readonly string[], from: string): Record<string, string> {
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

export function checkHeader(text: string, from: string): string {
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

/** An https:// URL, or an http:// one to this machine (a local test server). */
function httpsOrLoopbackHttp(u: URL): boolean {
  if (u.protocol === "https:") return true;
  const loopback = u.hostname === "localhost" || u.hostname === "127.0.0.1" ||
    u.hostname === "[::1]";
  return u.protocol === "http:" && loopback;
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
  if (!httpsOrLoopbackHttp(u)) {
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
  if (!httpsOrLoopbackHttp(u)) {
    throw new ConfigError(
      from,
      `"${u.protocol}//${u.host}" must be https://, tls://, quic://, udp:// or tcp:// ` +
        "(http:// only on loopback)",
    );
  }
  if (u.hash) throw new ConfigError(from, `a DoH URL has no #fragment`);
  return url;
}
