/**
 * Parsing of DoT upstream URLs, `tls://host[:port][?pin=BASE64[&pin=...]][#authname]`, and of
 * DoQ upstream URLs, `quic://host[:port][#authname]` (the same authority and name rules).
 *
 * @module
 */
import { canonicalIpv6, isIpv4, parsePort, splitAuthority } from "./authority.ts";

/** The DoT port (RFC 7858 §3.1). */
export const DOT_DEFAULT_PORT = 853;

/** What a DoT upstream URL says: where to connect and how to authenticate the server. */
export interface DotUrl {
  /** Name or address to connect to; an IPv6 address without brackets, names in lower case. */
  readonly hostname: string;
  readonly port: number;
  /**
   * The authentication domain name (RFC 8310 §2): the name the certificate must be valid for,
   * sent as SNI. The fragment when given, else the host itself.
   */
  readonly servername: string;
  /** SPKI pins (RFC 7858 §4.2), canonical base64 of 32-byte SHA-256 digests, no duplicates. */
  readonly pins: string[];
  /**
   * RFC 7858 §4.1 opportunistic privacy: encrypt but do not authenticate. Only when the URL says
   * `?opportunistic=1` explicitly; never combined with pins.
   */
  readonly opportunistic: boolean;
  /** `tls://host:port` plus `#authname` when it differs from the host: for logs and errors. */
  readonly display: string;
}

const LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

function isDnsName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  return s.split(".").every((label) => LABEL.test(label));
}

/** Removes user info so an error message never repeats a credential. */
function redact(url: string): string {
  const shown = url.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, "$1");
  return shown.length > 200 ? `${shown.slice(0, 200)}...` : shown;
}

/**
 * Normalises a host or authentication name: an IPv4 address, an IPv6 address (brackets
 * optional) in canonical form, or a DNS name in lower case without the final dot.
 */
function parseHost(raw: string, what: string, fail: (msg: string) => never): string {
  const bracketed = raw.startsWith("[") && raw.endsWith("]");
  if (bracketed || raw.includes(":")) {
    const v6 = canonicalIpv6(bracketed ? raw.slice(1, -1) : raw);
    if (v6 === undefined) fail(`${what} "${raw}" is not a valid IPv6 address`);
    return v6;
  }
  let name = raw.toLowerCase();
  if (name.endsWith(".") && name.length > 1) name = name.slice(0, -1);
  if (isIpv4(name)) return name;
  if (/^[\d.]+$/.test(name)) fail(`${what} "${raw}" is not a valid IPv4 address`);
  if (!isDnsName(name)) fail(`${what} "${raw}" is not a valid host name`);
  return name;
}

function decode(part: string, fail: (msg: string) => never): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return fail(`"${part}" has a bad percent-encoding`);
  }
}

/** Parses one pin to canonical base64, or explains what is wrong with it. */
function parsePin(value: string, url: string, label: string): string {
  let bytes: Uint8Array;
  try {
    bytes = Uint8Array.fromBase64(value);
  } catch {
    throw new TypeError(`${label} upstream "${url}": pin "${value}" is not valid base64`);
  }
  if (bytes.length !== 32) {
    throw new RangeError(
      `${label} upstream "${url}": pin "${value}" is ${bytes.length} bytes; a SHA-256 SPKI pin is 32`,
    );
  }
  return bytes.toBase64();
}

/** `host` as it appears in a URL: IPv6 addresses in brackets. */
export function urlHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

/**
 * Parses a DoT upstream URL.
 *
 * - `tls://dns.example`: port 853, the certificate must be valid for `dns.example`.
 * - `tls://1.1.1.1:853#cloudflare-dns.com`: connect to the address, authenticate the name.
 * - `tls://[2606:4700::1111]#cloudflare-dns.com`: IPv6 in brackets.
 * - `?pin=BASE64` (repeatable): the server's SPKI must match one of these (RFC 7858 §4.2).
 *   Write `+` as is or as `%2B`; it is never read as a space.
 * - `?opportunistic=1`: RFC 7858 §4.1, no authentication at all. Only when asked for.
 *
 * @throws {TypeError} for a malformed URL: another scheme, user info, a path, no host, an
 *   invalid host or authentication name, bad base64 in a pin, an unknown parameter, or pins
 *   together with opportunistic mode
 * @throws {RangeError} for a port outside 1-65535 or a pin that is not 32 bytes
 *
 * @example
 * ```ts
 * const u = parseDotUrl("tls://1.1.1.1#cloudflare-dns.com");
 * // { hostname: "1.1.1.1", port: 853, servername: "cloudflare-dns.com", pins: [],
 * //   opportunistic: false, display: "tls://1.1.1.1:853#cloudflare-dns.com" }
 * ```
 */
