/**
 * A DNS-over-HTTPS upstream (RFC 8484).
 *
 * @module
 */
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import { withId } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";
import { InvalidAnswerError, validateAnswer } from "../dns/response.ts";
import { readBodyCapped } from "./body.ts";
import { redactUrl, type Upstream, UpstreamError } from "./types.ts";

/** The `fetch` a DoH upstream uses; the edge may bind a custom HTTP client (private CA). */
export type FetchLike = (input: Request | URL | string, init?: RequestInit) => Promise<Response>;

/** Options of {@linkcode DohUpstream}. */
export interface DohUpstreamOptions {
  /** The `https://host/path` of the resolver, e.g. `https://cloudflare-dns.com/dns-query`. */
  url: string;
  /** `POST` (default) or `GET` with `?dns=` base64url, which HTTP caches may reuse. */
  method?: "POST" | "GET";
  /** Defaults to the global `fetch` (HTTP/2 with connection reuse in Deno and Workers). */
  fetch?: FetchLike;
  /** Largest answer accepted. Default 65535. */
  maxAnswerSize?: number;
}

const MEDIA_TYPE = "application/dns-message";

/**
 * Sends queries to one DoH server. The query goes out with ID 0 (RFC 8484 §4.1); the answer must
 * be HTTP 200 `application/dns-message`, at most 65535 bytes, ID 0, and for the same question,
 * and gets the client's ID back. A connection-level failure (for example a pooled connection the
 * server closed) is retried once.
 *
 * @example
 * ```ts
 * const up = new DohUpstream({ url: "https://dns.example/dns-query" });
 * const answer = await up.exchange(query, AbortSignal.timeout(5000));
 * ```
 */
export class DohUpstream implements Upstream {
  readonly name: string;
  readonly #url: URL;
  readonly #method: "POST" | "GET";
  readonly #fetch: FetchLike;
  readonly #maxAnswerSize: number;
  #closed = false;

  constructor(options: DohUpstreamOptions) {
    this.#url = new URL(options.url);
    if (this.#url.protocol !== "https:" && this.#url.protocol !== "http:") {
      throw new TypeError(`upstream ${options.url}: scheme must be https`);
    }
    this.name = redactUrl(this.#url);
    this.#method = options.method ?? "POST";
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#maxAnswerSize = options.maxAnswerSize ?? MAX_MESSAGE_SIZE;
  }

  async exchange(query: Query, signal: AbortSignal): Promise<Uint8Array> {
    if (this.#closed) throw new UpstreamError(this.name, "unavailable", "closed");
    const wire = withId(query.wire, 0);
    let response: Response;
    try {
      response = await this.#send(wire, signal);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      if (!(error instanceof TypeError)) throw error;
      try {
        response = await this.#send(wire, signal); // one retry: likely a stale pooled connection
      } catch (retryError) {
        if (signal.aborted) throw signal.reason;
        throw new UpstreamError(this.name, "network", (retryError as Error).message, {
          cause: retryError,
        });
      }
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new UpstreamError(this.name, "http-status", `HTTP ${response.status}`);
    }
    const type = response.headers.get("content-type") ?? "";
    if (type.split(";")[0].trim().toLowerCase() !== MEDIA_TYPE) {
      await response.body?.cancel();
      throw new UpstreamError(this.name, "bad-answer", `content type "${type.slice(0, 64)}"`);
    }
    let body: Uint8Array;
    try {
      body = await readBodyCapped(response, this.#maxAnswerSize);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      const kind = error instanceof RangeError ? "bad-answer" : "network";
      throw new UpstreamError(this.name, kind, (error as Error).message, { cause: error });
    }
    try {
      validateAnswer(query.info, body, 0);
    } catch (error) {
      if (error instanceof InvalidAnswerError) {
        throw new UpstreamError(this.name, "bad-answer", error.message, { cause: error });
      }
      throw error;
    }
    return withId(body, query.info.id);
  }

  #send(wire: Uint8Array<ArrayBuffer>, signal: AbortSignal): Promise<Response> {
    const headers = { accept: MEDIA_TYPE };
    if (this.#method === "GET") {
      const url = new URL(this.#url);
      url.searchParams.set("dns", wire.toBase64({ alphabet: "base64url", omitPadding: true }));
      return this.#fetch(url, { method: "GET", headers, signal });
    }
    return this.#fetch(this.#url, {
      method: "POST",
      headers: { ...headers, "content-type": MEDIA_TYPE },
      body: wire,
      signal,
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
