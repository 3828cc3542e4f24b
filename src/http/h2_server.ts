/**
 * The server side of one HTTP/2 connection (RFC 9113), cut to what a DoH face needs: requests
 * with small bodies, answered by a handler, with the limits a public service needs (concurrent
 * streams, header and body sizes, reset floods, idle connections).
 *
 * Runtime-free, over an {@linkcode H2Socket} (a TLS connection that negotiated ALPN `h2`); the
 * Deno edge (`src/deno/doh_listener_native.ts`) accepts connections and supplies the handler.
 * Shares the frame outbox and the HPACK decoder with the upstream client (`src/upstream/h2/`).
 * Responses are encoded with static-table references and literals only, so the client's decoder
 * needs no table state from us.
 *
 * @module
 */
import { concatBytes } from "../bytes/concat.ts";
import type { H2Socket } from "../upstream/h2/connection.ts";
import {
  Code,
  ConnectionError,
  Flag,
  FrameReader,
  FrameType,
  PREFACE,
  u32,
} from "../upstream/h2/frames.ts";
import { HpackDecoder, HpackError, pushInt } from "../upstream/h2/hpack.ts";
import { FrameOutbox } from "../upstream/h2/outbox.ts";

/** One request, complete (headers and body). */
export interface H2ServerRequest {
  readonly method: string;
  /** `:path`: path and query. */
  readonly path: string;
  readonly authority: string;
  /** Regular header fields, names in lower case, in order. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array | undefined;
  /** Aborts when the client resets the stream or the connection goes. */
  readonly signal: AbortSignal;
}

/** A complete response. */
export interface H2ServerReply {
  readonly status: number;
  /** Lower-case names; connection-specific fields are dropped. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

/** Answers one request; a rejection becomes a 500. */
export type H2Handler = (request: H2ServerRequest) => Promise<H2ServerReply>;

/** Options of {@linkcode H2ServerConnection}. */
export interface H2ServerOptions {
  /** Streams a client may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS). Default 128. */
  maxStreams?: number;
  /** Largest request body; larger gets 413. Default 65 535 (the largest DNS message). */
  maxBodyBytes?: number;
  /** Largest request header block. Default 16 KiB. */
  maxHeaderBytes?: number;
  /** Closed after this long with no stream open. Default 30 000 ms. */
  idleTimeoutMs?: number;
  /** Called once when the connection is gone. */
  onClose?: (reason: string) => void;
}

const encoder = new TextEncoder();

const {
  Data: DATA,
  Headers: HEADERS,
  RstStream: RST_STREAM,
  Settings: SETTINGS,
  PushPromise: PUSH_PROMISE,
  Ping: PING,
  Goaway: GOAWAY,
  WindowUpdate: WINDOW_UPDATE,
  Continuation: CONTINUATION,
} = FrameType;
const { EndStream: END_STREAM, Ack: ACK, EndHeaders: END_HEADERS, Padded: PADDED } = Flag;
const {
  NoError: NO_ERROR,
  ProtocolError: PROTOCOL_ERROR,
  FlowControlError: FLOW_CONTROL_ERROR,
  StreamClosed: STREAM_CLOSED,
  FrameSizeError: FRAME_SIZE_ERROR,
  RefusedStream: REFUSED_STREAM,
  CompressionError: COMPRESSION_ERROR,
  EnhanceYourCalm: ENHANCE_YOUR_CALM,
} = Code;

const CONNECTION_WINDOW = 16 * 1024 * 1024;
/** Static-table indexes of `:status` values (RFC 7541 Appendix A). */
const STATUS_INDEX: Record<number, number> = {
  200: 8,
  204: 9,
  206: 10,
  304: 11,
  400: 12,
  404: 13,
  500: 14,
};
/** Fields that must not appear in HTTP/2 (RFC 9113 §8.2.2). */
const CONNECTION_FIELDS = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
]);

interface Stream {
  readonly id: number;
  method: string;
  path: string;
  authority: string;
  headers: [string, string][];
  chunks: Uint8Array[];
  size: number;
  /** The client ended its side. */
  ended: boolean;
  /** We answered or reset it. */
  done: boolean;
  readonly controller: AbortController;
  sendWindow: number;
  /** Response body not yet sent (waiting for window). */
  pending: Uint8Array | undefined;
}