export function parseDotUrl(url: string): DotUrl {
  return parseSecureUrl(url, "tls", "DoT");
}

/**
 * Parses a DoQ upstream URL (RFC 9250): `quic://host[:port][#authname]`, port 853 by default,
 * the same host and authentication-name rules as {@linkcode parseDotUrl}.
 *
 * SPKI pins (`?pin=`) and `?opportunistic=` are refused: Deno's QUIC client neither exposes the
 * server's certificate (so a pin cannot be checked) nor skips verification. The certificate must
 * chain to the system roots or `--upstream-ca`, for the authentication name.
 *
 * @throws {TypeError} for a malformed URL, as {@linkcode parseDotUrl}, and for any parameter
 * @throws {RangeError} for a port outside 1-65535
 *
 * @example
 * ```ts
 * parseDoqUrl("quic://dns.adguard-dns.com").display; // "quic://dns.adguard-dns.com:853"
 * ```
 */
export function parseDoqUrl(url: string): DotUrl {
  return parseSecureUrl(url, "quic", "DoQ");
}

function parseSecureUrl(url: string, scheme: "tls" | "quic", label: string): DotUrl {
  if (typeof url !== "string") throw new TypeError(`${label} upstream URL must be a string`);
  const shown = redact(url);
  const fail: (msg: string) => never = (msg) => {
    throw new TypeError(`${label} upstream "${shown}": ${msg}`);
  };
  if (url.slice(0, scheme.length + 3).toLowerCase() !== `${scheme}://`) {
    fail(`scheme must be ${scheme}://`);
  }
  let rest = url.slice(scheme.length + 3);

  let fragment: string | undefined;
  const hashAt = rest.indexOf("#");
  if (hashAt >= 0) {
    fragment = rest.slice(hashAt + 1);
    rest = rest.slice(0, hashAt);
  }
  let query = "";
  const queryAt = rest.indexOf("?");
  if (queryAt >= 0) {
    query = rest.slice(queryAt + 1);
    rest = rest.slice(0, queryAt);
  }
  const slashAt = rest.indexOf("/");
  const authority = slashAt >= 0 ? rest.slice(0, slashAt) : rest;
  if (slashAt >= 0 && rest.slice(slashAt) !== "/") fail(`a ${label} URL has no path`);
  if (authority.includes("@")) fail(`user info is not allowed in a ${label} URL`);
  if (authority === "") fail("no host");

  const { host: hostPart, port: portPart } = splitAuthority(
    authority,
    `${scheme}://[2001:db8::1]:853`,
    fail,
  );
  if (hostPart === "" || hostPart === "[]") fail("no host");
  const hostname = parseHost(hostPart, "host", fail);

  const port = parsePort(portPart, DOT_DEFAULT_PORT, `${label} upstream "${shown}"`);

  const pins: string[] = [];
  let opportunistic = false;
  for (const pair of query.split("&")) {
    if (pair === "") continue;
    const eq = pair.indexOf("=");
    const key = decode(eq >= 0 ? pair.slice(0, eq) : pair, fail);
    const value = eq >= 0 ? decode(pair.slice(eq + 1), fail) : "";
    if (scheme === "quic") {
      if (key === "pin") {
        fail(
          "SPKI pins are not supported on quic:// upstreams (Deno's QUIC client does not expose " +
            "the server's certificate); trust the server's CA with --upstream-ca, or use tls:// " +
            "with ?pin=",
        );
      }
      fail(`unknown parameter "${key}" (a quic:// URL takes none)`);
    }
    if (key === "pin") {
      const pin = parsePin(value, shown, label);
      if (!pins.includes(pin)) pins.push(pin);
    } else if (key === "opportunistic") {
      const v = value.toLowerCase();
      if (v === "" || v === "1" || v === "true" || v === "yes") opportunistic = true;
      else if (v === "0" || v === "false" || v === "no") opportunistic = false;
      else fail(`opportunistic must be 1 or 0, not "${value}"`);
    } else {
      fail(`unknown parameter "${key}" (known: pin, opportunistic)`);
    }
  }
  if (opportunistic && pins.length > 0) {
    fail("pins and opportunistic=1 contradict each other (pinning authenticates the server)");
  }

  let servername = hostname;
  if (fragment !== undefined) {
    const name = decode(fragment, fail);
    if (name === "") fail("empty authentication name after #");
    servername = parseHost(name, "authentication name", fail);
  }

  const base = `${scheme}://${urlHost(hostname)}:${port}`;
  const display = servername === hostname ? base : `${base}#${servername}`;
  return { hostname, port, servername, pins, opportunistic, display };
}
