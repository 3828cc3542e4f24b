/**
 * The DoH request path, first half: an HTTP request, given as plain parts, becomes a wire-format
 * query (and the tenant its path names) or an HTTP error that says why. Every DoH face calls
 * {@linkcode parseDohRequest}: the hono app (so also the Worker) and the own HTTP/2 and HTTP/1.1
 * servers (through `face.ts`), so the same request gets the same status and body on all of them.
 *
 * No `Request` and no `URLSearchParams` on the common request (`?dns=<base64url>` alone, or a
 * POST whose body is already read), so the own servers' hot path allocates little.
 *
 * @module
 */
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import { DNS_MESSAGE } from "../dns/media_type.ts";
import { DNS_JSON } from "./json.ts";

/**
 * Reads a request body, giving up past `limit` bytes.
 *
 * @returns the bytes, or `undefined` when the body is longer than `limit`
 */
export type BodyReader = (limit: number) => Promise<Uint8Array | undefined>;

/**
 * The parts of an HTTP request that DoH looks at. Header values as received (absent: null); they
 * may be getters, read only when needed (a GET with `?dns=` reads none).
 */
export interface DohRequestParts {
  /** `GET`, `HEAD` (answered as GET), `POST`; anything else is 405 on the DoH path. */
  readonly method: string;
  /** The request target: path and raw query string, e.g. `/dns-query/kids?dns=AAAB...`. */
  readonly target: string;
  readonly contentType?: string | null;
  /** `Content-Length`, when the client declared one: a larger value is 413 before reading. */
  readonly contentLength?: string | null;
  /** `Accept`: `application/dns-json` (with the JSON API on) marks a JSON API request. */
  readonly accept?: string | null;
  /** A POST's body: the bytes when already read (HTTP/2 server), else a capped reader. */
  readonly body?: Uint8Array | BodyReader | null;
}

/** Where the DoH path is and what it accepts. */
export interface DohRequestOptions {
  /** The DoH path, e.g. `/dns-query`; `<path>/<tenant>` selects a tenant (by id or name). */
  readonly path: string;
  /** Largest query accepted in bytes (capped at 65535); larger is 413. */
  readonly maxQuerySize: number;
  /** Whether `?name=` (or `Accept: application/dns-json`) is a JSON API request. */
  readonly jsonApi: boolean;
}

/** A wire-format query to answer; `tenant` is the tenant selector (id or name), lower-cased. */
export interface DohQuery {
  readonly kind: "query";
  readonly wire: Uint8Array;
  readonly tenant?: string;
}

/** An HTTP error: `message` is the one-line text body. */
export interface DohError {
  readonly kind: "error";
  readonly status: 400 | 405 | 413 | 415;
  readonly message: string;
}

/**
 * What a request on the DoH face is:
 * - `query`: a wire-format query to resolve;
 * - `json`: a JSON API request (`?name=&type=`), which the hono app answers;
 * - `error`: an HTTP error to send as it is;
 * - `elsewhere`: not the DoH path (landing page, health, metrics, 404): the app's routes decide.
 */
export type DohRequest =
  | DohQuery
  | DohError
  | { readonly kind: "json"; readonly tenant?: string }
  | { readonly kind: "elsewhere" };

const TENANT = /^[A-Za-z0-9-]{1,63}$/;
const BASE64URL = /^[A-Za-z0-9_-]*={0,2}$/;
/** The DoH path every face serves by default (RFC 8484 §4.1's example). */
export const DOH_PATH = "/dns-query";

/** A query string that is exactly one `dns` parameter with a base64url value. */
const SIMPLE_DNS = /^dns=[A-Za-z0-9_-]*={0,2}$/;
const ELSEWHERE: DohRequest = { kind: "elsewhere" };

function error(status: DohError["status"], message: string): DohError {
  return { kind: "error", status, message };
}

/** The 413 for a query over `max` bytes. */
export function tooLarge(max: number): DohError {
  return error(413, `DNS query over ${max} bytes`);
}

/** The media type of a `Content-Type` value, lower-cased, without parameters. */
function mediaType(header: string | null | undefined): string {
  if (!header) return "";
  const semi = header.indexOf(";");
  return (semi < 0 ? header : header.slice(0, semi)).trim().toLowerCase();
}

/** The tenant named by `pathname`, `""` for the bare path, or `undefined` for another path. */
function tenantOf(pathname: string, path: string): string | undefined {
  if (pathname === path) return "";
  if (!pathname.startsWith(path) || pathname.charCodeAt(path.length) !== 0x2f) return undefined;
  const tenant = pathname.slice(path.length + 1);
  return TENANT.test(tenant) ? tenant.toLowerCase() : undefined;
}

