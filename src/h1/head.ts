/**
 * Parsing one HTTP/1.1 request head (RFC 9112 §2–§7): the request line and the header fields,
 * checked strictly enough that no two readers could frame the message differently (no obs-fold,
 * no space before the colon, no bare CR or LF, one Content-Length value, Transfer-Encoding only
 * as `chunked`, one Host).
 *
 * @module
 */

/** Why a head was refused: the status to answer (then close) and a short reason. */
export interface HeadError {
  readonly status: number;
  readonly why: string;
}

/** A head that passed the checks. */
export interface RequestHead {
  readonly method: string;
  /** Origin-form path and query (an absolute-form target is reduced to it). */
  readonly path: string;
  /** From an absolute-form target, else the Host field ("" for HTTP/1.0 without one). */
  readonly authority: string;
  /** Fields in order, names lower-cased, values as binary strings with surrounding OWS cut. */
  readonly headers: [string, string][];
  /** HTTP/1.1 (or a later 1.x), not 1.0. */
  readonly http11: boolean;
  /** Body framing: {@linkcode CHUNKED}, or the Content-Length (0 without one). */
  readonly bodyLength: number;
  /** Close after answering: `Connection: close`, or HTTP/1.0 without `keep-alive`. */
  readonly close: boolean;
  /** `Expect: 100-continue` on an HTTP/1.1 request. */
  readonly expectContinue: boolean;
}

/** {@linkcode RequestHead.bodyLength} of a chunked body. */
export const CHUNKED = -1;

const error = (status: number, why: string): HeadError => Object.freeze({ status, why });
const BAD_REQUEST_LINE = error(400, "malformed request line");
const BAD_TARGET = error(400, "malformed request target");
const BAD_VERSION = error(505, "HTTP version not supported");
const BAD_FIELD = error(400, "malformed header field");
const BAD_VALUE = error(400, "invalid character in a header field value");
const BAD_HOST = error(400, "missing, repeated or malformed Host");
const BAD_LENGTH = error(400, "invalid Content-Length");
const BOTH_FRAMINGS = error(400, "both Content-Length and Transfer-Encoding");
const BAD_CODING = error(400, "malformed Transfer-Encoding");
const CODING_10 = error(400, "Transfer-Encoding in an HTTP/1.0 request");
const UNKNOWN_CODING = error(501, "transfer coding not implemented (only chunked)");

