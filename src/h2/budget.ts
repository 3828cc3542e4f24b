/**
 * A token bucket over a time window, for the frames a peer may send often but not endlessly
 * (RST_STREAM, SETTINGS): `burst` at once, then `perSecond` on average. The caller passes the
 * time, so the bucket needs no clock and no timer: it refills when asked.
 *
 * This is how nghttp2 bounds stream resets since CVE-2023-44487 (`stream_reset_burst` and
 * `stream_reset_rate`, 1 000 and 33 a second by default); a count with no time window lets a
 * peer go on for ever at any ratio under its limit.
 *
 * @module
 */

/**
 * Tokens that come back with time.
 *
 * @example
 * ```ts
 * const resets = new TokenBucket(400, 40, Date.now());
 * if (!resets.take(Date.now())) throw new Error("too many stream resets");
 * ```
 */
export class TokenBucket {
  #tokens: number;
  /** When the tokens were last counted (ms). */
  #at: number;

  /** Starts full at time `now` (ms): `burst` tokens, refilled at `perSecond`, never above `burst`. */
  constructor(readonly burst: number, readonly perSecond: number, now: number) {
    this.#tokens = burst;
    this.#at = now;
  }

  /** Takes one token at time `now` (ms); false, taking none, when none is left. */
  take(now: number): boolean {
    if (now > this.#at) {
      this.#tokens = Math.min(
        this.burst,
        this.#tokens + ((now - this.#at) * this.perSecond) / 1000,
      );
      this.#at = now;
    }
    if (this.#tokens < 1) return false;
    this.#tokens--;
    return true;
  }
}
