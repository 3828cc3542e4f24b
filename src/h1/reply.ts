/**
 * Writing HTTP/1.1 response heads (RFC 9112 §4, §6): the status line with its reason phrase, the
 * handler's fields less the ones the connection owns, then Content-Length, Date and Connection.
 *
 * @module
 */
import type { ServerReply } from "../serve/exchange.ts";

/** Reason phrases (RFC 9110 §15) of the statuses a DoH face answers with. */
const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  301: "Moved Permanently",
  302: "Found",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  408: "Request Timeout",
  411: "Length Required",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  421: "Misdirected Request",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** Status lines, built once per status. */
const statusLines = new Map<number, string>();

/** Fields the connection sets itself; a handler's are dropped (RFC 9110 §7.6.1). */
const OWN_FIELDS = new Set([
  "content-length",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "te",
  "trailer",
]);

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const BAD_VALUE = /[^\t\x20-\x7e\x80-\xff]/;

/** How the connection frames a reply. */
export interface ReplyFraming {
  /** HEAD: the fields of the body, not the body. */
  readonly head: boolean;
  /** Add `connection: close`. */
  readonly close: boolean;
  /** Add `connection: keep-alive` (an HTTP/1.0 client that asked for it). */
  readonly keepAlive: boolean;
  /** The Date field value, or `undefined` to send none. */
  readonly date: string | undefined;
}

/**
 * The response head (status line through the empty line) as a binary string, and whether the
 * body follows; `undefined` if the reply cannot be sent as it is (a status outside 100–999, a
 * field name that is not a token, a value with CR, LF, NUL or a char above U+00FF).
 *
 * @example
 * ```ts
 * replyHead({ status: 200, headers: [["content-type", "text/plain"]], body },
 *   { head: false, close: false, keepAlive: false, date: undefined });
 * // "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\n\r\n"
 * ```
 */
export function replyHead(reply: ServerReply, framing: ReplyFraming): string | undefined {
  const status = reply.status;
  if (!Number.isInteger(status) || status < 100 || status > 999) return undefined;
  let head = statusLines.get(status);
  if (head === undefined) {
    head = `HTTP/1.1 ${status} ${REASONS[status] ?? ""}\r\n`;
    if (statusLines.size < 1000) statusLines.set(status, head);
  }
  let date = framing.date;
  for (const [name, value] of reply.headers) {
    const lower = name.toLowerCase();
    if (OWN_FIELDS.has(lower)) continue;
    if (!TOKEN.test(lower) || BAD_VALUE.test(value)) return undefined;
    if (lower === "date") date = undefined;
    head += `${lower}: ${value}\r\n`;
  }
  // No Content-Length (and no body) for 1xx, 204 and 304 (RFC 9110 §8.6, §15.4.5).
  if (status >= 200 && status !== 204 && status !== 304) {
    head += `content-length: ${reply.body.length}\r\n`;
  }
  if (date !== undefined) head += `date: ${date}\r\n`;
  if (framing.close) head += "connection: close\r\n";
  else if (framing.keepAlive) head += "connection: keep-alive\r\n";
  return head + "\r\n";
}

/** Whether a reply with this status to this method carries its body's octets. */
export function sendsBody(status: number, head: boolean): boolean {
  return !head && status >= 200 && status !== 204 && status !== 304;
}

const text = new TextEncoder();

/**
 * The replies ready together, in one buffer for one write: each head (ASCII but for obs-text in
 * a value, which takes one octet, not UTF-8's two) followed by its body, if it sends one.
 * `total` is their length.
 */
export function joinReplies(
  heads: readonly string[],
  bodies: readonly (Uint8Array | undefined)[],
  total: number,
): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (let i = 0; i < heads.length; i++) {
    const head = heads[i];
    const { read, written } = text.encodeInto(head, out.subarray(at));
    if (read === head.length && written === head.length) at += written;
    else for (let j = 0; j < head.length; j++) out[at++] = head.charCodeAt(j);
    const body = bodies[i];
    if (body !== undefined) {
      out.set(body, at);
      at += body.length;
    }
  }
  return out;
}

/** The interim response to `Expect: 100-continue`. */
export const CONTINUE = "HTTP/1.1 100 Continue\r\n\r\n";

let dateSecond = -1;
let dateValue = "";

/** The IMF-fixdate of `ms` (RFC 9110 §5.6.7), computed at most once per second. */
export function httpDate(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateValue = new Date(second * 1000).toUTCString();
  }
  return dateValue;
}
