/**
 * The reading side of one HTTP/2 connection: the bytes its socket delivers, read from it (an
 * {@linkcode H2Socket} with `read`) or pushed in (one that raises events), checked for the
 * client preface on a server, and cut into frames for the connection core (`connection.ts`).
 * Reading is held while the connection's outbox is over its high-water mark: the read loop
 * waits, a pushing socket is paused.
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";
import { type FrameHandler, FrameReader, PREFACE } from "./frames.ts";
import type { H2Socket } from "./socket.ts";

/** Where the input goes; the connection core supplies it. */
export interface InputHandler {
  /** One frame (a view valid during the call); return false to stop. May throw. */
  readonly frame: FrameHandler;
  /** Every frame of one chunk of input was handled. */
  framesRead(): void;
  /** The bytes are not an HTTP/2 client preface. */
  notPreface(): void;
  /** The peer closed its side. */
  peerClosed(): void;
  /** A frame broke the protocol (a `ConnectionError`), or reading failed. */
  failed(error: unknown): void;
}

/**
 * One connection's input. The core calls {@linkcode pull} once for a socket that is read from,
 * or {@linkcode push} and {@linkcode pushEnd} from a pushing socket's events; and
 * {@linkcode stop} when the connection ends.
 *
 * @example
 * ```ts
 * const input = new FrameInput(handler, true); // a server: the client preface comes first
 * if (socket.read) input.pull(socket.read.bind(socket), [4_096, 32_768]);
 * else socket.on("data", (bytes) => input.push(bytes)); // an edge's push
 * ```
 */
export class FrameInput {
  readonly #handler: InputHandler;
  readonly #reader = new FrameReader();
  /** What arrived of the client preface so far (`undefined` once checked, or not expected). */
  #preface: Uint8Array | undefined;
  #socket: H2Socket | undefined;
  #stopped = false;
  /** Reading is held: the outbox is over its high-water mark. */
  #paused = false;
  /** Resumes a read loop held by `#paused`. */
  #resumeRead: (() => void) | undefined;

  /** @param expectPreface whether the client preface comes first (a server) */
  constructor(handler: InputHandler, expectPreface: boolean) {
    this.#handler = handler;
    if (expectPreface) this.#preface = new Uint8Array(0);
  }

  /** Bytes a pushing socket received (valid only during the call). */
  push(data: Uint8Array): void {
    if (this.#stopped) return;
    try {
      this.#take(data);
    } catch (error) {
      this.#handler.failed(error);
    }
  }

  /** A pushing socket's peer closed its side, or its read failed with `error`. */
  pushEnd(error?: Error): void {
    if (this.#stopped) return;
    if (error) return this.#handler.failed(error);
    this.#handler.peerClosed();
  }

  /**
   * Reads with `read` (a socket's) until it ends or the input stops, into a buffer of `initial`
   * octets that doubles up to `max` when reads fill it (an idle connection pins its pending
   * read's buffer: start small where connections are many).
   */
  async pull(
    read: (buffer: Uint8Array) => Promise<number | null>,
    [initial, max]: readonly [number, number],
  ): Promise<void> {
    let buffer = new Uint8Array(initial);
    try {
      for (;;) {
        if (this.#paused) {
          await new Promise<void>((resolve) => (this.#resumeRead = resolve));
          if (this.#stopped) return;
        }
        const n = await read(buffer);
        if (n === null) return this.#handler.peerClosed();
        if (this.#stopped) return;
        this.#take(buffer.subarray(0, n));
        if (this.#stopped) return;
        if (n === buffer.length && buffer.length < max) buffer = new Uint8Array(buffer.length * 2);
      }
    } catch (error) {
      this.#handler.failed(error);
    }
  }

  /** The socket whose input is held and resumed (a pushing socket's `pause` and `resume`). */
  attach(socket: H2Socket): void {
    this.#socket = socket;
  }

  /** The outbox is over its high-water mark: read no more until {@linkcode resume}. */
  pause(): void {
    if (this.#paused || this.#stopped) return;
    this.#paused = true;
    this.#socket?.pause?.();
  }

  /** The outbox drained: read again. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    if (!this.#stopped) this.#socket?.resume?.();
    const resume = this.#resumeRead;
    this.#resumeRead = undefined;
    resume?.();
  }

  /** The connection ended: nothing more is read (a held read loop lets go). */
  stop(): void {
    if (this.#stopped) return;
    this.#stopped = true;
    this.resume();
  }

  /** Checks the client preface (server side), then cuts `data` into frames. */
  #take(data: Uint8Array): void {
    const preface = this.#preface;
    if (preface) {
      const seen = concatBytes([preface, data], preface.length + data.length);
      const part = seen.subarray(0, Math.min(seen.length, PREFACE.length));
      if (part.some((b, i) => b !== PREFACE[i])) return this.#handler.notPreface();
      if (seen.length < PREFACE.length) {
        this.#preface = seen;
        return;
      }
      this.#preface = undefined;
      data = seen.subarray(PREFACE.length);
    }
    this.#reader.feed(data, this.#handler.frame);
    if (!this.#stopped) this.#handler.framesRead();
  }
}
