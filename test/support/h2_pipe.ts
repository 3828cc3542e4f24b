/**
 * In-memory sockets for HTTP/2 core tests, beside `byte_pipe.ts`: a frame tap that counts the
 * pipe as closed only once it has read every byte written before the close (a final GOAWAY
 * written just before the socket closes is still seen), and a socket whose writes can be held
 * (a peer that stops reading), that counts what the connection read, and that can push instead
 * of being read (with pause/resume counted).
 *
 * @module
 */
import type { H2Socket } from "../../src/h2/socket.ts";
import { ConnectionError } from "../../src/h2/frames.ts";
import { Channel, channelSocket, encodeFrame, type Frame } from "./byte_pipe.ts";

export { Channel, channelSocket, encodeFrame, type Frame };

/**
 * The HTTP/2 error code `run` ends the connection with (a thrown {@linkcode ConnectionError}),
 * -1 for any other throw, `undefined` when it returns.
 */
export function codeOf(run: () => void): number | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof ConnectionError ? error.code : -1;
  }
  return undefined;
}

const PREFACE = new TextEncoder().encode("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");

/**
 * Reads the frames the other side writes into a {@linkcode Channel} (one reader for the pipe's
 * whole life), skipping a client preface at the start when asked.
 */
export class FrameTap {
  /** Frames no `expect` has taken yet, in order. */
  readonly frames: Frame[] = [];
  #buffer = new Uint8Array(0);
  #notify: (() => void) | undefined;
  #reading = false;
  #ended = false;

  constructor(readonly source: Channel, readonly skipPreface = false) {}

  /** Every byte written before the source closed has been read. */
  get closed(): boolean {
    return this.#ended;
  }

  /** Starts reading (`expect` does it too). */
  start(): void {
    if (this.#reading) return;
    this.#reading = true;
    void this.#pump();
  }

  async #pump(): Promise<void> {
    const chunk = new Uint8Array(65_536);
    let prefaceChecked = !this.skipPreface;
    for (;;) {
      const n = await this.source.read(chunk);
      if (n === null) break;
      const joined = new Uint8Array(this.#buffer.length + n);
      joined.set(this.#buffer);
      joined.set(chunk.subarray(0, n), this.#buffer.length);
      this.#buffer = joined;
      if (!prefaceChecked && this.#buffer.length >= PREFACE.length) {
        prefaceChecked = true;
        if (PREFACE.every((b, i) => this.#buffer[i] === b)) {
          this.#buffer = this.#buffer.subarray(PREFACE.length);
        }
      }
      while (prefaceChecked && this.#buffer.length >= 9) {
        const length = (this.#buffer[0] << 16) | (this.#buffer[1] << 8) | this.#buffer[2];
        if (this.#buffer.length < 9 + length) break;
        const view = new DataView(this.#buffer.buffer, this.#buffer.byteOffset);
        this.frames.push({
          type: this.#buffer[3],
          flags: this.#buffer[4],
          id: view.getUint32(5) & 0x7fffffff,
          payload: this.#buffer.slice(9, 9 + length),
        });
        this.#buffer = this.#buffer.subarray(9 + length);
      }
      this.#notify?.();
    }
    this.#ended = true;
    this.#notify?.();
  }

  /** Takes the first frame `match` accepts, waiting up to `waitMs` for one to arrive. */
  async expect(match: (f: Frame) => boolean, what: string, waitMs = 1_000): Promise<Frame> {
    this.start();
    const deadline = Date.now() + waitMs;
    for (;;) {
      const i = this.frames.findIndex(match);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.#ended) throw new Error(`connection closed while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
  }

  /** Resolves once the source has closed and every frame in it was read (or after `waitMs`). */
  async ended(waitMs = 1_000): Promise<boolean> {
    this.start();
    const deadline = Date.now() + waitMs;
    while (!this.#ended && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#notify = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    return this.#ended;
  }
}

/**
 * One end of a pipe for the connection under test: `incoming` carries what the scripted peer
 * sends, `outgoing` what the connection writes. Writes can be held (the peer stops reading):
 * a held write resolves, in order, on {@linkcode release}, and fails if the socket closes first.
 */
export class TestSocket {
  readonly incoming = new Channel();
  readonly outgoing = new Channel();
  /** Bytes the connection has read (pull mode). */
  bytesRead = 0;
  /** Reads the connection started (pull mode). */
  reads = 0;
  /** pause() and resume() calls (push mode). */
  pauses = 0;
  resumes = 0;
  paused = false;
  closed = false;
  /** Bytes written (accepted by write, held or not). */
  bytesWritten = 0;
  #holding = false;
  #held: { bytes: Uint8Array; resolve: () => void; reject: (e: Error) => void }[] = [];

  /** The socket the connection gets: read from (default), or pushing with pause/resume. */
  socket(mode: "pull" | "push" = "pull"): H2Socket {
    const socket: H2Socket = {
      write: (bytes) => this.#write(bytes),
      close: () => this.#close(),
    };
    if (mode === "pull") {
      socket.read = async (buffer) => {
        this.reads++;
        const n = await this.incoming.read(buffer);
        if (n !== null) this.bytesRead += n;
        return n;
      };
    } else {
      socket.pause = () => {
        this.pauses++;
        this.paused = true;
      };
      socket.resume = () => {
        this.resumes++;
        this.paused = false;
      };
    }
    return socket;
  }

  /** Sends bytes to the connection (pull mode). */
  send(bytes: Uint8Array): void {
    this.incoming.push(bytes);
  }

  /** From now on, writes wait until {@linkcode release}. */
  hold(): void {
    this.#holding = true;
  }

  /** Writes held so far. */
  get heldWrites(): number {
    return this.#held.length;
  }

  /** Lets held writes (and later ones) through. */
  release(): void {
    this.#holding = false;
    for (const w of this.#held.splice(0)) {
      this.outgoing.push(w.bytes);
      w.resolve();
    }
  }

  #write(bytes: Uint8Array): Promise<void> {
    if (this.closed) return Promise.reject(new Error("closed"));
    this.bytesWritten += bytes.length;
    if (this.#holding) {
      const copy = bytes.slice(); // the writer reuses its buffer once the write resolves
      return new Promise((resolve, reject) => this.#held.push({ bytes: copy, resolve, reject }));
    }
    this.outgoing.push(bytes);
    return Promise.resolve();
  }

  #close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const w of this.#held.splice(0)) w.reject(new Error("closed"));
    this.outgoing.close();
    this.incoming.close();
  }
}
