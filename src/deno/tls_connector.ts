/**
 * The runtime side of a DoT upstream: a {@linkcode StreamConnector} over `node:tls`.
 *
 * `node:tls` rather than `Deno.connectTls`/`Deno.startTls`, because only `node:tls` exposes the
 * peer certificate (needed for SPKI pins, computed by `src/pki/spki.ts`) and takes a separate
 * `servername` (connect to an address, authenticate a name). Everything `node:tls`-specific stays
 * in this file.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { isIP } from "node:net";
import tls from "node:tls";
import { abortable } from "../async/abortable.ts";
import type { Logger } from "../log/mod.ts";
import { spkiPin } from "../pki/spki.ts";
import type { StreamConnector, StreamTarget } from "../upstream/stream.ts";
import { wrapSocket } from "./socket_stream.ts";

/** Options of {@linkcode createTlsConnector}: the authentication policy of one upstream. */
export interface TlsConnectorOptions {
  /** Extra trusted CA certificates (PEM), in addition to the default roots. */
  caCerts?: string[];
  /**
   * SPKI pins (base64 SHA-256, RFC 7858 §4.2) of this upstream. When given, a certificate in
   * the server's chain must match one, on top of the usual chain and name checks.
   */
  pins?: string[];
  /**
   * RFC 7858 §4.1 opportunistic privacy: encrypt, but accept any certificate and any name.
   * Logs a warning on the first connection. Cannot be combined with `pins`.
   */
  opportunistic?: boolean;
  /** Where the opportunistic warning goes (once, when the connector is made). Default `console.warn`. */
  logger?: Logger;
  /** The upstream's public name, for that warning. */
  name?: string;
  /** Bytes buffered from the server before the socket is paused (backpressure). Default 64 KiB. */
  readHighWaterMark?: number;
  /** `close()` waits this long for a clean TLS close before dropping the socket. Default 2000 ms. */
  closeGraceMs?: number;
}

/** The DER certificates the server sent, leaf first. */
function chainOf(cert: tls.PeerCertificate): Uint8Array[] {
  const ders: Uint8Array[] = [];
  let c: tls.DetailedPeerCertificate | tls.PeerCertificate | undefined = cert;
  for (let depth = 0; c?.raw && depth < 10; depth++) {
    ders.push(c.raw);
    const next: tls.DetailedPeerCertificate | undefined =
      (c as tls.DetailedPeerCertificate).issuerCertificate;
    if (!next || next === c || next.raw?.equals(c.raw)) break;
    c = next;
  }
  return ders;
}

/**
 * Resolves when a certificate in the chain `socket` was shown has one of `pins`, or rejects
 * with an `Error` printing the server's own pin.
 */
async function checkPins(socket: tls.TLSSocket, pins: Set<string>, what: string): Promise<void> {
  const seen = await Promise.all(chainOf(socket.getPeerCertificate(true)).map(spkiPin));
  if (seen.some((pin) => pins.has(pin))) return;
  throw new Error(
    `${what}: SPKI pin mismatch: the server's key ${seen[0] ?? "(none)"} matches none of the ` +
      `${pins.size} configured pin(s)`,
  );
}

/**
 * Settles when the TLS handshake of `socket` completes, or rejects with an `Error` saying what
 * failed (`what` names the connection); its listeners go either way.
 */
function handshake(socket: tls.TLSSocket, what: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onSecure = () => {
      cleanup();
      resolve();
    };
    const onError = (error: Error) => {
      cleanup();
      reject(new Error(`${what}: ${error.message}`, { cause: error }));
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`${what}: connection closed during the handshake`));
    };
    const cleanup = () => {
      socket.off("secureConnect", onSecure);
      socket.off("error", onError);
      socket.off("close", onClose);
    };
    socket.once("secureConnect", onSecure);
    socket.once("error", onError);
    socket.once("close", onClose);
  });
}

function describe(target: StreamTarget): string {
  const host = target.hostname.includes(":") ? `[${target.hostname}]` : target.hostname;
  const name = target.servername === target.hostname ? "" : ` as "${target.servername}"`;
  return `TLS to ${host}:${target.port}${name}`;
}

/**
 * Creates the connector for one DoT upstream: TLS 1.2+ with ALPN `dot`, `TCP_NODELAY`, the
 * certificate chain checked against `caCerts` (instead of the system roots) when given, the certificate checked
 * for `servername` strictly (RFC 8310 §8.1; an address is checked against IP SANs and not sent
 * as SNI), and, if `pins` are given, the SPKI pin of a certificate in the chain checked against
 * them. Any failure rejects the connect with an `Error` saying what failed.
 *
 * Pins belong to one upstream, so build one connector per upstream URL.
 *
 * @example
 * ```ts
 * const u = parseDotUrl("tls://127.0.0.1:8853?pin=n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=#localhost");
 * const connect = createTlsConnector({ caCerts: [caPem], pins: u.pins, opportunistic: u.opportunistic });
 * const upstream = new DotUpstream({ ...u, name: u.display, connect });
 * ```
 */
export function createTlsConnector(options: TlsConnectorOptions = {}): StreamConnector {
  const pins = new Set(options.pins ?? []);
  const opportunistic = options.opportunistic ?? false;
  if (opportunistic && pins.size > 0) {
    throw new TypeError("TLS connector: pins and opportunistic mode cannot be combined");
  }
  for (const pin of pins) {
    if (Buffer.from(pin, "base64").length !== 32) {
      throw new RangeError(`TLS connector: pin "${pin}" is not a base64 SHA-256 digest`);
    }
  }
  const ca = options.caCerts?.length ? options.caCerts : undefined;
  const highWaterMark = options.readHighWaterMark ?? 64 * 1024;
  const graceMs = options.closeGraceMs ?? 2_000;
  if (opportunistic) {
    // Said when the upstream is built (at start-up), not at its first query.
    const msg = "a DoT upstream is NOT authenticated (opportunistic mode, RFC 7858 §4.1): " +
      "anyone on the path can read and forge its answers";
    if (options.logger) options.logger.warn(msg, { upstream: options.name });
    else console.warn(msg);
  }

  return async (target) => {
    const { signal } = target;
    signal.throwIfAborted();
    const what = describe(target);
    const servername = target.servername;
    const socket = tls.connect({
      host: target.hostname,
      port: target.port,
      servername: isIP(servername) ? undefined : servername,
      ca,
      ALPNProtocols: ["dot"],
      minVersion: "TLSv1.2",
      rejectUnauthorized: !opportunistic,
      checkServerIdentity: (_host, cert) => tls.checkServerIdentity(servername, cert),
    });
    // The pins are checked once the chain and the name are (WebCrypto hashes asynchronously).
    const secured = handshake(socket, what).then(() =>
      pins.size > 0 ? checkPins(socket, pins, what) : undefined
    );
    try {
      await abortable(secured, signal);
    } catch (error) {
      socket.destroy();
      throw error;
    }
    try {
      socket.setNoDelay(true);
    } catch { /* not a TCP socket */ }
    return wrapSocket(socket, highWaterMark, graceMs);
  };
}
