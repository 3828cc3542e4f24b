/**
 * The bodies that wait for the peer's flow-control window: which streams have one, how many
 * octets they hold together (capped), and since when each has waited without progress (the
 * read deadline resets a body stalled for too long). The connection core (`connection.ts`)
 * parks what the windows (`OutFlow` in `flow.ts`) do not let it send, and resends it
 * on WINDOW_UPDATE and SETTINGS.
 *
 * @module
 */
/** What parking keeps on each stream (a part of `H2Stream`). */
export interface ParkedStream {
  /** Body bytes not yet sent (waiting for window); `undefined` when none are left. */
  pending: Uint8Array | undefined;
  /**
   * While `pending` waits for the peer's window: when it began waiting, or last made progress
   * (ms); 0 while nothing waits. Start 0.
   */
  stalledSince: number;
}

/**
 * The parked bodies of one connection, at most `maxBytes` octets together.
 *
 * @example
 * ```ts
 * const parked = new ParkedBodies<Stream>(1024 * 1024);
 * if (!parked.park(stream, rest, clock.now())) resetStream(stream); // over the cap
 * // on WINDOW_UPDATE:
 * if (parked.size > 0) for (const s of parked.takeAll()) sendBody(s);
 * ```
 */
export class ParkedBodies<S extends ParkedStream> {
  /** Streams whose body waits for window, in the order they began waiting. */
  #streams: S[] = [];
  /** Octets of the bodies waiting (the `pending` of the streams with `stalledSince`). */
  #bytes = 0;

  /** @param maxBytes octets that may wait, all streams together */
  constructor(readonly maxBytes: number) {}

  /** Octets waiting now. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Streams waiting now. */
  get size(): number {
    return this.#streams.length;
  }

  /**
   * Keeps `body` as `stream`'s pending body, waiting since `since` (ms), unless the octets
   * waiting would pass `maxBytes`: then it keeps nothing and returns false (the caller resets
   * the stream and lets go of it with {@linkcode unpark}).
   */
  park(stream: S, body: Uint8Array, since: number): boolean {
    if (this.#bytes + body.length > this.maxBytes) return false;
    stream.pending = body;
    this.#bytes += body.length;
    stream.stalledSince = since;
    if (!this.#streams.includes(stream)) this.#streams.push(stream);
    return true;
  }

  /**
   * Takes `stream`'s parked body out of the count before it is sent again (it is parked again,
   * with {@linkcode park}, if the windows still hold part of it back). Returns when it began
   * waiting, or 0 when it was not waiting.
   */
  resume(stream: S): number {
    const since = stream.stalledSince;
    if (since !== 0) {
      this.#bytes -= stream.pending!.length;
      stream.stalledSince = 0;
    }
    return since;
  }

  /** Drops what `stream` has waiting to be sent (it will never be). */
  unpark(stream: S): void {
    if (stream.stalledSince !== 0 && stream.pending !== undefined) {
      this.#bytes -= stream.pending.length;
    }
    stream.pending = undefined;
    stream.stalledSince = 0;
    const i = this.#streams.indexOf(stream);
    if (i >= 0) this.#streams.splice(i, 1);
  }

  /**
   * Hands over the streams that wait, emptying the list: the caller sends again what the
   * windows now allow, and parks the rest again.
   */
  takeAll(): S[] {
    const streams = this.#streams;
    this.#streams = [];
    return streams;
  }

  /** When the longest wait without progress began (ms); `Infinity` when nothing waits. */
  earliestStall(): number {
    let earliest = Infinity;
    for (const stream of this.#streams) {
      if (stream.stalledSince !== 0 && stream.stalledSince < earliest) {
        earliest = stream.stalledSince;
      }
    }
    return earliest;
  }

  /** The streams whose body has waited without progress for `timeoutMs` or more at `now`. */
  stalled(now: number, timeoutMs: number): S[] {
    return this.#streams.filter((s) => s.stalledSince !== 0 && now - s.stalledSince >= timeoutMs);
  }
}
