/**
 * A raw HTTP/2 client over real TLS for hostile-client tests: it writes whatever frames a test
 * builds (header bombs, CONTINUATION floods, streams left open) and records every frame the
 * server sends back, with the `:status` of each response decoded.
 *
 * @module
 */
import { FrameReader, FrameType, PREFACE } from "../../src/h2/frames.ts";
import { HpackDecoder } from "../../src/h2/hpack_decode.ts";
import { pushInt, pushString } from "../../src/h2/hpack_encode.ts";
import { frameHeader } from "../../src/h2/outbox.ts";

/** One frame the server sent. */
export interface Frame {
  readonly type: number;
  readonly flags: number;
  readonly id: number;
  readonly payload: Uint8Array;
}

/** An HPACK block builder: static-table references and literals, as a hostile client likes. */
export class Block {
  readonly #out: number[] = [];

  /** An indexed field (static 1–61, dynamic from 62). */
  indexed(index: number): this {
    pushInt(this.#out, index, 7, 0x80);
    return this;
  }

  /** A literal without indexing, name from the static table. */
  literal(nameIndex: number, value: string): this {
    pushInt(this.#out, nameIndex, 4, 0x00);
    pushString(this.#out, value);
    return this;
  }

  /** A literal with a new name, added to the peer's dynamic table (incremental indexing). */
  indexedLiteral(name: string, value: string): this {
    this.#out.push(0x40);
    pushString(this.#out, name);
    pushString(this.#out, value);
    return this;
  }

  /** `:method GET`, `:scheme https`, `:path`, `:authority localhost`. */
  get(path: string): this {
    return this.indexed(2).indexed(7).literal(4, path).literal(1, "localhost");
  }

  /** `:method POST` and the rest, with a DNS content type and `content-length`. */
  post(path: string, length: number): this {
    return this.indexed(3).indexed(7).literal(4, path).literal(1, "localhost")
      .literal(31, "application/dns-message").literal(28, String(length));
  }

  get length(): number {
    return this.#out.length;
  }

  bytes(): Uint8Array {
    return Uint8Array.from(this.#out);
  }
}

/** Encodes one frame. */
export function frame(
  type: number,
  flags: number,
  id: number,
  payload: Uint8Array = new Uint8Array(0),
) {
  const out = new Uint8Array(9 + payload.length);
  frameHeader(out, 0, payload.length, type, flags, id);
  out.set(payload, 9);
  return out;
}

/** A SETTINGS payload: identifier and value pairs, in order (repeats allowed). */
export function settingsPayload(entries: readonly (readonly [number, number])[]): Uint8Array {
  const out = new Uint8Array(entries.length * 6);
  const view = new DataView(out.buffer);
  entries.forEach(([key, value], i) => {
    view.setUint16(i * 6, key);
    view.setUint32(i * 6 + 2, value);
  });
  return out;
}

/** One client connection. */
export class RawH2 {
  readonly frames: Frame[] = [];
  /** `:status` of each stream's response, by stream ID. */
  readonly statuses = new Map<number, string>();
  /** Resolves when the server closed the connection (or it failed). */
  readonly closed: Promise<void>;
  closedAt: number | undefined;
  readonly #conn: Deno.TlsConn;
  readonly #decoder = new HpackDecoder();
  #waiters: (() => void)[] = [];

  private constructor(conn: Deno.TlsConn) {
    this.#conn = conn;
    this.closed = this.#read();
  }

  /**
   * Connects over TLS with ALPN `h2` and sends the preface and a SETTINGS frame with `settings`
   * (none by default).
   */
  static async open(
    port: number,
    caCert: string,
    settings: readonly (readonly [number, number])[] = [],
  ): Promise<RawH2> {
    const conn = await Deno.connectTls({
      hostname: "localhost",
      port,
      caCerts: [caCert],
      alpnProtocols: ["h2"],
    });
    const info = await conn.handshake();
    if (info.alpnProtocol !== "h2") throw new Error(`ALPN ${info.alpnProtocol}`);
    const client = new RawH2(conn);
    await client.write(PREFACE, frame(FrameType.Settings, 0, 0, settingsPayload(settings)));
    return client;
  }

  /** Writes the byte strings in one write; false once the connection is gone. */
  async write(...parts: Uint8Array[]): Promise<boolean> {
    const size = parts.reduce((n, p) => n + p.length, 0);
    const bytes = new Uint8Array(size);
    let at = 0;
    for (const p of parts) {
      bytes.set(p, at);
      at += p.length;
    }
    try {
      for (let done = 0; done < bytes.length;) done += await this.#conn.write(bytes.subarray(done));
      return true;
    } catch {
      return false;
    }
  }

  /** The first frame matching `test`, waiting for it at most `ms`; undefined if none came. */
  async waitFor(test: (f: Frame) => boolean, ms: number): Promise<Frame | undefined> {
    const deadline = Date.now() + ms;
    for (;;) {
      const found = this.frames.find(test);
      if (found || this.closedAt !== undefined || Date.now() >= deadline) return found;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, deadline - Date.now());
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The GOAWAY frame's error code, if one came. */
  goawayCode(): number | undefined {
    const goaway = this.frames.find((f) => f.type === FrameType.Goaway);
    return goaway && new DataView(goaway.payload.buffer, goaway.payload.byteOffset).getUint32(4);
  }

  close(): void {
    try {
      this.#conn.close();
    } catch { /* closed */ }
  }

  async #read(): Promise<void> {
    const reader = new FrameReader();
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.#conn.read(buffer);
        if (n === null) break;
        reader.feed(buffer.subarray(0, n), (type, flags, id, payload) => {
          const f = { type, flags, id, payload: payload.slice() };
          this.frames.push(f);
          if (type === FrameType.Headers) {
            this.#decoder.decode(f.payload, (name, value) => {
              if (name === ":status") this.statuses.set(id, value);
            });
          }
        });
        this.#wake();
      }
    } catch { /* reset by the server */ }
    this.closedAt = Date.now();
    this.#wake();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
