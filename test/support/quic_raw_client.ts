/**
 * A deliberately small QUIC v1 client written from RFC 9000, 9001 and 8446 for hostile-peer
 * tests: it does what `Deno.connectQuic` cannot be made to do, such as granting the server
 * almost no flow-control credit on its streams and never more, while it keeps the connection
 * alive (ACKs, PINGs). It also records every frame the server sent, by packet number space, so
 * a test can see how far a handshake got.
 *
 * Scope: one connection over UDP on loopback, TLS 1.3 with TLS_AES_128_GCM_SHA256 and x25519
 * only; the server's certificate is NOT verified (the server is the subject under test); no
 * retransmission (loopback loses nothing), no Retry, no key update, no migration.
 *
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPublicKey,
  diffieHellman,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { Buffer } from "node:buffer";
import { messageOf } from "../../src/errors/message_of.ts";

/** Options of {@linkcode rawQuicConnect}. */
export interface RawQuicOptions {
  port: number;
  /** Default `localhost`. */
  serverName?: string;
  /** Default `doq`. */
  alpn?: string;
  /**
   * Bytes the server may send on each stream this client opens (transport parameter
   * initial_max_stream_data_bidi_local); never raised. Default 1 MiB.
   */
  streamWindow?: number;
  /** Send a PING (with an ACK) this often once the handshake is done; 0: never. Default 200. */
  keepAliveMs?: number;
}

/** What arrived on one stream the client opened. */
export interface RawStream {
  data: Uint8Array;
  fin: boolean;
  /** RESET_STREAM's application error code, if the server reset it. */
  reset?: number;
}

/** The server's CONNECTION_CLOSE. `application`: a 0x1d frame (the code is the application's). */
export interface RawClose {
  code: number;
  application: boolean;
  reason: string;
  /** The packet number space it came in: "initial" or "handshake" means during the handshake. */
  space: Space;
}

/** A packet number space. */
export type Space = "initial" | "handshake" | "app";

/** A raw QUIC connection. */
export interface RawQuicClient {
  /** Every frame received, in order, as `space:FRAME_NAME`. */
  readonly frames: string[];
  /** Resolves when the client's side of the handshake is complete (its Finished is sent). */
  readonly handshake: Promise<void>;
  /** Resolves with the server's CONNECTION_CLOSE. */
  readonly closed: Promise<RawClose>;
  readonly streams: Map<number, RawStream>;
  /** Opens the next client bidirectional stream with `data` and a FIN; returns its ID. */
  send(data: Uint8Array): number;
  /** Stops sending anything (no ACK, no PING) and closes the socket. */
  close(): void;
}

const te = new TextEncoder();
const INITIAL_SALT = Uint8Array.fromHex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a");
const EMPTY = new Uint8Array(0);
const X25519_SPKI = Uint8Array.fromHex("302a300506032b656e032100");

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function hmac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return new Uint8Array(createHmac("sha256", key).update(data).digest());
}

function sha256(data: Uint8Array): Uint8Array {
  return new Uint8Array(createHash("sha256").update(data).digest());
}

function expandLabel(
  secret: Uint8Array,
  label: string,
  context: Uint8Array,
  length: number,
): Uint8Array {
  const full = te.encode(`tls13 ${label}`);
  const info = concat(
    new Uint8Array([length >> 8, length & 0xff, full.length]),
    full,
    new Uint8Array([context.length]),
    context,
  );
  // HKDF-Expand: every length used here fits in one SHA-256 block.
  return hmac(secret, concat(info, new Uint8Array([1]))).slice(0, length);
}

interface Keys {
  key: Uint8Array;
  iv: Uint8Array;
  hp: Uint8Array;
}

function keysFrom(secret: Uint8Array): Keys {
  return {
    key: expandLabel(secret, "quic key", EMPTY, 16),
    iv: expandLabel(secret, "quic iv", EMPTY, 12),
    hp: expandLabel(secret, "quic hp", EMPTY, 16),
  };
}

function nonce(iv: Uint8Array, pn: number): Uint8Array {
  const out = iv.slice();
  for (let i = 0; i < 6; i++) out[11 - i] ^= Math.floor(pn / 2 ** (8 * i)) & 0xff;
  return out;
}

