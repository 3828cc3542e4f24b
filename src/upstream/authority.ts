/**
 * Where a single-server upstream connects, checked: the host and port of an upstream URL's
 * authority, for the schemes `new URL` does not parse as a server (tls://, quic://, udp://,
 * tcp://): `host`, `host:port`, `[v6]`, `[v6]:port`; and the numeric options of its constructor.
 *
 * @module
 */

/** What {@linkcode splitAuthority} found. */
export interface AuthorityParts {
  /** The host as written, brackets of an IPv6 address included. */
  host: string;
  /** The port as written, when there is one. */
  port?: string;
}

/**
 * Splits `authority` at its port; an IPv6 address must be in brackets.
 *
 * @param example a URL shown in the error for an unbracketed IPv6 address
 * @param fail throws the caller's error with the message
 *
 * @example
 * ```ts
 * splitAuthority("[2001:db8::1]:853", "tls://[2001:db8::1]:853", fail); // { host: "[2001:db8::1]", port: "853" }
 * ```
 */
export function splitAuthority(
  authority: string,
  example: string,
  fail: (msg: string) => never,
): AuthorityParts {
  if (authority.startsWith("[")) {
    const close = authority.indexOf("]");
    if (close < 0) fail("missing ] after the IPv6 address");
    const after = authority.slice(close + 1);
    if (after !== "" && !after.startsWith(":")) {
      fail(`unexpected "${after}" after the IPv6 address`);
    }
    return { host: authority.slice(0, close + 1), port: after === "" ? undefined : after.slice(1) };
  }
  const colon = authority.indexOf(":");
  if (colon >= 0 && authority.indexOf(":", colon + 1) >= 0) {
    fail(`an IPv6 address must be in brackets, e.g. ${example}`);
  }
  return colon >= 0
    ? { host: authority.slice(0, colon), port: authority.slice(colon + 1) }
    : { host: authority };
}

/**
 * The port written in a URL, or `fallback` when none is.
 *
 * @throws {RangeError} naming `what` when it is not a number from 1 to 65535
 */
export function parsePort(port: string | undefined, fallback: number, what: string): number {
  if (port === undefined) return fallback;
  const n = /^\d{1,5}$/.test(port) ? Number(port) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    throw new RangeError(`${what}: port "${port}" is not a number from 1 to 65535`);
  }
  return n;
}

/**
 * `value`, or `fallback` when unset, checked to be an integer from 1 to `max`.
 *
 * @param label the upstream kind for the error, e.g. `DoT upstream`
 * @throws {RangeError} `LABEL: WHAT must be an integer from 1 to MAX, not N`
 */
export function positiveInteger(
  label: string,
  value: number | undefined,
  fallback: number,
  what: string,
  max = Infinity,
): number {
  const n = value ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > max) {
    throw new RangeError(`${label}: ${what} must be an integer from 1 to ${max}, not ${n}`);
  }
  return n;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** True for a dotted-quad IPv4 address such as `192.0.2.1` (no leading zeros). */
export function isIpv4(s: string): boolean {
  return IPV4.test(s);
}

/** The canonical text of an IPv6 address (no brackets), or undefined if `s` is not one. */
export function canonicalIpv6(s: string): string | undefined {
  if (!s.includes(":") || !/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  try {
    return new URL(`http://[${s}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
}