/** Octets allowed in a token (RFC 9110 §5.6.2 tchar). */
export const TCHAR: Uint8Array = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TCHAR[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TCHAR[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TCHAR[c] = TCHAR[c + 0x20] = 1;

/** Octets allowed in a field value: HTAB, SP, VCHAR, obs-text (RFC 9110 §5.5). */
export const VALUE_CHAR: Uint8Array = new Uint8Array(256);
VALUE_CHAR[0x09] = 1;
for (let c = 0x20; c <= 0x7e; c++) VALUE_CHAR[c] = 1;
for (let c = 0x80; c <= 0xff; c++) VALUE_CHAR[c] = 1;

/** uri-host [ ":" port ]: reg-name, IPv4 or an IP literal in brackets. */
const HOST = /^[A-Za-z0-9\-._~%!$&'()*+,;=:[\]]*$/;
/** An absolute-form target: scheme, authority, then path and query. */
const ABSOLUTE = /^https?:\/\/([^/?]*)(.*)$/i;

/**
 * Checks and takes apart a request head. `head` is its octets as a binary string, from the
 * request line through the CRLF ending the last field line (the empty line left off).
 *
 * @example
 * ```ts
 * parseHead("GET /dns-query?dns=AAAB HTTP/1.1\r\nHost: a\r\n");
 * // { method: "GET", path: "/dns-query?dns=AAAB", authority: "a", http11: true, ... }
 * ```
 */
export function parseHead(head: string): RequestHead | HeadError {
  // --- request line: method SP request-target SP HTTP-version
  const lineEnd = head.indexOf("\r\n");
  const sp1 = head.indexOf(" ");
  if (sp1 <= 0 || sp1 > lineEnd) return BAD_REQUEST_LINE;
  for (let i = 0; i < sp1; i++) if (TCHAR[head.charCodeAt(i)] !== 1) return BAD_REQUEST_LINE;
  const sp2 = head.indexOf(" ", sp1 + 1);
  if (sp2 <= sp1 + 1 || sp2 > lineEnd) return BAD_REQUEST_LINE;
  for (let i = sp1 + 1; i < sp2; i++) {
    const c = head.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x23 /* # */) return BAD_TARGET;
  }
  if (lineEnd - sp2 !== 9 || !head.startsWith("HTTP/", sp2 + 1)) return BAD_REQUEST_LINE;
  const major = head.charCodeAt(sp2 + 6) - 0x30;
  const minor = head.charCodeAt(sp2 + 8) - 0x30;
  if (major < 0 || major > 9 || minor < 0 || minor > 9 || head.charCodeAt(sp2 + 7) !== 0x2e) {
    return BAD_REQUEST_LINE;
  }
  if (major !== 1) return BAD_VERSION;
  // A later 1.x is read as 1.1 (RFC 9110 §2.5).
  const http11 = minor !== 0;
  const method = head.slice(0, sp1);
  const target = head.slice(sp1 + 1, sp2);

  // --- fields
  const headers: [string, string][] = [];
  let host: string | undefined;
  let hosts = 0;
  let length = -1;
  let coding: string | undefined;
  let closeToken = false;
  let keepAliveToken = false;
  let expectContinue = false;
  for (let at = lineEnd + 2; at < head.length;) {
    const end = head.indexOf("\r\n", at);
    let colon = at;
    for (; colon < end; colon++) {
      const c = head.charCodeAt(colon);
      if (c === 0x3a) break;
      if (TCHAR[c] !== 1) return BAD_FIELD;
    }
    if (colon === at || colon === end) return BAD_FIELD;
    let from = colon + 1;
    let to = end;
    while (from < to && isOws(head.charCodeAt(from))) from++;
    while (to > from && isOws(head.charCodeAt(to - 1))) to--;
    for (let i = from; i < to; i++) if (VALUE_CHAR[head.charCodeAt(i)] !== 1) return BAD_VALUE;
    const name = head.slice(at, colon).toLowerCase();
    const value = head.slice(from, to);
    headers.push([name, value]);
    at = end + 2;
    switch (name) {
      case "host":
        hosts++;
        host = value;
        break;
      case "content-length": {
        const n = contentLength(value);
        if (n < 0 || (length >= 0 && n !== length)) return BAD_LENGTH;
        length = n;
        break;
      }
      case "transfer-encoding":
        coding = coding === undefined ? value : `${coding},${value}`;
        break;
      case "connection":
        for (const token of value.split(",")) {
          const t = token.trim().toLowerCase();
          if (t === "close") closeToken = true;
          else if (t === "keep-alive") keepAliveToken = true;
        }
        break;
      case "expect":
        if (value.toLowerCase() === "100-continue") expectContinue = true;
        break;
    }
  }

  // --- framing (RFC 9112 §6.1, §6.3)
  let bodyLength = length < 0 ? 0 : length;
  if (coding !== undefined) {
    if (!http11) return CODING_10;
    if (length >= 0) return BOTH_FRAMINGS;
    let chunked = 0;
    for (const item of coding.split(",")) {
      const c = item.trim().toLowerCase();
      if (c === "chunked") chunked++;
      else if (c !== "") return UNKNOWN_CODING;
    }
    if (chunked !== 1) return BAD_CODING;
    bodyLength = CHUNKED;
  }

  // --- host and target (RFC 9112 §3.2)
  if (hosts > 1 || (http11 && hosts === 0)) return BAD_HOST;
  if (host !== undefined && !HOST.test(host)) return BAD_HOST;
  let path = target;
  let authority = host ?? "";
  if (target.charCodeAt(0) !== 0x2f /* / */) {
    const absolute = ABSOLUTE.exec(target);
    if (!absolute || absolute[1] === "" || !HOST.test(absolute[1])) return BAD_TARGET;
    authority = absolute[1];
    path = absolute[2] === ""
      ? "/"
      : absolute[2].charCodeAt(0) === 0x3f
      ? `/${absolute[2]}`
      : absolute[2];
  }

  return {
    method,
    path,
    authority,
    headers,
    http11,
    bodyLength,
    close: closeToken || (!http11 && !keepAliveToken),
    expectContinue: expectContinue && http11,
  };
}

/** Whether `head` is a {@linkcode HeadError}. */
export function isHeadError(head: RequestHead | HeadError): head is HeadError {
  return (head as HeadError).status !== undefined;
}

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/**
 * A Content-Length value: digits, or a list of identical digit strings (RFC 9110 §8.6); -1 if
 * invalid. Lengths of 16 digits and more come back as `Infinity` (over any cap).
 */
function contentLength(value: string): number {
  let n = -1;
  for (const item of value.indexOf(",") < 0 ? [value] : value.split(",")) {
    const digits = item.trim();
    if (digits === "") return -1;
    for (let i = 0; i < digits.length; i++) {
      const c = digits.charCodeAt(i);
      if (c < 0x30 || c > 0x39) return -1;
    }
    const m = digits.length > 15 ? Infinity : Number(digits);
    if (n >= 0 && m !== n) return -1;
    n = m;
  }
  return n;
}