function seal(keys: Keys, pn: number, header: Uint8Array, payload: Uint8Array): Uint8Array {
  const c = createCipheriv("aes-128-gcm", keys.key, nonce(keys.iv, pn));
  c.setAAD(header);
  const body = concat(new Uint8Array(c.update(payload)), new Uint8Array(c.final()));
  return concat(body, new Uint8Array(c.getAuthTag()));
}

function unseal(keys: Keys, pn: number, header: Uint8Array, sealed: Uint8Array): Uint8Array {
  const d = createDecipheriv("aes-128-gcm", keys.key, nonce(keys.iv, pn));
  d.setAAD(header);
  d.setAuthTag(sealed.subarray(sealed.length - 16));
  return concat(
    new Uint8Array(d.update(sealed.subarray(0, sealed.length - 16))),
    new Uint8Array(d.final()),
  );
}

function headerMask(hp: Uint8Array, sample: Uint8Array): Uint8Array {
  const c = createCipheriv("aes-128-ecb", hp, null);
  c.setAutoPadding(false);
  return new Uint8Array(c.update(sample));
}

class Writer {
  #bytes: number[] = [];
  get length(): number {
    return this.#bytes.length;
  }
  u8(v: number): this {
    this.#bytes.push(v & 0xff);
    return this;
  }
  u16(v: number): this {
    return this.u8(v >> 8).u8(v);
  }
  u24(v: number): this {
    return this.u8(v >> 16).u16(v & 0xffff);
  }
  u32(v: number): this {
    return this.u16(Math.floor(v / 65536)).u16(v & 0xffff);
  }
  varint(v: number): this {
    if (v < 64) return this.u8(v);
    if (v < 16384) return this.u16(0x4000 | v);
    if (v < 2 ** 30) return this.u32(0x80000000 + v);
    throw new RangeError("varint too large for this client");
  }
  bytes(b: Uint8Array): this {
    for (const x of b) this.#bytes.push(x);
    return this;
  }
  /** `inner` written with a length prefix of `size` bytes. */
  block(size: 1 | 2 | 3, inner: (w: Writer) => void): this {
    const w = new Writer();
    inner(w);
    const b = w.done();
    if (size === 1) this.u8(b.length);
    else if (size === 2) this.u16(b.length);
    else this.u24(b.length);
    return this.bytes(b);
  }
  done(): Uint8Array {
    return new Uint8Array(this.#bytes);
  }
}

class Reader {
  constructor(readonly data: Uint8Array, public pos = 0) {}
  get left(): number {
    return this.data.length - this.pos;
  }
  u8(): number {
    if (this.pos >= this.data.length) throw new RangeError("read past the end");
    return this.data[this.pos++];
  }
  u16(): number {
    return (this.u8() << 8) | this.u8();
  }
  u24(): number {
    return (this.u8() << 16) | this.u16();
  }
  u32(): number {
    return this.u16() * 65536 + this.u16();
  }
  varint(): number {
    const first = this.data[this.pos];
    const len = 1 << (first >> 6);
    let v = this.u8() & 0x3f;
    for (let i = 1; i < len; i++) v = v * 256 + this.u8();
    return v;
  }
  take(n: number): Uint8Array {
    if (n > this.left) throw new RangeError("read past the end");
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
}

/** RFC 9000 §A.3: the full packet number from its truncated form. */
function decodePn(largest: number, truncated: number, bits: number): number {
  const expected = largest + 1;
  const win = 2 ** bits;
  const hwin = win / 2;
  let candidate = Math.floor(expected / win) * win + truncated;
  if (candidate <= expected - hwin) candidate += win;
  else if (candidate > expected + hwin && candidate >= win) candidate -= win;
  return candidate;
}

/** An ACK frame for every packet number in `received`. */
function ackFrame(received: Set<number>): Uint8Array {
  const pns = [...received].sort((a, b) => b - a);
  const ranges: [number, number][] = [];
  for (const pn of pns) {
    const last = ranges.at(-1);
    if (last && last[1] === pn + 1) last[1] = pn;
    else ranges.push([pn, pn]);
  }
  const w = new Writer().u8(0x02).varint(ranges[0][0]).varint(0).varint(ranges.length - 1);
  w.varint(ranges[0][0] - ranges[0][1]);
  for (let i = 1; i < ranges.length; i++) {
    w.varint(ranges[i - 1][1] - ranges[i][0] - 2).varint(ranges[i][0] - ranges[i][1]);
  }
  return w.done();
}

const FRAME_NAMES: Record<number, string> = {
  0x01: "PING",
  0x04: "RESET_STREAM",
  0x05: "STOP_SENDING",
  0x06: "CRYPTO",
  0x07: "NEW_TOKEN",
  0x10: "MAX_DATA",
  0x11: "MAX_STREAM_DATA",
  0x12: "MAX_STREAMS",
  0x13: "MAX_STREAMS",
  0x14: "DATA_BLOCKED",
  0x15: "STREAM_DATA_BLOCKED",
  0x16: "STREAMS_BLOCKED",
  0x17: "STREAMS_BLOCKED",
  0x18: "NEW_CONNECTION_ID",
  0x19: "RETIRE_CONNECTION_ID",
  0x1a: "PATH_CHALLENGE",
  0x1b: "PATH_RESPONSE",
  0x1c: "CONNECTION_CLOSE",
  0x1d: "CONNECTION_CLOSE",
  0x1e: "HANDSHAKE_DONE",
};

/**
 * Connects to a QUIC server on 127.0.0.1. Resolves once the first flight is sent; await
 * `handshake` or `closed` for what the server did with it.
 */
export function rawQuicConnect(options: RawQuicOptions): Promise<RawQuicClient> {
  const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
  const server: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: options.port };
  const odcid = new Uint8Array(randomBytes(8));
  const scid = new Uint8Array(randomBytes(8));
  let dcid = odcid;
  const initialSecret = hmac(INITIAL_SALT, odcid);
  const send: Partial<Record<Space, Keys>> = {
    initial: keysFrom(expandLabel(initialSecret, "client in", EMPTY, 32)),
  };
  const recv: Partial<Record<Space, Keys>> = {
    initial: keysFrom(expandLabel(initialSecret, "server in", EMPTY, 32)),
  };
  const nextPn: Record<Space, number> = { initial: 0, handshake: 0, app: 0 };
  const received: Record<Space, Set<number>> = {
    initial: new Set(),
    handshake: new Set(),
    app: new Set(),
  };
  const crypto: Record<"initial" | "handshake", { chunks: Map<number, Uint8Array>; at: number }> = {
    initial: { chunks: new Map(), at: 0 },
    handshake: { chunks: new Map(), at: 0 },
  };
  const cryptoBuffered: Record<"initial" | "handshake", Uint8Array> = {
    initial: EMPTY,
    handshake: EMPTY,
  };
  const transcript: Uint8Array[] = [];
  const frames: string[] = [];
  const streams = new Map<number, RawStream>();
  let handshakeSecret: Uint8Array | undefined;
  let clientHsSecret: Uint8Array | undefined;
  let stopped = false;
  let nextStream = 0;
  let keepAlive: ReturnType<typeof setInterval> | undefined;

