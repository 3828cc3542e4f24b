/// <reference types="./cloudflare_sockets.d.ts" />
/**
 * The Worker side of a DoT upstream: a {@linkcode StreamConnector} over Cloudflare's
 * `cloudflare:sockets` `connect()` with `secureTransport: "on"`; with `plain`, the same over
 * plain TCP (`secureTransport: "off"`) for a `tcp://` upstream.
 *
 * `cloudflare:sockets` verifies the server's certificate against public roots for the name it
 * dials, and nothing else: it cannot authenticate another name than the one dialled
 * (`tls://1.1.1.1#one.one.one.one`), check SPKI pins, or skip verification (opportunistic
 * mode). {@linkcode socketsLimitation} says which upstream URLs it can serve, so the config is
 * refused up front instead of connecting with weaker checks than asked for.
 *
 * @module
 */
import type { DotUrl } from "../upstream/dot_url.ts";
import { urlHost } from "../upstream/dot_url.ts";
import type { ByteStream, StreamConnector, StreamTarget } from "../upstream/stream.ts";
import { abortable } from "../async/abortable.ts";
import { messageOf } from "../errors/message_of.ts";

/** A socket as `cloudflare:sockets` returns it: a {@linkcode ByteStream} plus `opened`. */
export interface SocketsSocket extends ByteStream {
  /** Settles once connected; rejects when the connection cannot be made. */
  readonly opened: Promise<unknown>;
}

/** The `connect` of `cloudflare:sockets`, as far as this connector uses it. */
export type SocketsConnect = (
  address: { hostname: string; port: number },
  options: { secureTransport: "on" | "off"; allowHalfOpen: boolean },
) => SocketsSocket;

/** Options of {@linkcode createSocketsConnector}. */
export interface SocketsConnectorOptions {
  /** The `connect` to use. Default: `connect` of `cloudflare:sockets`, imported on first use. */
  connect?: SocketsConnect;
  /** Plain TCP (a `tcp://` upstream): no TLS, nothing authenticated. Default false. */
  plain?: boolean;
}

/**
 * Why `cloudflare:sockets` cannot connect to a DoT upstream as its URL asks, or `undefined` when
 * it can (a name or address dialled and authenticated as itself, no pins, not opportunistic).
 *
 * @example
 * ```ts
 * socketsLimitation(parseDotUrl("tls://dns.example")); // undefined
 * socketsLimitation(parseDotUrl("tls://192.0.2.1#dns.example")); // "... authenticates the name it dials ..."
 * ```
 */
export function socketsLimitation(target: DotUrl): string | undefined {
  const at = `DoT upstream ${target.display}`;
  if (target.opportunistic) {
    return `${at}: cloudflare:sockets always verifies the certificate; ` +
      `opportunistic=1 is not supported in a Worker`;
  }
  if (target.pins.length > 0) {
    return `${at}: cloudflare:sockets cannot check SPKI pins; ` +
      `drop ?pin= (the certificate is still verified for the host name)`;
  }
  if (target.servername !== target.hostname) {
    return `${at}: cloudflare:sockets authenticates the name it dials and cannot verify ` +
      `"${target.servername}" on another host; use tls://${urlHost(target.servername)}:` +
      `${target.port} instead`;
  }
  return undefined;
}

let imported: Promise<SocketsConnect> | undefined;

/** `connect` of `cloudflare:sockets`, imported once; only workerd has the module. */
function importConnect(): Promise<SocketsConnect> {
  imported ??= import("cloudflare:sockets").then(
    (m) => m.connect as SocketsConnect,
    (e) => {
      imported = undefined;
      throw new Error(
        `cloudflare:sockets is not available here (only in Workers): ${messageOf(e)}`,
        { cause: e },
      );
    },
  );
  return imported;
}

function describeTarget(target: StreamTarget, plain: boolean): string {
  return `${plain ? "TCP" : "TLS"} to ${urlHost(target.hostname)}:${target.port}`;
}

/**
 * Creates a connector over `cloudflare:sockets`: TLS from the first byte, the certificate
 * verified by workerd for `target.hostname`. Resolves once the socket is open; rejects with an
 * `Error` naming the target when it cannot be opened, with `signal.reason` when the signal
 * aborts first, and with a `TypeError` for a target it cannot authenticate (see
 * {@linkcode socketsLimitation}; the Worker refuses such URLs when it reads its config).
 *
 * In a Worker a socket belongs to the request that opened it: do not share the streams this
 * connector returns between requests.
 *
 * @example
 * ```ts
 * const u = parseDotUrl("tls://dns.example");
 * const upstream = new DotUpstream({ ...u, name: u.display, connect: createSocketsConnector() });
 * ```
 */
export function createSocketsConnector(options: SocketsConnectorOptions = {}): StreamConnector {
  const given = options.connect;
  const load = given ? () => Promise.resolve(given) : importConnect;
  const plain = options.plain ?? false;
  const describe = (target: StreamTarget) => describeTarget(target, plain);
  return async (target) => {
    if (!plain && target.servername !== target.hostname) {
      throw new TypeError(
        `${describe(target)}: cloudflare:sockets cannot authenticate "${target.servername}"`,
      );
    }
    const { signal } = target;
    signal.throwIfAborted();
    const connect = await load();
    signal.throwIfAborted();
    let socket: SocketsSocket;
    try {
      socket = connect(
        { hostname: target.hostname, port: target.port },
        { secureTransport: plain ? "off" : "on", allowHalfOpen: false },
      );
    } catch (e) {
      throw new Error(`${describe(target)}: ${messageOf(e)}`, { cause: e });
    }
    socket.closed.catch(() => {}); // observed by the DoT upstream through the stream it reads
    try {
      await abortable(socket.opened, signal);
    } catch (e) {
      Promise.resolve(socket.close()).catch(() => {});
      if (signal.aborted) throw signal.reason;
      throw new Error(`${describe(target)}: ${messageOf(e)}`, { cause: e });
    }
    return {
      readable: socket.readable,
      writable: socket.writable,
      closed: socket.closed,
      close: () => socket.close(),
    };
  };
}