function checked(wire: Uint8Array, tenant: string, max: number): DohQuery | DohError {
  if (wire.length === 0) return error(400, "empty DNS query");
  if (wire.length > max) return tooLarge(max);
  return { kind: "query", wire, tenant: tenant || undefined };
}

function fromGet(
  query: string,
  parts: DohRequestParts,
  tenant: string,
  options: DohRequestOptions,
  max: number,
): DohRequest {
  let dns: string | null;
  let params: URLSearchParams | undefined;
  if (SIMPLE_DNS.test(query)) {
    dns = query.slice(4); // the usual `?dns=...` alone: no URLSearchParams
  } else {
    params = new URLSearchParams(query);
    dns = params.get("dns");
  }
  if (dns === null) {
    const json = options.jsonApi &&
      (params!.has("name") || (parts.accept ?? "").toLowerCase().includes(DNS_JSON));
    if (json) return { kind: "json", tenant: tenant || undefined };
    return error(400, "missing dns parameter");
  }
  if (dns.length > Math.ceil(max / 3) * 4 + 2) return tooLarge(max);
  if (params && !BASE64URL.test(dns)) return error(400, "dns parameter is not base64url");
  let wire: Uint8Array;
  try {
    wire = Uint8Array.fromBase64(dns, { alphabet: "base64url" });
  } catch {
    return error(400, "dns parameter is not base64url");
  }
  return checked(wire, tenant, max);
}

function fromPost(
  parts: DohRequestParts,
  tenant: string,
  max: number,
): DohQuery | DohError | Promise<DohQuery | DohError> {
  if (mediaType(parts.contentType) !== DNS_MESSAGE) {
    return error(415, `content type must be ${DNS_MESSAGE}`);
  }
  if (parts.contentLength != null && Number(parts.contentLength) > max) return tooLarge(max);
  const body = parts.body;
  if (typeof body === "function") {
    return body(max).then((bytes) =>
      bytes === undefined ? tooLarge(max) : checked(bytes, tenant, max)
    );
  }
  return checked(body ?? new Uint8Array(0), tenant, max);
}

/** The request target (path and query string) of an absolute URL, e.g. from `Request.url`. */
export function targetOf(url: string): string {
  return url.slice(url.indexOf("/", url.indexOf("//") + 2));
}

/**
 * Turns a request into a query or an HTTP error. Synchronous unless the body has to be read
 * (a POST on the DoH path with a {@linkcode BodyReader}).
 *
 * | request                                           | result                               |
 * | ------------------------------------------------- | ------------------------------------ |
 * | not `<path>` or `<path>/<tenant>`                 | `elsewhere`                          |
 * | GET/HEAD `?dns=<base64url>`, POST dns-message     | `query` (tenant lower-cased)         |
 * | GET `?name=` or `Accept: application/dns-json`    | `json` (when the JSON API is on)     |
 * | GET without `dns`                                 | 400 `missing dns parameter`          |
 * | GET `dns` not base64url                           | 400 `dns parameter is not base64url` |
 * | empty query                                       | 400 `empty DNS query`                |
 * | query over the size cap (encoded, declared, read) | 413 `DNS query over <n> bytes`       |
 * | POST of another content type                      | 415 `content type must be ...`       |
 * | any other method                                  | 405 `method not allowed`             |
 *
 * @example
 * ```ts
 * const req = parseDohRequest(
 *   { method: "GET", target: "/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB" },
 *   { path: "/dns-query", maxQuerySize: 65535, jsonApi: true },
 * ); // { kind: "query", wire: Uint8Array(33), tenant: undefined }
 * ```
 */
export function parseDohRequest(
  parts: DohRequestParts & { readonly body?: Uint8Array | null },
  options: DohRequestOptions,
): DohRequest;
export function parseDohRequest(
  parts: DohRequestParts,
  options: DohRequestOptions,
): DohRequest | Promise<DohRequest>;
export function parseDohRequest(
  parts: DohRequestParts,
  options: DohRequestOptions,
): DohRequest | Promise<DohRequest> {
  const q = parts.target.indexOf("?");
  const pathname = q < 0 ? parts.target : parts.target.slice(0, q);
  const tenant = tenantOf(pathname, options.path);
  if (tenant === undefined) return ELSEWHERE;
  const max = Math.min(options.maxQuerySize, MAX_MESSAGE_SIZE);
  const method = parts.method;
  if (method === "GET" || method === "HEAD") {
    return fromGet(q < 0 ? "" : parts.target.slice(q + 1), parts, tenant, options, max);
  }
  if (method === "POST") return fromPost(parts, tenant, max);
  return error(405, "method not allowed");
}