  let handshakeDone!: () => void;
  const handshake = new Promise<void>((r) => (handshakeDone = r));
  let onClose!: (info: RawClose) => void;
  const closed = new Promise<RawClose>((r) => (onClose = r));

  const { publicKey, privateKey } = generateKeyPairSync("x25519");
  const clientShare = new Uint8Array(publicKey.export({ format: "der", type: "spki" })).slice(12);

  function transportParameters(): Uint8Array {
    const w = new Writer();
    const param = (id: number, value: number) => {
      const v = new Writer().varint(value).done();
      w.varint(id).varint(v.length).bytes(v);
    };
    param(0x01, 30_000); // max_idle_timeout
    param(0x04, 1 << 20); // initial_max_data
    param(0x05, options.streamWindow ?? 1 << 20); // initial_max_stream_data_bidi_local
    param(0x06, 0); // initial_max_stream_data_bidi_remote
    param(0x07, 0); // initial_max_stream_data_uni
    param(0x08, 0); // initial_max_streams_bidi
    param(0x09, 0); // initial_max_streams_uni
    w.varint(0x0f).varint(scid.length).bytes(scid); // initial_source_connection_id
    return w.done();
  }

  function clientHello(): Uint8Array {
    const name = te.encode(options.serverName ?? "localhost");
    const alpn = te.encode(options.alpn ?? "doq");
    const body = new Writer()
      .u16(0x0303)
      .bytes(new Uint8Array(randomBytes(32)))
      .u8(0) // legacy_session_id: empty (QUIC)
      .block(2, (w) => w.u16(0x1301))
      .u8(1).u8(0)
      .block(2, (w) => {
        w.u16(0x0000).block(2, (e) => e.block(2, (l) => l.u8(0).block(2, (n) => n.bytes(name))));
        w.u16(0x000a).block(2, (e) => e.block(2, (l) => l.u16(0x001d)));
        w.u16(0x000d).block(2, (e) =>
          e.block(2, (l) => {
            for (const alg of [0x0403, 0x0804, 0x0805, 0x0806, 0x0807, 0x0401]) l.u16(alg);
          }));
        w.u16(0x002b).block(2, (e) => e.block(1, (l) => l.u16(0x0304)));
        w.u16(0x0033).block(
          2,
          (e) => e.block(2, (l) => l.u16(0x001d).block(2, (k) => k.bytes(clientShare))),
        );
        w.u16(0x0010).block(2, (e) => e.block(2, (l) => l.block(1, (p) => p.bytes(alpn))));
        w.u16(0x0039).block(2, (e) => e.bytes(transportParameters()));
      })
      .done();
    return new Writer().u8(1).u24(body.length).bytes(body).done();
  }

