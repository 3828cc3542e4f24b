/**
 * The part of Cloudflare's `cloudflare:sockets` module the Worker edge uses, declared here so
 * `deno check` can type the dynamic import in `sockets_connector.ts` (Deno cannot resolve the
 * `cloudflare:` scheme; wrangler's bundler leaves it to workerd).
 *
 * @see https://developers.cloudflare.com/workers/runtime-apis/tcp-sockets/
 * @module
 */
declare module "cloudflare:sockets" {
  /** Where to connect. */
  export interface SocketAddress {
    hostname: string;
    port: number;
  }

  /** How to connect. */
  export interface SocketOptions {
    /** `on`: TLS from the start, the certificate checked for `hostname` against public roots. */
    secureTransport?: "off" | "on" | "starttls";
    /** `false`: closing the writable side closes the socket. */
    allowHalfOpen?: boolean;
  }

  /** What `opened` resolves with. */
  export interface SocketInfo {
    remoteAddress?: string;
    localAddress?: string;
  }

  /** An outbound TCP (or TLS) connection. */
  export interface Socket {
    readonly readable: ReadableStream<Uint8Array>;
    readonly writable: WritableStream<Uint8Array>;
    /** Settles when the connection is established, or rejects when it cannot be. */
    readonly opened: Promise<SocketInfo>;
    /** Settles when the connection is gone. */
    readonly closed: Promise<void>;
    close(): Promise<void>;
  }

  /** Opens an outbound connection. */
  export function connect(address: SocketAddress | string, options?: SocketOptions): Socket;
}
