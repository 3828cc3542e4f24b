/**
 * Parsing of plain DNS upstream URLs: `udp://IP[:port]` and `tcp://IP[:port]`, port 53 by
 * default. The host must be an IP address: resolving a name would itself take plain DNS, maybe
 * through this very bridge.
 *
 * @module
 */
import { canonicalIpv6, isIpv4, parsePort, splitAuthority } from "./authority.ts";
import { urlHost } from "./dot_url.ts";

/** The plain DNS port (RFC 1035 §4.2). */
export const PLAIN_DNS_PORT = 53;

/** What a plain DNS upstream URL says. */
export interface PlainUrl {
  readonly scheme: "udp" | "tcp";
  /** An IPv4 address, or an IPv6 address in canonical form without brackets. */
  readonly hostname: string;
  readonly port: number;
  /** `udp://host:port`: for logs, errors and metric labels. */
  readonly display: string;
}

/** True for a URL this parser reads (`udp:` or `tcp:`), whatever else is wrong with it. */
export function isPlainUrl(url: string): boolean {
  return /^(udp|tcp):/i.test(url);
}

/**
 * Parses a plain DNS upstream URL.
 *
 * @throws {TypeError} for another scheme, user info, a path, query or fragment, or a host that is
 *   not an IP address
 * @throws {RangeError} for a port outside 1-65535
 *
 * @example
 * ```ts
 * parsePlainUrl("udp://192.168.1.1").display; // "udp://192.168.1.1:53"
 * parsePlainUrl("tcp://[fd00::1]:5353").port; // 5353
 * ```
 */
export function parsePlainUrl(url: string): PlainUrl {
  if (typeof url !== "string") throw new TypeError("plain DNS upstream URL must be a string");
  const shown = url.length > 200 ? `${url.slice(0, 200)}...` : url;
  const fail = (msg: string): never => {
    throw new TypeError(`plain DNS upstream "${shown.replace(/\/\/[^/@]*@/, "//")}": ${msg}`);
  };
  const m = /^(udp|tcp):\/\/(.*)$/i.exec(url);
  if (!m) return fail("scheme must be udp:// or tcp://");
  const scheme = m[1].toLowerCase() as "udp" | "tcp";
  let authority = m[2];
  if (authority.endsWith("/")) authority = authority.slice(0, -1);
  if (/[/?#]/.test(authority)) fail("a plain DNS URL has no path, query or fragment");
  if (authority.includes("@")) fail("user info is not allowed");
  const parts = splitAuthority(authority, `${scheme}://[2001:db8::1]:53`, fail);
  const hostPart = parts.host.startsWith("[") ? parts.host.slice(1, -1) : parts.host;
  if (hostPart === "") fail("no host");
  const hostname = isIpv4(hostPart) ? hostPart : canonicalIpv6(hostPart);
  if (hostname === undefined) {
    return fail(
      `"${hostPart}" is not an IP address (a plain DNS upstream is given by address: ` +
        "resolving its name would need plain DNS)",
    );
  }
  const port = parsePort(parts.port, PLAIN_DNS_PORT, `plain DNS upstream "${shown}"`);
  return { scheme, hostname, port, display: `${scheme}://${urlHost(hostname)}:${port}` };
}