  function packet(space: Space, payload: Uint8Array): Uint8Array {
    const keys = send[space]!;
    const pn = nextPn[space]++;
    const w = new Writer();
    let pnOffset: number;
    if (space === "app") {
      w.u8(0x40 | 3).bytes(dcid);
      pnOffset = w.length;
    } else {
      w.u8(0xc0 | ((space === "initial" ? 0 : 2) << 4) | 3).u32(1);
      w.u8(dcid.length).bytes(dcid).u8(scid.length).bytes(scid);
      if (space === "initial") w.varint(0);
      w.u16(0x4000 | (4 + payload.length + 16));
      pnOffset = w.length;
    }
    w.u32(pn);
    const header = w.done();
    const out = concat(header, seal(keys, pn, header, payload));
    const mask = headerMask(keys.hp, out.subarray(pnOffset + 4, pnOffset + 20));
    out[0] ^= mask[0] & (space === "app" ? 0x1f : 0x0f);
    for (let i = 0; i < 4; i++) out[pnOffset + i] ^= mask[1 + i];
    return out;
  }

  /** An ACK frame for what `space` received, or nothing. */
  function acks(space: Space): Uint8Array {
    return received[space].size > 0 ? ackFrame(received[space]) : EMPTY;
  }

  function transmit(datagram: Uint8Array): void {
    if (stopped) return;
    socket.send(datagram, server).catch(() => {});
  }

  function cryptoFrame(data: Uint8Array): Uint8Array {
    return concat(new Writer().u8(0x06).varint(0).varint(data.length).done(), data);
  }

  /** TLS messages complete in a space's CRYPTO stream, each with its 4-byte header. */
  function messages(space: "initial" | "handshake"): Uint8Array[] {
    const c = crypto[space];
    let buffered = cryptoBuffered[space];
    for (let chunk = c.chunks.get(c.at); chunk; chunk = c.chunks.get(c.at)) {
      c.chunks.delete(c.at);
      c.at += chunk.length;
      buffered = concat(buffered, chunk);
    }
    const out: Uint8Array[] = [];
    while (buffered.length >= 4) {
      const len = (buffered[1] << 16) | (buffered[2] << 8) | buffered[3];
      if (buffered.length < 4 + len) break;
      out.push(buffered.slice(0, 4 + len));
      buffered = buffered.slice(4 + len);
    }
    cryptoBuffered[space] = buffered;
    return out;
  }

