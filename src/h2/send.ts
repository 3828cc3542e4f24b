/**
 * The sending side of one HTTP/2 connection's streams, in the manner of the h2 crate's
 * `proto/streams/send.rs`: header blocks cut to the peer's frame size (HEADERS, then
 * CONTINUATION), and bodies sent as DATA as far as the peer's windows (`flow.ts`) allow, the
 * rest parked until they open (`parked.ts`). It queues frames on the connection's outbox; the
 * connection core (`connection.ts`) tells the side what came of a body.
 *
 * @module
 */
import { type H2Clock, SYSTEM_CLOCK } from "./clock.ts";
import { type FlowStream, OutFlow } from "./flow.ts";
import { DEFAULT_MAX_FRAME_SIZE, Flag, FrameType } from "./frames.ts";
import type { FrameOutbox } from "./outbox.ts";
import { ParkedBodies, type ParkedStream } from "./parked.ts";

/** What {@linkcode StreamSender.body} did with a stream's body. */
export type BodyOutcome =
  /** All of it is queued, the last DATA frame with END_STREAM. */
  | "sent"
  /** Some waits for the peer's window (parked). */
  | "parked"
  /**
   * Some had to wait, but the bytes parked would have gone over the cap: the rest is left in
   * `pending`, not counted (drop it with `ParkedBodies.unpark`), and the stream must be reset.
   */
  | "refused";

/**
 * Sends the header blocks and bodies of one connection's streams.
 *
 * @example
 * ```ts
 * const sender = new StreamSender(outbox, 1024 * 1024);
 * sender.headers(stream.id, block, false);
 * stream.pending = body;
 * if (sender.body(stream) === "refused") resetStream(stream);
 * ```
 */
export class StreamSender<S extends FlowStream & ParkedStream & { readonly id: number }> {
  /** The peer's SETTINGS_MAX_FRAME_SIZE. */
  maxFrame = DEFAULT_MAX_FRAME_SIZE;
  /** The windows the peer grants. */
  readonly flow: OutFlow = new OutFlow();
  /** The bodies waiting for them. */
  readonly parked: ParkedBodies<S>;
  readonly #outbox: FrameOutbox;
  readonly #clock: H2Clock;

  /**
   * @param outbox where the frames go
   * @param maxParkedBytes body octets that may wait for window, all streams together
   */
  constructor(outbox: FrameOutbox, maxParkedBytes: number, clock: H2Clock = SYSTEM_CLOCK) {
    this.#outbox = outbox;
    this.parked = new ParkedBodies(maxParkedBytes);
    this.#clock = clock;
  }

  /** Queues a header block, as HEADERS plus CONTINUATION when it exceeds the peer's frame size. */
  headers(id: number, block: Uint8Array, endStream: boolean): void {
    const end = endStream ? Flag.EndStream : 0;
    const max = this.maxFrame;
    if (block.length <= max) {
      this.#outbox.emit(FrameType.Headers, Flag.EndHeaders | end, id, block);
      return;
    }
    for (let at = 0; at < block.length; at += max) {
      const part = block.subarray(at, at + max);
      const last = at + max >= block.length ? Flag.EndHeaders : 0;
      if (at === 0) this.#outbox.emit(FrameType.Headers, end | last, id, part);
      else this.#outbox.emit(FrameType.Continuation, last, id, part);
    }
  }

  /**
   * Queues as much of `stream.pending` as the windows allow, the last DATA frame with
   * END_STREAM (an empty body is one empty frame, which needs no window), and parks the rest.
   * A body parked before that sends nothing now keeps waiting since it began; one that sends
   * some begins its wait again.
   */
  body(stream: S): BodyOutcome {
    let body = stream.pending!;
    // A parked body is taken out of the count while it is sent, and parked again if need be.
    const since = this.parked.resume(stream);
    let sent = 0;
    for (;;) {
      const room = this.flow.room(stream, this.maxFrame);
      if (body.length > 0 && room <= 0) {
        const waiting = sent === 0 && since !== 0 ? since : this.#clock.now();
        if (this.parked.park(stream, body, waiting)) return "parked";
        stream.pending = body;
        return "refused";
      }
      const n = Math.min(body.length, Math.max(0, room));
      const last = n === body.length;
      // The usual body (a DNS answer) fits one frame: no views made for it.
      const part = last ? body : body.subarray(0, n);
      this.#outbox.emit(FrameType.Data, last ? Flag.EndStream : 0, stream.id, part);
      this.flow.spend(stream, n);
      sent += n;
      if (last) break;
      body = body.subarray(n);
    }
    stream.pending = undefined;
    return "sent";
  }
}