function pushString(out: number[], value: string): void {
  // Header values are ASCII in practice: skip the encoder for them.
  let ascii = true;
  for (let i = 0; i < value.length && ascii; i++) ascii = value.charCodeAt(i) < 0x80;
  if (ascii) {
    pushInt(out, value.length, 7, 0);
    for (let i = 0; i < value.length; i++) out.push(value.charCodeAt(i));
    return;
  }
  const bytes = encoder.encode(value);
  pushInt(out, bytes.length, 7, 0);
  for (const b of bytes) out.push(b);
}

/** Static-table name indexes for the fields a DoH answer carries (RFC 7541 Appendix A). */
const NAME_INDEX: Record<string, number> = {
  "cache-control": 24,
  "content-length": 28,
  "content-type": 31,
  "date": 33,
  "etag": 34,
  "location": 46,
  "vary": 59,
};

/** Encoded fields by `name\0value`: DoH answers repeat a handful of them. */
const FIELD_CACHE = new Map<string, Uint8Array>();

function encodeField(name: string, value: string): Uint8Array {
  const key = name + "\0" + value;
  let bytes = FIELD_CACHE.get(key);
  if (!bytes) {
    const out: number[] = [];
    const index = NAME_INDEX[name];
    if (index !== undefined) pushInt(out, index, 4, 0); // literal without indexing, known name
    else {
      out.push(0x00); // literal without indexing, new name
      pushString(out, name);
    }
    pushString(out, value);
    bytes = Uint8Array.from(out);
    if (FIELD_CACHE.size >= 512) FIELD_CACHE.clear();
    FIELD_CACHE.set(key, bytes);
  }
  return bytes;
}

/** A response header block: `:status` then literals without indexing. */
export function encodeResponseHead(
  status: number,
  headers: readonly (readonly [string, string])[],
): Uint8Array {
  const parts: Uint8Array[] = [];
  const index = STATUS_INDEX[status];
  if (index !== undefined) parts.push(Uint8Array.of(0x80 | index));
  else {
    const out: number[] = [];
    pushInt(out, 8, 4, 0); // literal without indexing, name :status
    pushString(out, String(status));
    parts.push(Uint8Array.from(out));
  }
  let size = parts[0].length;
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (CONNECTION_FIELDS.has(lower)) continue;
    const field = encodeField(lower, value);
    parts.push(field);
    size += field.length;
  }
  return concatBytes(parts, size);
}

/**
 * One server-side HTTP/2 connection. Create it once the TLS handshake agreed on `h2`; it reads
 * until the client leaves, an error ends it, or {@linkcode shutdown} finishes.
 */
export class H2ServerConnection {
  readonly #socket: H2Socket;
  readonly #handler: H2Handler;
  readonly #maxStreams: number;
  readonly #maxBody: number;
  readonly #maxHeader: number;
  readonly #idleMs: number;
  readonly #onClose?: (reason: string) => void;
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, Stream>();
  readonly #outbox: FrameOutbox;
  #blocked: Stream[] = [];
  #lastId = 0;
  #peerInitialWindow = 65_535;
  #peerMaxFrame = 16_384;
  #sendWindow = 65_535;
  #received = 0;
  #continuation: { id: number; endStream: boolean; parts: Uint8Array[]; size: number } | undefined;
  #resets = 0;
  #opened = 0;
  #draining = false;
  #closed = false;
  #idleTimer: ReturnType<typeof setTimeout> | undefined;
  #resolveClosed!: () => void;
  readonly #closedPromise = new Promise<void>((resolve) => (this.#resolveClosed = resolve));