  function onServerHello(message: Uint8Array): void {
    transcript.push(message);
    const r = new Reader(message, 4 + 2 + 32);
    r.take(r.u8());
    r.u16(); // cipher suite: the only one offered
    r.u8();
    const end = r.pos + 2 + r.u16();
    let serverShare: Uint8Array | undefined;
    while (r.pos < end) {
      const type = r.u16();
      const body = new Reader(r.take(r.u16()));
      if (type === 0x0033) {
        body.u16();
        serverShare = body.take(body.u16());
      }
    }
    if (!serverShare) throw new Error("raw QUIC client: ServerHello without a key share");
    const shared = new Uint8Array(diffieHellman({
      privateKey: privateKey as KeyObject,
      publicKey: createPublicKey({
        key: Buffer.from(concat(X25519_SPKI, serverShare)),
        format: "der",
        type: "spki",
      }),
    }));
    const zeros = new Uint8Array(32);
    const early = hmac(zeros, zeros);
    const derived = expandLabel(early, "derived", sha256(EMPTY), 32);
    handshakeSecret = hmac(derived, shared);
    const hash = sha256(concat(...transcript));
    clientHsSecret = expandLabel(handshakeSecret, "c hs traffic", hash, 32);
    send.handshake = keysFrom(clientHsSecret);
    recv.handshake = keysFrom(expandLabel(handshakeSecret, "s hs traffic", hash, 32));
  }

  function onServerFinished(): void {
    const hash = sha256(concat(...transcript));
    const zeros = new Uint8Array(32);
    const master = hmac(expandLabel(handshakeSecret!, "derived", sha256(EMPTY), 32), zeros);
    const finishedKey = expandLabel(clientHsSecret!, "finished", EMPTY, 32);
    const verify = hmac(finishedKey, hash);
    const finished = new Writer().u8(20).u24(verify.length).bytes(verify).done();
    transmit(
      packet("handshake", concat(ackFrame(received.handshake), cryptoFrame(finished))),
    );
    send.app = keysFrom(expandLabel(master, "c ap traffic", hash, 32));
    recv.app = keysFrom(expandLabel(master, "s ap traffic", hash, 32));
    handshakeDone();
    const every = options.keepAliveMs ?? 200;
    if (every > 0) {
      keepAlive = setInterval(() => {
        transmit(packet("app", concat(acks("app"), new Uint8Array([1, 0, 0, 0]))));
      }, every);
    }
  }

  function onFrames(space: Space, payload: Uint8Array): boolean {
    const r = new Reader(payload);
    let elicits = false;
    while (r.left > 0) {
      const type = r.varint();
      if (type === 0x00) continue;
      if (type === 0x02 || type === 0x03) {
        r.varint();
        r.varint();
        const count = r.varint();
        r.varint();
        for (let i = 0; i < count; i++) r.varint(), r.varint();
        if (type === 0x03) r.varint(), r.varint(), r.varint();
        continue;
      }
      frames.push(`${space}:${type >= 0x08 && type <= 0x0f ? "STREAM" : FRAME_NAMES[type]}`);
      elicits = true;
      if (type === 0x06) {
        const offset = r.varint();
        const data = r.take(r.varint()).slice();
        const c = crypto[space as "initial" | "handshake"];
        if (c && offset >= c.at) c.chunks.set(offset, data);
      } else if (type >= 0x08 && type <= 0x0f) {
        const id = r.varint();
        const offset = type & 0x04 ? r.varint() : 0;
        const data = type & 0x02 ? r.take(r.varint()) : r.take(r.left);
        const s = streams.get(id) ?? { data: EMPTY, fin: false };
        if (offset + data.length > s.data.length) {
          const grown = new Uint8Array(offset + data.length);
          grown.set(s.data);
          grown.set(data, offset);
          s.data = grown;
        }
        if (type & 0x01) s.fin = true;
        streams.set(id, s);
      } else if (type === 0x04) {
        const id = r.varint();
        const code = r.varint();
        r.varint();
        const s = streams.get(id) ?? { data: EMPTY, fin: false };
        s.reset = code;
        streams.set(id, s);
      } else if (type === 0x1c || type === 0x1d) {
        const code = r.varint();
        if (type === 0x1c) r.varint();
        const reason = new TextDecoder().decode(r.take(r.varint()));
        onClose({ code, application: type === 0x1d, reason, space });
        elicits = false;
      } else if (type === 0x07) r.take(r.varint());
      else if (type === 0x05 || type === 0x11 || type === 0x15) r.varint(), r.varint();
      else if ([0x10, 0x12, 0x13, 0x14, 0x16, 0x17, 0x19].includes(type)) r.varint();
      else if (type === 0x18) {
        r.varint();
        r.varint();
        r.take(r.u8());
        r.take(16);
      } else if (type === 0x1a || type === 0x1b) r.take(8);
      else if (type === 0x01 || type === 0x1e) { /* no body */ }
      else throw new Error(`raw QUIC client: frame type 0x${type.toString(16)} not understood`);
    }
    return elicits;
  }

