/**
 * The common DoH request, recognised without building a `Request` or running the router:
 * `GET <path>[/<tenant>]?dns=<base64url>` or `POST <path>[/<tenant>]` with
 * `application/dns-message`. Anything else — errors, the JSON API, other routes — is left to the
 * hono app, which answers it the same way it always does. The listener uses this to skip most
 * per-request allocation on the hot path.
 *
 * @module
 */

/** A recognised wire-format query. */
export interface WireRequest {
  readonly wire: Uint8Array;
  readonly tenant?: string;
}

const TENANT = /^[A-Za-z0-9-]{1,63}$/;
const B64URL = /^[A-Za-z0-9_-]+={0,2}$/;
/** A query string that is exactly one `dns` parameter with a base64url value. */
const SIMPLE_DNS = /^dns=[A-Za-z0-9_-]+={0,2}$/;

/**
 * Recognises a well-formed wire-format DoH request.
 *
 * @param target the request target: path and query string, e.g. `/dns-query?dns=AAAB...`
 * @returns the query and tenant, or `undefined` to hand the request to the full app
 *
 * @example
 * ```ts
 * const fast = wireRequest("GET", "/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB");
 * ```
 */
export function wireRequest(
  method: string,
  target: string,
  contentType?: string,
  body?: Uint8Array,
  path = "/dns-query",
): WireRequest | undefined {
  const q = target.indexOf("?");
  const pathname = q < 0 ? target : target.slice(0, q);
  let tenant: string | undefined;
  if (pathname !== path) {
    if (!pathname.startsWith(path + "/")) return undefined;
    tenant = pathname.slice(path.length + 1);
    if (!TENANT.test(tenant)) return undefined;
    tenant = tenant.toLowerCase();
  }
  let wire: Uint8Array;
  if (method === "GET") {
    if (q < 0) return undefined;
    const query = target.slice(q + 1);
    let dns: string | null;
    if (query.startsWith("dns=") && SIMPLE_DNS.test(query)) {
      dns = query.slice(4); // the usual `?dns=...` alone: no need for URLSearchParams
    } else {
      const params = new URLSearchParams(query);
      dns = params.get("dns");
      if (params.getAll("dns").length !== 1) return undefined;
      if (dns === null || !B64URL.test(dns)) return undefined;
    }
    try {
      wire = Uint8Array.fromBase64(dns, { alphabet: "base64url" });
    } catch {
      return undefined;
    }
  } else if (method === "POST") {
    if (contentType?.toLowerCase() !== "application/dns-message" || !body) return undefined;
    wire = body;
  } else {
    return undefined;
  }
  if (wire.length < 12 || wire.length > 65535) return undefined;
  return { wire, tenant };
}