  constructor(socket: H2Socket, handler: H2Handler, options: H2ServerOptions = {}) {
    this.#socket = socket;
    this.#handler = handler;
    this.#maxStreams = options.maxStreams ?? 128;
    this.#maxBody = options.maxBodyBytes ?? 65_535;
    this.#maxHeader = options.maxHeaderBytes ?? 16 * 1024;
    this.#idleMs = options.idleTimeoutMs ?? 30_000;
    this.#onClose = options.onClose;
    this.#outbox = new FrameOutbox(
      (error) => this.#close(`write failed: ${error.message}`),
      () => this.#closeIfDone(),
    );
    this.#outbox.attach(socket);
    const settings = new Uint8Array(12);
    const view = new DataView(settings.buffer);
    view.setUint16(0, 0x3); // MAX_CONCURRENT_STREAMS
    view.setUint32(2, this.#maxStreams);
    view.setUint16(6, 0x6); // MAX_HEADER_LIST_SIZE
    view.setUint32(8, this.#maxHeader);
    this.#outbox.emit(SETTINGS, 0, 0, settings);
    this.#outbox.emit(WINDOW_UPDATE, 0, 0, u32(CONNECTION_WINDOW - 65_535));
    this.#armIdle();
    this.#read();
  }

  /** Streams being answered. */
  get activeStreams(): number {
    return this.#streams.size;
  }

  /**
   * Graceful close: GOAWAY with the last stream taken, no new streams, and the connection
   * closes once the open ones are answered (or after `graceMs`).
   */
  shutdown(graceMs: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    if (!this.#draining) {
      this.#draining = true;
      this.#outbox.emit(GOAWAY, 0, 0, this.#goaway(NO_ERROR));
    }
    const timer = setTimeout(() => this.#close("shutdown"), graceMs);
    this.#closeIfDone();
    return this.#closedPromise.finally(() => clearTimeout(timer));
  }

  /** Closes now. */
  destroy(): void {
    this.#close("destroyed");
  }

  // --- reading -----------------------------------------------------------------------------

  async #read(): Promise<void> {
    // Small while the client is quiet (an idle connection pins its pending read's buffer);
    // doubled up to 32 KiB whenever a read fills it.
    let buffer = new Uint8Array(4 * 1024);
    const reader = new FrameReader();
    const onFrame = (type: number, flags: number, id: number, payload: Uint8Array) => {
      this.#frame(type, flags, id, payload);
      return !this.#closed;
    };
    let preface: Uint8Array | undefined = new Uint8Array(0); // what arrived of it so far
    try {
      for (;;) {
        const n = await this.#socket.read(buffer);
        if (n === null) return this.#close("client closed");
        if (this.#closed) return;
        let data = buffer.subarray(0, n);
        if (preface) {
          const seen = concatBytes([preface, data], preface.length + n);
          const part = seen.subarray(0, Math.min(seen.length, PREFACE.length));
          if (part.some((b, i) => b !== PREFACE[i])) {
            return this.#close("not an HTTP/2 client preface");
          }
          if (seen.length < PREFACE.length) {
            preface = seen;
            continue;
          }
          preface = undefined;
          data = seen.subarray(PREFACE.length);
        }
        reader.feed(data, onFrame);
        if (this.#closed) return;
        if (n === buffer.length && buffer.length < 32 * 1024) buffer = new Uint8Array(n * 2);
      }
    } catch (error) {
      if (error instanceof ConnectionError) {
        this.#outbox.emit(GOAWAY, 0, 0, this.#goaway(error.code));
        return this.#close(`protocol error: ${error.message}`);
      }
      this.#close(`read failed: ${(error as Error)?.message}`);
    }
  }

  #frame(type: number, flags: number, id: number, payload: Uint8Array): void {
    if (this.#continuation && type !== CONTINUATION) {
      throw new ConnectionError(PROTOCOL_ERROR, "expected CONTINUATION");
    }
    switch (type) {
      case DATA:
        return this.#onData(flags, id, payload);
      case HEADERS:
        return this.#onHeaders(flags, id, payload);
      case CONTINUATION: {
        const c = this.#continuation;
        if (!c || c.id !== id) throw new ConnectionError(PROTOCOL_ERROR, "unexpected CONTINUATION");
        c.size += payload.length;
        if (c.size > this.#maxHeader) {
          throw new ConnectionError(ENHANCE_YOUR_CALM, "header block too large");
        }
        c.parts.push(payload.slice());
        if (flags & END_HEADERS) {
          this.#continuation = undefined;
          this.#onHeaderBlock(id, concatBytes(c.parts, c.size), c.endStream);
        }
        return;
      }
      case RST_STREAM: {
        if (id === 0 || payload.length !== 4) {
          throw new ConnectionError(PROTOCOL_ERROR, "bad RST_STREAM");
        }
        const stream = this.#streams.get(id);
        if (++this.#resets > 1_000 && this.#resets > this.#opened / 2) {
          throw new ConnectionError(ENHANCE_YOUR_CALM, "too many stream resets");
        }
        if (!stream) return;
        stream.done = true;
        stream.controller.abort(new Error("the client reset the stream"));
        this.#forget(stream);
        return;
      }
      case SETTINGS:
        return this.#onSettings(flags, id, payload);
      case PUSH_PROMISE:
        throw new ConnectionError(PROTOCOL_ERROR, "PUSH_PROMISE from a client");
      case PING:
        if (id !== 0 || payload.length !== 8) throw new ConnectionError(PROTOCOL_ERROR, "bad PING");
        if (!(flags & ACK)) this.#outbox.emit(PING, ACK, 0, payload);
        return;
      case GOAWAY:
        this.#draining = true;
        this.#closeIfDone();
        return;
      case WINDOW_UPDATE: {
        if (payload.length !== 4) throw new ConnectionError(FRAME_SIZE_ERROR, "bad WINDOW_UPDATE");
        const increment = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0) &
          0x7fffffff;
        if (id === 0) {
          if (increment === 0) throw new ConnectionError(PROTOCOL_ERROR, "WINDOW_UPDATE of 0");
          this.#sendWindow += increment;
          if (this.#sendWindow > 0x7fffffff) {
            throw new ConnectionError(FLOW_CONTROL_ERROR, "window overflow");
          }
        } else {
          const stream = this.#streams.get(id);
          if (stream) stream.sendWindow += increment;
        }
        this.#unblock();
        return;
      }
      default:
        return; // PRIORITY and unknown frame types
    }
  }

  #onHeaders(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0 || id % 2 === 0) throw new ConnectionError(PROTOCOL_ERROR, "bad stream ID");
    let start = 0;
    let end = payload.length;
    if (flags & PADDED) {
      start = 1;
      end -= payload[0] ?? 0;
    }
    if (flags & Flag.Priority) start += 5;
    if (start > end) throw new ConnectionError(PROTOCOL_ERROR, "bad HEADERS padding");
    const block = payload.subarray(start, end);
    const endStream = (flags & END_STREAM) !== 0;
    if (flags & END_HEADERS) this.#onHeaderBlock(id, block, endStream);
    else this.#continuation = { id, endStream, parts: [block.slice()], size: block.length };
  }

