/**
 * The Deno edge's transports for upstreams: the bridge's own HTTP/2 client for DoH over HTTPS,
 * `fetch` for plain `http://` on loopback, `node:tls` for DoT, `Deno.connectQuic` for DoQ,
 * `node:net` and `Deno.listenDatagram` for plain DNS over TCP and UDP.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import { type UpstreamFor, upstreamsFrom } from "../resolver/build.ts";
import type { UpstreamFactories } from "../upstream/build.ts";
import { type FetchLike, fetchTransport } from "../upstream/doh_transport.ts";
import { createH2Transport } from "./h2_transport.ts";
import { createQuicConnector } from "./quic_connector.ts";
import { createTcpConnector } from "./tcp_connector.ts";
import { createTlsConnector } from "./tls_connector.ts";
import { createDatagramOpener } from "./udp_socket.ts";

/** Upstream factories, the resolver's `upstreamFor` over them, and a `close` for their connections. */
export interface Transports extends UpstreamFactories {
  /** For `buildResolver`: `buildUpstream` over these transports. */
  readonly upstreamFor: UpstreamFor;
  close(): void;
}

/**
 * The default transports. The HTTP/2 client serves `https://` (about 8× `fetch`'s rate in the bench,
 * and it can dial bootstrap addresses); `caPem` is trusted in addition to the system roots. With
 * `fetchFn`, every DoH upstream goes through that `fetch` instead (tests, special clients).
 */
export function createTransports(
  options: {
    caPem?: string;
    fetchFn?: FetchLike;
    logger?: Logger;
    /** Host name → address to dial (no plain DNS for upstream names). */
    bootstrap?: Readonly<Record<string, string>>;
    /** The HTTP client for `https://` upstreams. Default `http2`. */
    transport?: "fetch" | "http2";
  } = {},
): Transports {
  const caCerts = options.caPem ? [options.caPem] : undefined;
  const bootstrap = options.bootstrap ?? {};
  const dot: UpstreamFactories["dot"] = (target) => {
    const connect = createTlsConnector({
      caCerts,
      pins: target.pins,
      opportunistic: target.opportunistic,
      logger: options.logger,
      name: target.display,
    });
    const address = bootstrap[target.hostname.toLowerCase()];
    return address ? (t) => connect({ ...t, hostname: address }) : connect;
  };
  const doq: UpstreamFactories["doq"] = (target) => {
    const connect = createQuicConnector({ caCerts });
    const address = bootstrap[target.hostname.toLowerCase()];
    return address ? (t) => connect({ ...t, hostname: address }) : connect;
  };
  // Plain DNS upstreams are given by address: no bootstrap.
  const tcp = createTcpConnector();
  const udp = createDatagramOpener();
  const withUpstreamFor = (f: UpstreamFactories & { close(): void }): Transports => {
    const all = { doq, tcp: () => tcp, udp: () => udp, ...f };
    return { ...all, upstreamFor: upstreamsFrom(all) };
  };
  if (options.fetchFn) {
    const t = fetchTransport(options.fetchFn);
    return withUpstreamFor({ doh: () => t, dot, close: () => {} });
  }
  const plain = fetchTransport();
  if (options.transport !== "fetch") {
    const h2 = createH2Transport({ caCerts, bootstrap, logger: options.logger });
    return withUpstreamFor({
      doh: (url) => url.protocol === "http:" ? plain : h2.transport,
      dot,
      close: () => h2.close(),
    });
  }
  // fetch: one hyper client for every https:// upstream; bootstrap addresses cannot be given to
  // fetch, so upstream names resolve through the system (config rejects bootstrap with it).
  const client = Deno.createHttpClient({ caCerts });
  const https = fetchTransport((input, init) => fetch(input, { ...init, client }));
  return withUpstreamFor({
    doh: (url) => url.protocol === "http:" ? plain : https,
    dot,
    close: () => client.close(),
  });
}
