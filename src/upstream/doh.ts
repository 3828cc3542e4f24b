/**
 * A DNS-over-HTTPS upstream (RFC 8484).
 *
 * @module
 */
import { DNS_MESSAGE } from "../dns/media_type.ts";
import { MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import type { Answer } from "../dns/answer.ts";
import { setId, withId } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";
import {
  type DohResponse,
  type DohTransport,
  type FetchLike,
  fetchTransport,
  TransportError,
} from "./doh_transport.ts";
import { redactUrl, type Upstream, UpstreamError } from "./types.ts";
import { checkedAnswer, upstreamFailure } from "./failure.ts";

export type { FetchLike } from "./doh_transport.ts";

/** Options of {@linkcode DohUpstream}. */
export interface DohUpstreamOptions {
  /** The `https://host/path` of the resolver, e.g. `https://cloudflare-dns.com/dns-query`. */
  url: string;
  /** `POST` (default) or `GET` with `?dns=` base64url, which HTTP caches may reuse. */
  method?: "POST" | "GET";
  /** The HTTP client. Default: {@linkcode fetchTransport} over `fetch` (or `options.fetch`). */
  transport?: DohTransport;
  /** Shorthand for `transport: fetchTransport(fetch)`. */
  fetch?: FetchLike;
  /** Largest answer accepted. Default 65535. */
  maxAnswerSize?: number;
  /** The name for logs and metrics. Default: the URL's scheme, host and port ({@linkcode redactUrl}). */
  name?: string;
}

/**
 * Sends queries to one DoH server. The query goes out with ID 0 (RFC 8484 §4.1); the answer must
 * be HTTP 200 `application/dns-message`, at most 65535 bytes, ID 0, and for the same question,
 * and gets the client's ID back. A retryable connection failure (for example a pooled
 * connection the server closed) is retried once.
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
  readonly #transport: DohTransport;
  readonly #maxAnswerSize: number;
  #closed = false;

  constructor(options: DohUpstreamOptions) {
    this.#url = new URL(options.url);
    if (this.#url.protocol !== "https:" && this.#url.protocol !== "http:") {
      throw new TypeError(`upstream ${redactUrl(this.#url)}: scheme must be https`);
    }
    this.name = options.name ?? redactUrl(this.#url);
    this.#method = options.method ?? "POST";
    this.#transport = options.transport ?? fetchTransport(options.fetch);
    this.#maxAnswerSize = options.maxAnswerSize ?? MAX_MESSAGE_SIZE;
  }

  // Not an async function, nor a closure per query for the answer: on every bridged query an
  // async frame and its awaits here were ~0.8 KB allocated.
  exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (this.#closed) return Promise.reject(new UpstreamError(this.name, "unavailable", "closed"));
    const wire = withId(query.wire, 0);
    return this.#send(wire, signal).then(
      (response) => this.#accept(query, response),
      (error) => {
        if (signal.aborted) throw signal.reason;
        if (!(error instanceof TransportError && error.retryable)) {
          throw upstreamFailure(this.name, error);
        }
        // One retry: likely a stale pooled connection.
        return this.#send(wire, signal).then(
          (response) => this.#accept(query, response),
          (retryError) => {
            if (signal.aborted) throw signal.reason;
            throw upstreamFailure(this.name, retryError);
          },
        );
      },
    );
  }

  /** The answer in `response` to `query`, or the upstream's error. */
  #accept(query: Query, response: DohResponse): Answer {
    if (response.status !== 200) {
      throw new UpstreamError(this.name, "http-status", `HTTP ${response.status}`);
    }
    const type = response.contentType;
    // The exact type is nearly always what comes back: no parsing then.
    if (type !== DNS_MESSAGE && type.split(";")[0].trim().toLowerCase() !== DNS_MESSAGE) {
      throw new UpstreamError(this.name, "bad-answer", `content type "${type.slice(0, 64)}"`);
    }
    const info = checkedAnswer(this.name, query.info, response.body, 0);
    // The transport's buffer is ours to modify; the validation's walk goes along with it, and
    // is ours too (made just now), so it takes the new ID in place rather than as a copy.
    (info as { id: number }).id = query.info.id;
    return { wire: setId(response.body, query.info.id), info };
  }

  /** Sends `wire`; a transport that throws at once rejects instead. */
  #send(wire: Uint8Array<ArrayBuffer>, signal: AbortSignal): Promise<DohResponse> {
    try {
      return this.#request(wire, signal);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  #request(wire: Uint8Array<ArrayBuffer>, signal: AbortSignal): Promise<DohResponse> {
    if (this.#method === "GET") {
      const url = new URL(this.#url);
      url.searchParams.set("dns", wire.toBase64({ alphabet: "base64url", omitPadding: true }));
      return this.#transport({ method: "GET", url, signal, maxBodySize: this.#maxAnswerSize });
    }
    return this.#transport({
      method: "POST",
      url: this.#url,
      body: wire,
      signal,
      maxBodySize: this.#maxAnswerSize,
    });
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }
}
