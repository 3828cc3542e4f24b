/**
 * What a request's header fields may hold (RFC 9113 §8.2.1, §8.3.1): names in lower case and
 * made of token characters (a pseudo-header's leading colon aside), values without NUL, CR or LF
 * and without whitespace at either end, and an `:authority` that is `host[:port]` with no
 * userinfo. A request that breaks any of these is malformed, and RFC 9113 §8.2.1 asks for a
 * 400. Fields arrive as binary strings (one char per octet), as the HPACK decoder gives them.
 *
 * @module
 */

/** Octets allowed in a field name: RFC 9110 §5.6.2 tchar, lower case only. */
const NAME_CHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") NAME_CHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) NAME_CHAR[c] = 1;
for (let c = 0x61; c <= 0x7a; c++) NAME_CHAR[c] = 1;

/**
 * `host [ ":" port ]` (RFC 3986 §3.2.2, §3.2.3): an IP literal in brackets, or a reg-name /
 * IPv4 address of unreserved characters, sub-delims and percent-encodings; no userinfo.
 */
const AUTHORITY =
  /^(?:\[[0-9A-Fa-f:.]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)(?::[0-9]*)?$/;

/**
 * Whether `name` is a field name RFC 9113 §8.2.1 takes: lower case token characters, after
 * one leading colon for a pseudo-header.
 *
 * @example
 * ```ts
 * validFieldName("content-type"); // true
 * validFieldName("Content-Type"); // false
 * ```
 */
export function validFieldName(name: string): boolean {
  const start = name.charCodeAt(0) === 0x3a ? 1 : 0;
  if (start === name.length) return false; // "" or ":"
  for (let i = start; i < name.length; i++) {
    if (NAME_CHAR[name.charCodeAt(i)] !== 1) return false;
  }
  return true;
}

/**
 * Whether `value` is a field value RFC 9113 §8.2.1 takes: no NUL, LF or CR anywhere, and no
 * SP or HTAB first or last.
 *
 * @example
 * ```ts
 * validFieldValue("application/dns-message"); // true
 * validFieldValue(" padded"); // false
 * ```
 */
export function validFieldValue(value: string): boolean {
  const n = value.length;
  if (n === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(n - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  for (let i = 0; i < n; i++) {
    const c = value.charCodeAt(i);
    if (c === 0x00 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

/**
 * Whether `authority` is `host [":" port]` without userinfo (RFC 9113 §8.3.1, RFC 3986 §3.2).
 *
 * @example
 * ```ts
 * validAuthority("dns.example:443"); // true
 * validAuthority("user@dns.example"); // false
 * ```
 */
export function validAuthority(authority: string): boolean {
  return AUTHORITY.test(authority);
}
