/**
 * A plain DNS upstream over UDP (RFC 1035 §4.2.1): each query from a socket of its own on a
 * random source port, with a random message ID, answered by the first datagram from the server
 * that matches both; a truncated answer is asked again over TCP.
 *
 * @module
 */
import { HEADER_LENGTH, MAX_MESSAGE_SIZE } from "../dns/constants.ts";
import { type Answer, answerWithId } from "../dns/answer.ts";
import { Flag } from "../dns/constants.ts";
import { getId, type MessageInfo, withId } from "../dns/message.ts";
import type { Query } from "../dns/query.ts";
import { InvalidAnswerError, validateAnswer } from "../dns/response.ts";
import type { Logger } from "../log/mod.ts";
import { messageOf } from "../errors/message_of.ts";
import { urlHost } from "./dot_url.ts";
import { PLAIN_DNS_PORT } from "./plain_url.ts";
import { upstreamFailure } from "./failure.ts";
import { type Upstream, UpstreamError } from "./types.ts";
import { positiveInteger } from "./authority.ts";
import { parseAddress } from "../net/cidr_set.ts";

/** One datagram as a {@linkcode DatagramSocket} received it. */
export interface Datagram {
  readonly data: Uint8Array;
  /** The sender's address and port. */
  readonly from: { readonly hostname: string; readonly port: number };
}

/**
 * A UDP socket bound to a random local port, for one query.
 *
 * - `send` sends one datagram to the address the socket was opened for.
 * - `receive` resolves with the next datagram from anyone (the caller checks the sender), and
 *   rejects once the socket is closed.
 * - `close` releases the port; safe to call more than once.
 */
export interface DatagramSocket {
  send(data: Uint8Array): Promise<void>;
  receive(): Promise<Datagram>;
  close(): void;
}

/** Opens a {@linkcode DatagramSocket} for the address family of `target.hostname`. */
export type DatagramOpener = (target: { hostname: string; port: number }) => DatagramSocket;

/** Options of {@linkcode UdpUpstream}. */
export interface UdpUpstreamOptions {
  /** The server's IP address (IPv6 without brackets). */
  hostname: string;
  /** Default 53. */
  port?: number;
  /** Opens the socket of one query; see `createDatagramOpener` in `src/deno/udp_socket.ts`. */
  open: DatagramOpener;
  /**
   * Asks the same server over TCP when its UDP answer is truncated (TC); closed with this
   * upstream. Unset: a truncated answer is an upstream error.
   */
  tcp?: Upstream;
  /** For logs, errors and metrics. Default `udp://host:port`. */
  name?: string;
  /** Send the query again after this long without a matching answer. Default 1 000 ms. */
  retransmitMs?: number;
  /** Debug events: datagrams ignored. */
  logger?: Logger;
  /** Source of message IDs, in [0, 1). Default `Math.random`. */
  random?: () => number;
}

/**
 * Same address, whatever the spelling (`::1` and `0:0:...:1` are one, and an IPv4-mapped
 * address is its IPv4 one): the usual identical text at once, else through the CIDR sets' parser.
 */
export function sameHost(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseAddress(a);
  return x !== undefined && x.toString() === parseAddress(b)?.toString();
}

/**
 * Sends queries to one plain DNS server over UDP.
 *
 * - Each exchange opens its own socket (the runtime picks a random source port) and sends a copy
 *   of the query with a random ID; it sends it again every `retransmitMs` until answered or its
 *   signal aborts (the resolver's deadline, a group's attempt timeout).
 * - An answer is the first datagram from the server's address and port that carries the ID and
 *   passes `validateAnswer` (a response, same question). Anything else (another sender, another
 *   ID, another question, a malformed message) is ignored, not taken as failure: over UDP anyone
 *   can send a datagram, and a forged one must not end the exchange.
 * - A truncated answer (TC) is asked again over `tcp`; the answer gets the client's ID back.
 *
 * Safe for concurrent use; never modifies `query.wire`. `close()` closes the TCP upstream.
 *
 * @example
 * ```ts
 * const u = parsePlainUrl("udp://192.168.1.1");
 * const upstream = new UdpUpstream({ ...u, name: u.display, open: createDatagramOpener() });
 * const answer = await upstream.exchange(query, AbortSignal.timeout(2000));
 * ```
 */
