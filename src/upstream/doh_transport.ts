/**
 * How a DoH upstream moves one request: the HTTP client behind it. The core ships a transport
 * over `fetch` (Deno, Workers) and one over the bridge's own HTTP/2 client (`./h2_transport.ts`
 * on `src/h2/`), which the Deno edge runs over Deno's TLS with bootstrap addresses.
 *
 * @module
 */
import { DNS_MESSAGE } from "../dns/media_type.ts";
import { readBodyCapped } from "./body.ts";
import { messageOf } from "../errors/message_of.ts";

/** One DoH request. */
export interface DohRequest {
  readonly method: "GET" | "POST";
  /** For GET, already carries `?dns=`. */
  readonly url: URL;
  readonly body?: Uint8Array<ArrayBuffer>;
  readonly signal: AbortSignal;
  /** Bodies larger than this fail with a RangeError. */
  readonly maxBodySize: number;
}

/** What a transport hands back: the parts of the response a DoH client checks. */
export interface DohResponse {
  readonly status: number;
  readonly contentType: string;
  /** Empty unless the status is 200. A buffer of its own: the caller may modify it. */
  readonly body: Uint8Array;
}

/**
 * A connection-level failure (refused, reset, TLS, GOAWAY). `retryable` marks the failures a
 * fresh connection may fix, such as a pooled connection the server had closed.
 */
export class TransportError extends Error {
  constructor(message: string, readonly retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "TransportError";
  }
}

/**
 * Sends one request. Rejects with {@linkcode TransportError} for connection failures, a
 * `RangeError` for a body over `maxBodySize`, and the signal's reason when it aborts.
 */
export type DohTransport = (request: DohRequest) => Promise<DohResponse>;

/** The `fetch` signature a transport needs (lets the edge bind a custom HTTP client). */
export type FetchLike = (input: Request | URL | string, init?: RequestInit) => Promise<Response>;

/**
 * A transport over `fetch`: HTTP/2 with connection reuse where the runtime offers it.
 *
 * @example
 * ```ts
 * const transport = fetchTransport(fetch);
 * ```
 */
export function fetchTransport(fetchFn: FetchLike = (i, init) => fetch(i, init)): DohTransport {
  return async (request) => {
    const headers: Record<string, string> = { accept: DNS_MESSAGE };
    if (request.method === "POST") headers["content-type"] = DNS_MESSAGE;
    let response: Response;
    try {
      response = await fetchFn(request.url, {
        method: request.method,
        headers,
        body: request.body,
        signal: request.signal,
      });
    } catch (error) {
      if (request.signal.aborted) throw request.signal.reason;
      throw new TransportError(messageOf(error), error instanceof TypeError, {
        cause: error,
      });
    }
    const contentType = response.headers.get("content-type") ?? "";
    if (response.status !== 200) {
      await response.body?.cancel();
      return { status: response.status, contentType, body: new Uint8Array(0) };
    }
    try {
      return {
        status: 200,
        contentType,
        body: await readBodyCapped(response, request.maxBodySize),
      };
    } catch (error) {
      if (request.signal.aborted) throw request.signal.reason;
      if (error instanceof RangeError) throw error;
      throw new TransportError(messageOf(error), false, { cause: error });
    }
  };
}
