/**
 * A DoH transport over `node:http2` under Deno: measured here at about 1.5× the request rate of
 * `fetch` for small DoH exchanges, and it can dial a bootstrap address while verifying the URL's
 * host name, so the bridge never needs plain DNS to find its upstreams.
 *
 * @module
 */
import http2 from "node:http2";
import tls from "node:tls";
import type { Logger } from "../log/mod.ts";
import {
  type DohRequest,
  type DohResponse,
  type DohTransport,
  TransportError,
} from "../upstream/doh_transport.ts";

/** Options of {@linkcode createH2Transport}. */
export interface H2TransportOptions {
  /** CA certificates (PEM) trusted instead of the system roots, like `curl --cacert`. */
  caCerts?: string[];
  /** Host name → address to dial instead of resolving it (bootstrap). */
  bootstrap?: Readonly<Record<string, string>>;
  /** HTTP/2 connections per upstream origin, used in turn. Default 1. */
  sessionsPerOrigin?: number;
  /** TLS connect deadline. Default 5000 ms. */
  connectTimeoutMs?: number;
  logger?: Logger;
}

/** A transport with a `close` that ends every HTTP/2 session. */
export interface ClosableTransport {
  readonly transport: DohTransport;
  close(): void;
}

const MEDIA_TYPE = "application/dns-message";

interface Pool {
  sessions: (http2.ClientHttp2Session | undefined)[];
  next: number;
}

/**
 * Creates the `node:http2` transport. Sessions open lazily, are reused by every concurrent
 * request, and are replaced after they close or receive GOAWAY.
 *
 * @example
 * ```ts
 * const { transport, close } = createH2Transport({ bootstrap: { "dns.example": "192.0.2.53" } });
 * const upstream = new DohUpstream({ url: "https://dns.example/dns-query", transport });
 * ```
 */
export function createH2Transport(options: H2TransportOptions = {}): ClosableTransport {
  const pools = new Map<string, Pool>();
  const perOrigin = Math.max(1, options.sessionsPerOrigin ?? 1);
  const ca = options.caCerts?.length ? options.caCerts : undefined;
  const connectTimeoutMs = options.connectTimeoutMs ?? 5_000;
  let closed = false;

  function open(url: URL, pool: Pool, slot: number): http2.ClientHttp2Session {
    const hostname = url.hostname.replace(/^\[|\]$/g, "");
    const port = Number(url.port || 443);
    const dial = options.bootstrap?.[hostname] ?? hostname;
    const isIp = /^[\d.]+$|:/.test(hostname);
    const session = http2.connect(url.origin, {
      createConnection: () => {
        const socket = tls.connect({
          host: dial,
          port,
          servername: isIp ? undefined : hostname,
          ca,
          ALPNProtocols: ["h2"],
        });
        socket.setNoDelay(true);
        const timer = setTimeout(
          () => socket.destroy(new Error(`TLS connect timed out after ${connectTimeoutMs} ms`)),
          connectTimeoutMs,
        );
        socket.once("secureConnect", () => clearTimeout(timer));
        socket.once("close", () => clearTimeout(timer));
        return socket;
      },
    });
    const forget = () => {
      if (pool.sessions[slot] === session) pool.sessions[slot] = undefined;
    };
    session.on("close", forget);
    session.on("goaway", forget);
    session.on("error", (error: Error) => {
      forget();
      options.logger?.debug("http2 session error", { origin: url.origin, error: error.message });
    });
    session.setTimeout(60_000, () => session.close());
    pool.sessions[slot] = session;
    return session;
  }

  function sessionFor(url: URL): http2.ClientHttp2Session {
    let pool = pools.get(url.origin);
    if (!pool) {
      pool = { sessions: new Array(perOrigin).fill(undefined), next: 0 };
      pools.set(url.origin, pool);
    }
    const slot = pool.next;
    pool.next = (pool.next + 1) % perOrigin;
    const existing = pool.sessions[slot];
    if (existing && !existing.closed && !existing.destroyed) return existing;
    return open(url, pool, slot);
  }

  const transport: DohTransport = (request: DohRequest) => {
    if (closed) return Promise.reject(new TransportError("transport closed", false));
    if (request.signal.aborted) return Promise.reject(request.signal.reason);
    return new Promise<DohResponse>((resolve, reject) => {
      let session: http2.ClientHttp2Session;
      let stream: http2.ClientHttp2Stream;
      try {
        session = sessionFor(request.url);
        const headers: http2.OutgoingHttpHeaders = {
          ":method": request.method,
          ":path": request.url.pathname + request.url.search,
          accept: MEDIA_TYPE,
        };
        if (request.method === "POST") {
          headers["content-type"] = MEDIA_TYPE;
          headers["content-length"] = String(request.body?.length ?? 0);
        }
        stream = session.request(headers, { endStream: request.method === "GET" });
      } catch (error) {
        reject(new TransportError((error as Error).message, true, { cause: error }));
        return;
      }
      let status = 0;
      let contentType = "";
      const chunks: Uint8Array[] = [];
      let size = 0;
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        request.signal.removeEventListener("abort", onAbort);
        fn();
      };
      const onAbort = () => {
        stream.close(http2.constants.NGHTTP2_CANCEL);
        finish(() => reject(request.signal.reason));
      };
      request.signal.addEventListener("abort", onAbort, { once: true });
      stream.on("response", (headers) => {
        status = Number(headers[":status"]);
        contentType = String(headers["content-type"] ?? "");
        if (status !== 200) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          finish(() => resolve({ status, contentType, body: new Uint8Array(0) }));
        }
      });
      stream.on("data", (chunk: Uint8Array) => {
        size += chunk.length;
        if (size > request.maxBodySize) {
          stream.close(http2.constants.NGHTTP2_CANCEL);
          finish(() => reject(new RangeError(`body exceeds ${request.maxBodySize} bytes`)));
          return;
        }
        chunks.push(chunk);
      });
      stream.on("end", () => {
        finish(() => {
          if (status === 0) {
            reject(new TransportError("stream ended without a response", true));
            return;
          }
          let body: Uint8Array;
          if (chunks.length === 1) body = chunks[0];
          else {
            body = new Uint8Array(size);
            let pos = 0;
            for (const c of chunks) {
              body.set(c, pos);
              pos += c.length;
            }
          }
          resolve({ status, contentType, body });
        });
      });
      stream.on("error", (error: Error) => {
        finish(() => reject(new TransportError(error.message, true, { cause: error })));
      });
      stream.on("close", () => {
        finish(() => {
          const code = stream.rstCode;
          reject(new TransportError(`stream closed (code ${code})`, true));
        });
      });
      if (request.method === "POST") stream.end(request.body);
    });
  };

  return {
    transport,
    close() {
      closed = true;
      for (const pool of pools.values()) {
        for (const s of pool.sessions) s?.close();
      }
      pools.clear();
    },
  };
}