  #onHeaderBlock(id: number, block: Uint8Array, endStream: boolean): void {
    const fields: [string, string][] = [];
    try {
      this.#decoder.decode(block, (name, value) => fields.push([name, value]));
    } catch (error) {
      if (error instanceof HpackError) throw new ConnectionError(COMPRESSION_ERROR, error.message);
      throw error;
    }
    const existing = this.#streams.get(id);
    if (existing) {
      // Trailers: only valid to end the stream.
      if (!endStream || existing.ended) {
        throw new ConnectionError(PROTOCOL_ERROR, "HEADERS mid-stream");
      }
      existing.ended = true;
      this.#dispatch(existing);
      return;
    }
    if (id <= this.#lastId) throw new ConnectionError(PROTOCOL_ERROR, "stream ID reused");
    this.#lastId = id;
    if (this.#draining) return this.#reset(id, REFUSED_STREAM);
    if (this.#streams.size >= this.#maxStreams) return this.#reset(id, REFUSED_STREAM);
    let method = "";
    let path = "";
    let authority = "";
    const headers: [string, string][] = [];
    for (const [name, value] of fields) {
      if (name === ":method") method = value;
      else if (name === ":path") path = value;
      else if (name === ":authority") authority = value;
      else if (name === ":scheme" || name === ":protocol") continue;
      else if (name.startsWith(":") || CONNECTION_FIELDS.has(name)) {
        return this.#reset(id, PROTOCOL_ERROR);
      } else headers.push([name, value]);
    }
    if (!method || !path.startsWith("/")) return this.#reset(id, PROTOCOL_ERROR);
    if (!authority) authority = headers.find(([n]) => n === "host")?.[1] ?? "";
    this.#opened++;
    const stream: Stream = {
      id,
      method,
      path,
      authority,
      headers,
      chunks: [],
      size: 0,
      ended: endStream,
      done: false,
      controller: new AbortController(),
      sendWindow: this.#peerInitialWindow,
      pending: undefined,
    };
    this.#streams.set(id, stream);
    if (this.#idleTimer !== undefined) {
      clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
    }
    if (endStream) this.#dispatch(stream);
  }

  #onData(flags: number, id: number, payload: Uint8Array): void {
    if (id === 0) throw new ConnectionError(PROTOCOL_ERROR, "DATA on stream 0");
    this.#received += payload.length;
    if (this.#received >= CONNECTION_WINDOW / 2) {
      this.#outbox.emit(WINDOW_UPDATE, 0, 0, u32(this.#received));
      this.#received = 0;
    }
    const stream = this.#streams.get(id);
    if (!stream || stream.ended) {
      if (id > this.#lastId) throw new ConnectionError(PROTOCOL_ERROR, "DATA on an idle stream");
      if (stream?.ended) this.#reset(id, STREAM_CLOSED);
      return;
    }
    let data = payload;
    if (flags & PADDED) {
      const pad = payload[0] ?? 0;
      if (payload.length < 1 + pad) throw new ConnectionError(PROTOCOL_ERROR, "bad padding");
      data = payload.subarray(1, payload.length - pad);
    }
    stream.size += data.length;
    if (stream.size > this.#maxBody) {
      stream.ended = true;
      stream.chunks = [];
      this.#reply(stream, { status: 413, headers: [], body: new Uint8Array(0) });
      this.#outbox.emit(RST_STREAM, 0, id, u32(NO_ERROR)); // stop sending the rest
      return;
    }
    // No stream WINDOW_UPDATE: the default window (65 535) holds the largest body accepted.
    if (data.length > 0) stream.chunks.push(data.slice());
    if (flags & END_STREAM) {
      stream.ended = true;
      this.#dispatch(stream);
    }
  }

  #onSettings(flags: number, id: number, payload: Uint8Array): void {
    if (id !== 0) throw new ConnectionError(PROTOCOL_ERROR, "SETTINGS on a stream");
    if (flags & ACK) return;
    if (payload.length % 6 !== 0) throw new ConnectionError(FRAME_SIZE_ERROR, "bad SETTINGS");
    const view = new DataView(payload.buffer, payload.byteOffset, payload.length);
    for (let at = 0; at < payload.length; at += 6) {
      const key = view.getUint16(at);
      const value = view.getUint32(at + 2);
      if (key === 0x4) {
        if (value > 0x7fffffff) throw new ConnectionError(FLOW_CONTROL_ERROR, "window too large");
        const delta = value - this.#peerInitialWindow;
        this.#peerInitialWindow = value;
        for (const s of this.#streams.values()) s.sendWindow += delta;
      } else if (key === 0x5) {
        if (value < 16_384 || value > 16_777_215) {
          throw new ConnectionError(PROTOCOL_ERROR, "bad MAX_FRAME_SIZE");
        }
        this.#peerMaxFrame = value;
      }
    }
    this.#outbox.emit(SETTINGS, ACK, 0);
    this.#unblock();
  }

  // --- answering ---------------------------------------------------------------------------

  #dispatch(stream: Stream): void {
    const body = stream.method === "GET" || stream.method === "HEAD"
      ? undefined
      : stream.chunks.length === 1
      ? stream.chunks[0]
      : concatBytes(stream.chunks, stream.size);
    stream.chunks = [];
    let promise: Promise<H2ServerReply>;
    try {
      promise = this.#handler({
        method: stream.method,
        path: stream.path,
        authority: stream.authority,
        headers: stream.headers,
        body,
        signal: stream.controller.signal,
      });
    } catch (error) {
      promise = Promise.reject(error);
    }
    promise.then(
      (reply) => this.#reply(stream, reply),
      () => this.#reply(stream, { status: 500, headers: [], body: new Uint8Array(0) }),
    );
  }

  #reply(stream: Stream, reply: H2ServerReply): void {
    if (stream.done || this.#closed) return;
    stream.done = true;
    const head = encodeResponseHead(reply.status, [
      ...reply.headers.filter(([n]) => n.toLowerCase() !== "content-length"),
      ["content-length", String(reply.body.length)],
    ]);
    const empty = reply.body.length === 0 || stream.method === "HEAD";
    if (head.length <= this.#peerMaxFrame) {
      this.#outbox.emit(HEADERS, END_HEADERS | (empty ? END_STREAM : 0), stream.id, head);
    } else {
      for (let at = 0; at < head.length; at += this.#peerMaxFrame) {
        const part = head.subarray(at, at + this.#peerMaxFrame);
        const last = at + this.#peerMaxFrame >= head.length ? END_HEADERS : 0;
        if (at === 0) this.#outbox.emit(HEADERS, last | (empty ? END_STREAM : 0), stream.id, part);
        else this.#outbox.emit(CONTINUATION, last, stream.id, part);
      }
    }
    if (empty) return this.#forget(stream);
    stream.pending = reply.body;
    this.#sendBody(stream);
  }

  #sendBody(stream: Stream): void {
    let body = stream.pending!;
    while (body.length > 0) {
      const room = Math.min(this.#peerMaxFrame, this.#sendWindow, stream.sendWindow);
      if (room <= 0) {
        stream.pending = body;
        if (!this.#blocked.includes(stream)) this.#blocked.push(stream);
        return;
      }
      const n = Math.min(body.length, room);
      const last = n === body.length;
      this.#outbox.emit(DATA, last ? END_STREAM : 0, stream.id, body.subarray(0, n));
      this.#sendWindow -= n;
      stream.sendWindow -= n;
      body = body.subarray(n);
    }
    stream.pending = undefined;
    this.#forget(stream);
  }

  #unblock(): void {
    if (this.#blocked.length === 0) return;
    const blocked = this.#blocked;
    this.#blocked = [];
    for (const stream of blocked) {
      if (stream.pending && this.#streams.get(stream.id) === stream) this.#sendBody(stream);
    }
  }

  #reset(id: number, code: number): void {
    this.#outbox.emit(RST_STREAM, 0, id, u32(code));
    const stream = this.#streams.get(id);
    if (stream) {
      stream.done = true;
      stream.controller.abort(new Error("stream reset"));
      this.#forget(stream);
    }
  }

  #forget(stream: Stream): void {
    if (this.#streams.get(stream.id) !== stream) return;
    this.#streams.delete(stream.id);
    if (this.#streams.size === 0) {
      if (this.#draining) this.#closeIfDone();
      else this.#armIdle();
    }
  }

  #armIdle(): void {
    if (this.#idleTimer !== undefined || this.#closed) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#streams.size > 0 || this.#closed) return;
      this.#draining = true;
      this.#outbox.emit(GOAWAY, 0, 0, this.#goaway(NO_ERROR));
      this.#closeIfDone();
    }, this.#idleMs);
  }

  #goaway(code: number): Uint8Array {
    const payload = new Uint8Array(8);
    const view = new DataView(payload.buffer);
    view.setUint32(0, this.#lastId);
    view.setUint32(4, code);
    return payload;
  }

  #closeIfDone(): void {
    if (!this.#draining || this.#closed || this.#streams.size > 0 || this.#outbox.busy) return;
    this.#close("drained");
  }

  #close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    for (const stream of this.#streams.values()) {
      stream.controller.abort(new Error(`connection closed: ${reason}`));
    }
    this.#streams.clear();
    this.#blocked = [];
    this.#outbox.close(true, () => this.#socket.close());
    this.#resolveClosed();
    this.#onClose?.(reason);
  }
}
