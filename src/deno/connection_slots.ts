/**
 * The accept-time rules every listener applies, in one place: shutdown, `--max-connections`,
 * `--max-connections-per-ip` and the ACL, with the per-address accounting behind them.
 *
 * @module
 */

/** Why a new connection was refused at accept. */
export type Refusal = "shutdown" | "max-connections" | "max-connections-per-ip" | "acl";

/** Limits of {@linkcode ConnectionSlots}. */
export interface SlotLimits {
  /** Default 10 000. */
  maxConnections?: number;
  /** 0 or unset: no per-address cap. */
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
 * const slot = slots.take("192.0.2.1", false);
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
   */
  take(address: string, closing: boolean): { release: () => void } | { refused: Refusal } {
    const held = this.#perIp.get(address) ?? 0;
    if (closing) return { refused: "shutdown" };
    if (this.#open >= this.#max) return { refused: "max-connections" };
    if (this.#maxPerIp > 0 && held >= this.#maxPerIp) return { refused: "max-connections-per-ip" };
    if (this.#accept && !this.#accept(address)) return { refused: "acl" };
    this.#open++;
    this.#perIp.set(address, held + 1);
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.#open--;
        const n = (this.#perIp.get(address) ?? 1) - 1;
        if (n > 0) this.#perIp.set(address, n);
        else this.#perIp.delete(address);
      },
    };
  }
}