  function onPacket(space: Space, bytes: Uint8Array, pnOffset: number): void {
    const keys = recv[space];
    if (!keys) return; // not decryptable yet: dropped, as a real client might
    const p = bytes.slice();
    const mask = headerMask(keys.hp, p.subarray(pnOffset + 4, pnOffset + 20));
    p[0] ^= mask[0] & (space === "app" ? 0x1f : 0x0f);
    const pnLen = (p[0] & 0x03) + 1;
    let truncated = 0;
    for (let i = 0; i < pnLen; i++) {
      p[pnOffset + i] ^= mask[1 + i];
      truncated = truncated * 256 + p[pnOffset + i];
    }
    const largest = Math.max(-1, ...received[space]);
    const pn = decodePn(largest, truncated, pnLen * 8);
    let payload: Uint8Array;
    try {
      payload = unseal(keys, pn, p.subarray(0, pnOffset + pnLen), p.subarray(pnOffset + pnLen));
    } catch {
      return;
    }
    received[space].add(pn);
    const elicits = onFrames(space, payload);
    if (space === "initial") {
      for (const m of messages("initial")) if (m[0] === 2) onServerHello(m);
    } else if (space === "handshake") {
      for (const m of messages("handshake")) {
        transcript.push(m);
        if (m[0] === 20) onServerFinished();
      }
    } else if (elicits) {
      transmit(packet("app", ackFrame(received.app)));
    }
  }

  function onDatagram(d: Uint8Array): void {
    let pos = 0;
    while (pos < d.length) {
      const first = d[pos];
      if (!(first & 0x80)) {
        onPacket("app", d.subarray(pos), 1 + scid.length);
        return;
      }
      const r = new Reader(d, pos + 1);
      r.u32();
      r.take(r.u8());
      const serverCid = r.take(r.u8());
      const type = (first >> 4) & 0x03;
      if (type === 0) r.take(r.varint());
      if (type === 3) return; // Retry: not supported
      const length = r.varint();
      const end = r.pos + length;
      if (type === 0 || type === 2) {
        dcid = serverCid.slice();
        onPacket(type === 0 ? "initial" : "handshake", d.subarray(pos, end), r.pos - pos);
      }
      pos = end;
    }
  }

  (async () => {
    while (!stopped) {
      let datagram: Uint8Array;
      try {
        [datagram] = await socket.receive();
      } catch {
        return;
      }
      try {
        onDatagram(datagram);
      } catch (error) {
        frames.push(`error:${messageOf(error)}`);
      }
    }
  })();

  const hello = clientHello();
  transcript.push(hello);
  const frame = cryptoFrame(hello);
  // A client's Initial datagram must be at least 1200 bytes (RFC 9000 §14.1): pad the payload.
  transmit(packet("initial", concat(frame, new Uint8Array(Math.max(0, 1162 - frame.length)))));

  return Promise.resolve({
    frames,
    handshake,
    closed,
    streams,
    send(data: Uint8Array): number {
      const id = nextStream;
      nextStream += 4;
      const frame = new Writer().u8(0x0f).varint(id).varint(0).varint(data.length).bytes(data);
      transmit(packet("app", concat(acks("app"), frame.done())));
      return id;
    },
    close(): void {
      if (stopped) return;
      stopped = true;
      clearInterval(keepAlive);
      try {
        socket.close();
      } catch {
        // already closed
      }
    },
  });
}
