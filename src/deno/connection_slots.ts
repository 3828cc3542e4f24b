/**
 * The accept-time rules every listener applies, in one place: shutdown, `--max-connections`,
 * `--max-connections-per-ip` and the ACL, with the per-client accounting behind them. A client
 * is counted as the rate limits count it ({@linkcode clientKey}): an IPv4 address, or an IPv6
 * /64, since one host usually holds a whole /64 and could otherwise open the cap's worth of
 * connections from each of its addresses.
 *
 * @module
 */
import { clientKey } from "../resolver/ratelimit.ts";

/** Why a new connection was refused at accept. */
export type Refusal = "shutdown" | "max-connections" | "max-connections-per-ip" | "acl";

/** Limits of {@linkcode ConnectionSlots}. */
export interface SlotLimits {
  /** Default 10 000. */
  maxConnections?: number;
  /** 0 or unset: no per-client cap (IPv4 address, IPv6 /64). */
  maxConnectionsPerIp?: number;
  /** Refuses addresses this rejects (ACL). */
  accept?: (address: string) => boolean;
}

/**
 * Connection slots: {@linkcode take} one per accepted connection and call its `release` when
 * the connection is gone.
 *
 * @example
 * ```ts
 * const slots = new ConnectionSlots({ maxConnections: 100, maxConnectionsPerIp: 2 });
 * const slot = slots.take("2001:db8::1", false); // counts against 2001:db8::/64
 * if ("refused" in slot) console.log(slot.refused);
 * else socket.once("close", slot.release);
 * ```
 */
export class ConnectionSlots {
  readonly #max: number;
  readonly #maxPerIp: number;
  readonly #accept?: (address: string) => boolean;
  readonly #perIp = new Map<string, number>();
  #open = 0;

  constructor(limits: SlotLimits) {
    this.#max = limits.maxConnections ?? 10_000;
    this.#maxPerIp = limits.maxConnectionsPerIp ?? 0;
    this.#accept = limits.accept;
  }

  /** Slots held now. */
  get open(): number {
    return this.#open;
  }

  /**
   * A slot for a connection from `address`, or why there is none (`closing`: the listener is
   * shutting down). `release` frees the slot; calling it again does nothing.
   *
   * @param forwarder `address` is a trusted HTTP proxy's, whose connections carry many clients
   *   known only per request: it takes a slot of `maxConnections`, but neither the per-client
   *   cap nor the ACL applies to it (the DoH face judges each request's client instead)
   */
  take(
    address: string,
    closing: boolean,
    forwarder = false,
  ): { release: () => void } | { refused: Refusal } {
    if (closing) return { refused: "shutdown" };
    if (this.#open >= this.#max) return { refused: "max-connections" };
    const key = forwarder || this.#maxPerIp === 0 ? undefined : clientKey(address);
    const held = key === undefined ? 0 : this.#perIp.get(key) ?? 0;
    if (key !== undefined && held >= this.#maxPerIp) return { refused: "max-connections-per-ip" };
    if (!forwarder && this.#accept && !this.#accept(address)) return { refused: "acl" };
    this.#open++;
    if (key !== undefined) this.#perIp.set(key, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        if (key === undefined) return;
        const n = (this.#perIp.get(key) ?? 1) - 1;
        if (n > 0) this.#perIp.set(key, n);
        else this.#perIp.delete(key);
      },
    };
  }
}