export class UdpUpstream implements Upstream {
  readonly name: string;
  readonly #hostname: string;
  readonly #port: number;
  readonly #open: DatagramOpener;
  readonly #tcp?: Upstream;
  readonly #retransmitMs: number;
  readonly #logger?: Logger;
  readonly #random: () => number;
  #closed = false;

  constructor(options: UdpUpstreamOptions) {
    if (!options.hostname) throw new TypeError("UDP upstream: hostname is required");
    const port = positiveInteger("UDP upstream", options.port, PLAIN_DNS_PORT, "port", 65535);
    this.#hostname = options.hostname;
    this.#port = port;
    this.name = options.name ?? `udp://${urlHost(options.hostname)}:${port}`;
    this.#open = options.open;
    this.#tcp = options.tcp;
    this.#retransmitMs = options.retransmitMs ?? 1_000;
    this.#logger = options.logger;
    this.#random = options.random ?? Math.random;
  }

  async exchange(query: Query, signal: AbortSignal): Promise<Answer> {
    if (this.#closed) throw new UpstreamError(this.name, "unavailable", "closed");
    if (signal.aborted) throw signal.reason;
    const size = query.wire.length;
    if (size < HEADER_LENGTH || size > MAX_MESSAGE_SIZE) {
      throw new RangeError(`upstream ${this.name}: cannot send a query of ${size} bytes`);
    }
    const id = Math.floor(this.#random() * 0x10000) & 0xffff;
    const wire = withId(query.wire, id);
    let answer: { wire: Uint8Array; info: MessageInfo };
    try {
      answer = await this.#ask(query, wire, id, signal);
    } catch (error) {
      if (signal.aborted) throw signal.reason;
      throw upstreamFailure(this.name, error);
    }
    if (answer.info.flags & Flag.TC) {
      if (!this.#tcp) {
        throw new UpstreamError(this.name, "bad-answer", "truncated answer and no TCP to retry");
      }
      return this.#tcp.exchange(query, signal);
    }
    return answerWithId(answer, query.info.id);
  }

  /** One query on a socket of its own: send, resend, take the first matching datagram. */
  async #ask(
    query: Query,
    wire: Uint8Array,
    id: number,
    signal: AbortSignal,
  ): Promise<{ wire: Uint8Array; info: MessageInfo }> {
    const socket = this.#open({ hostname: this.#hostname, port: this.#port });
    const onAbort = () => socket.close();
    signal.addEventListener("abort", onAbort, { once: true });
    let resend: ReturnType<typeof setInterval> | undefined;
    try {
      await socket.send(wire);
      resend = setInterval(() => {
        socket.send(wire).catch(() => {}); // the receive loop sees a closed socket
      }, this.#retransmitMs);
      for (;;) {
        const { data, from } = await socket.receive();
        if (from.port !== this.#port || !sameHost(from.hostname, this.#hostname)) {
          this.#ignored("another sender");
          continue;
        }
        if (data.length < HEADER_LENGTH || getId(data) !== id) {
          this.#ignored("another id");
          continue;
        }
        try {
          return { wire: data, info: validateAnswer(query.info, data, id) };
        } catch (error) {
          if (!(error instanceof InvalidAnswerError)) throw error;
          this.#ignored(messageOf(error));
        }
      }
    } finally {
      clearInterval(resend);
      signal.removeEventListener("abort", onAbort);
      socket.close();
    }
  }

  #ignored(reason: string): void {
    this.#logger?.debug("udp datagram ignored", { upstream: this.name, reason });
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#tcp?.close();
  }
}
