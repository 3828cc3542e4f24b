/**
 * A small, real DNS-over-TLS test client (RFC 7858) over `Deno.connectTls`, with its own frame
 * reader (deliberately not `src/framing`), plus query builders and answer decoders on
 * dns-packet, and {@linkcode startTestBridge} to run the bridge in-process against a local
 * upstream.
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { parseConfig } from "../../src/config/parse.ts";
import { getFlags, getId, headerRcode } from "../../src/dns/message.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import type { LocalDohUpstream } from "./doh_upstream.ts";
import type { TestPki } from "./pki.ts";

/** Default wait for an answer before a read helper gives up. */
export const DEFAULT_WAIT_MS = 5_000;

/** How {@linkcode DotClient.writeRaw} splits its bytes. */
export interface RawWriteOptions {
  /** Write at most this many bytes per `write` call (each becomes its own TLS record). */
  chunkSize?: number;
  /** Wait this long between chunks, so the server sees separate reads. Default 0. */
  pauseMs?: number;
}

/** Options of {@linkcode connectDot}. */
export interface DotConnectOptions {
  port: number;
  /** PEM CA certificate(s) to trust. */
  caCerts: string[];
  /** Name to dial and verify. Default `localhost`. */
  hostname?: string;
  /** Name to send as SNI and verify, while dialling 127.0.0.1 (tenant tests). */
  servername?: string;
}

/** One open DoT connection. */
export interface DotClient {
  /** Frames each message with its 2-byte length and sends them all in one write. */
  send(...wires: Uint8Array[]): Promise<void>;
  /** Writes bytes as they are (no framing), optionally split into chunks. */
  writeRaw(bytes: Uint8Array, options?: RawWriteOptions): Promise<void>;
  /** The next answer not yet taken, in arrival order. */
  next(timeoutMs?: number): Promise<Uint8Array>;
  /** The answer with this message ID (taken out of the queue). */
  waitFor(id: number, timeoutMs?: number): Promise<Uint8Array>;
  /** The next `n` answers, in arrival order. */
  collect(n: number, timeoutMs?: number): Promise<Uint8Array[]>;
  /** IDs of every answer received, in arrival order (also those already taken). */
  readonly arrivals: readonly number[];
  /** Resolves when the server closed the connection (EOF or reset); never rejects. */
  readonly closed: Promise<void>;
  /** True once `closed` has resolved. */
  readonly isClosed: boolean;
  /** Closes the connection (idempotent). */
  close(): void;
}

/** Frames messages with the RFC 1035 §4.2.2 2-byte length prefix, into one buffer. */
export function frame(...wires: Uint8Array[]): Uint8Array {
  const total = wires.reduce((n, w) => n + 2 + w.length, 0);
  const out = new Uint8Array(total);
  let pos = 0;
  for (const w of wires) {
    out[pos] = w.length >> 8;
    out[pos + 1] = w.length & 0xff;
    out.set(w, pos + 2);
    pos += 2 + w.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  let pos = 0;
  while (pos < bytes.length) pos += await conn.write(bytes.subarray(pos));
}

/**
 * Opens a DoT connection and completes the TLS handshake.
 *
 * @throws if the TCP connection or the handshake fails
 */
export async function connectDot(options: DotConnectOptions): Promise<DotClient> {
  const conn = options.servername
    ? await Deno.startTls(await Deno.connect({ hostname: "127.0.0.1", port: options.port }), {
      hostname: options.servername,
      caCerts: options.caCerts,
    })
    : await Deno.connectTls({
      hostname: options.hostname ?? "localhost",
      port: options.port,
      caCerts: options.caCerts,
    });
  try {
    await conn.handshake();
  } catch (error) {
    try {
      conn.close();
    } catch { /* already closed */ }
    throw error;
  }
  return new Client(conn);
}

interface Waiter {
  id?: number;
  resolve: (answer: Uint8Array) => void;
  reject: (error: Error) => void;
}

class Client implements DotClient {
  readonly #conn: Deno.TlsConn;
  readonly #queue: Uint8Array[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #arrivals: number[] = [];
  #pending = new Uint8Array(0);
  #isClosed = false;
  #closedByUs = false;
  readonly closed: Promise<void>;

  constructor(conn: Deno.TlsConn) {
    this.#conn = conn;
    this.closed = this.#readLoop();
  }

  get arrivals(): readonly number[] {
    return this.#arrivals;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  async #readLoop(): Promise<void> {
    const buf = new Uint8Array(65_536 + 2);
    try {
      for (;;) {
        const n = await this.#conn.read(buf);
        if (n === null) break;
        this.#feed(buf.subarray(0, n));
      }
    } catch {
      // reset, or closed by us: either way the connection is over
    } finally {
      this.#isClosed = true;
      const why = this.#closedByUs ? "closed by the test" : "closed by the server";
      for (const w of this.#waiters.splice(0)) {
        w.reject(new Error(`dot client: connection ${why} while waiting for an answer`));
      }
    }
  }

  #feed(chunk: Uint8Array): void {
    const data = new Uint8Array(this.#pending.length + chunk.length);
    data.set(this.#pending);
    data.set(chunk, this.#pending.length);
    let pos = 0;
    while (data.length - pos >= 2) {
      const len = (data[pos] << 8) | data[pos + 1];
      if (data.length - pos - 2 < len) break;
      this.#deliver(data.slice(pos + 2, pos + 2 + len));
      pos += 2 + len;
    }
    this.#pending = data.slice(pos);
  }

  #deliver(answer: Uint8Array): void {
    const id = answer.length >= 2 ? (answer[0] << 8) | answer[1] : -1;
    this.#arrivals.push(id);
    const i = this.#waiters.findIndex((w) => w.id === undefined || w.id === id);
    if (i >= 0) this.#waiters.splice(i, 1)[0].resolve(answer);
    else this.#queue.push(answer);
  }

  #take(id: number | undefined, timeoutMs: number): Promise<Uint8Array> {
    const i = this.#queue.findIndex((a) => id === undefined || ((a[0] << 8) | a[1]) === id);
    if (i >= 0) return Promise.resolve(this.#queue.splice(i, 1)[0]);
    if (this.#isClosed) {
      return Promise.reject(new Error("dot client: connection already closed"));
    }
    return new Promise((resolve, reject) => {
      const what = id === undefined ? "the next answer" : `the answer with ID ${id}`;
      const waiter: Waiter = {
        id,
        resolve: (a) => {
          clearTimeout(timer);
          resolve(a);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      const timer = setTimeout(() => {
        const at = this.#waiters.indexOf(waiter);
        if (at >= 0) this.#waiters.splice(at, 1);
        reject(new Error(`dot client: no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  async send(...wires: Uint8Array[]): Promise<void> {
    await writeAll(this.#conn, frame(...wires));
  }

  async writeRaw(bytes: Uint8Array, options: RawWriteOptions = {}): Promise<void> {
    const size = options.chunkSize ?? bytes.length;
    for (let pos = 0; pos < bytes.length; pos += size) {
      await writeAll(this.#conn, bytes.subarray(pos, pos + size));
      if (options.pauseMs && pos + size < bytes.length) {
        await new Promise((r) => setTimeout(r, options.pauseMs));
      }
    }
  }

  next(timeoutMs = DEFAULT_WAIT_MS): Promise<Uint8Array> {
    return this.#take(undefined, timeoutMs);
  }

  waitFor(id: number, timeoutMs = DEFAULT_WAIT_MS): Promise<Uint8Array> {
    return this.#take(id, timeoutMs);
  }

  async collect(n: number, timeoutMs = DEFAULT_WAIT_MS): Promise<Uint8Array[]> {
    const deadline = Date.now() + timeoutMs;
    const out: Uint8Array[] = [];
    while (out.length < n) {
      out.push(await this.#take(undefined, Math.max(1, deadline - Date.now())));
    }
    return out;
  }

  close(): void {
    if (this.#closedByUs) return;
    this.#closedByUs = true;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

// ---------------------------------------------------------------------------------------------
// Queries and answers

/** An EDNS option as dns-packet encodes it. */
export type EdnsOptionInput = { code: number; data: Uint8Array };

/** Options of {@linkcode buildQuery}. */
export interface QueryOptions {
  /** Message ID. Default 1. */
  id?: number;
  /** Record type. Default `A`. */
  type?: "A" | "AAAA" | "TXT";
  /** Add an OPT record (implied by `options`). Default false. */
  edns?: boolean;
  /** EDNS options to carry. */
  options?: EdnsOptionInput[];
}

/** Option code → empty option data helpers for the common client-side options. */
export const Opt = {
  /** RFC 7828 edns-tcp-keepalive as a client sends it (no timeout). */
  keepalive: (): EdnsOptionInput => ({ code: 11, data: new Uint8Array(0) }),
  /** RFC 7830 padding of `n` zero bytes. */
  padding: (n = 0): EdnsOptionInput => ({ code: 12, data: new Uint8Array(n) }),
  /** RFC 7871 client subnet for an IPv4 /24. */
  clientSubnet: (a: number, b: number, c: number): EdnsOptionInput => ({
    code: 8,
    data: new Uint8Array([0, 1, 24, 0, a, b, c]),
  }),
} as const;

/** Builds a recursive query with dns-packet. */
export function buildQuery(name: string, options: QueryOptions = {}): Uint8Array {
  const edns = options.edns || options.options !== undefined;
  const packet: dnsPacket.Packet = {
    type: "query",
    id: options.id ?? 1,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: options.type ?? "A", name, class: "IN" }],
    additionals: edns
      ? [
        {
          type: "OPT",
          name: ".",
          udpPayloadSize: 1232,
          flags: 0,
          options: (options.options ?? []).map((o) => ({
            code: o.code,
            data: Buffer.from(o.data),
          })),
        } as dnsPacket.Answer,
      ]
      : [],
  };
  return new Uint8Array(dnsPacket.encode(packet));
}

/** The message ID of a wire message. */
export function idOf(wire: Uint8Array): number {
  return getId(wire);
}

/** The header rcode (low 4 bits). */
export function rcodeOf(wire: Uint8Array): number {
  return headerRcode(getFlags(wire));
}

/** Decodes a message with dns-packet. */
export function decode(wire: Uint8Array): dnsPacket.Packet {
  return dnsPacket.decode(Buffer.from(wire));
}

/** The A records' addresses in an answer. */
export function aRecords(wire: Uint8Array): string[] {
  const out: string[] = [];
  for (const a of decode(wire).answers ?? []) if (a.type === "A") out.push(a.data);
  return out;
}

/** The first question's name. */
export function questionName(wire: Uint8Array): string | undefined {
  return decode(wire).questions?.[0]?.name;
}

/** The OPT record's options as `{ code, data }`, or `undefined` when there is no OPT record. */
export function ednsOptions(wire: Uint8Array): { code: number; data: Uint8Array }[] | undefined {
  const opt = (decode(wire).additionals ?? []).find((r) => r.type === "OPT") as
    | { options?: { code: number; data: Uint8Array }[] }
    | undefined;
  if (!opt) return undefined;
  return (opt.options ?? []).map((o) => ({ code: o.code, data: new Uint8Array(o.data) }));
}

/** The Extended DNS Error info code (RFC 8914) of an answer, if it has one. */
export function edeCode(wire: Uint8Array): number | undefined {
  const ede = ednsOptions(wire)?.find((o) => o.code === 15);
  return ede && ede.data.length >= 2 ? (ede.data[0] << 8) | ede.data[1] : undefined;
}

// ---------------------------------------------------------------------------------------------
// The bridge under test

/** A bridge started in-process for a test, with what a client needs to reach it. */
export interface TestBridge {
  readonly bridge: Bridge;
  /** The bound DoT port on 127.0.0.1. */
  readonly port: number;
  /** The CA PEM that clients must trust. */
  readonly caPem: string;
  /** Every log line the bridge wrote (debug level). */
  readonly logs: string[];
  /** Opens a DoT client to this bridge. */
  connect(): Promise<DotClient>;
  /** Shuts the bridge down and removes its temporary files. */
  close(): Promise<void>;
}

/**
 * Starts the bridge with `--listen 127.0.0.1:0`, the test PKI's server certificate, `upstream`
 * as its only DoH upstream and the DoH face off (`--http-listen off`), plus any extra
 * command-line `args`.
 */
export async function startTestBridge(
  pki: TestPki,
  upstream: LocalDohUpstream | string,
  args: string[] = [],
): Promise<TestBridge> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-e2e-" });
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  await Deno.writeTextFile(certFile, pki.server.chainPem);
  await Deno.writeTextFile(keyFile, pki.server.keyPem);
  const caFile = `${dir}/upstream-ca.pem`;
  await Deno.writeTextFile(caFile, pki.ca.certPem);
  const url = typeof upstream === "string" ? upstream : upstream.url;
  const parsed = parseConfig({
    // The DoH face is off unless `args` turns it on (a later option wins).
    args: [
      "--http-listen",
      "off",
      "--cert",
      certFile,
      "--key",
      keyFile,
      "--listen",
      "127.0.0.1:0",
      "--upstream-ca",
      caFile,
      "--upstream",
      url,
      ...args,
    ],
    env: {},
  });
  if (parsed.help) throw new Error("startTestBridge: args asked for --help");
  const config = parsed.config;
  const logs: string[] = [];
  let bridge: Bridge;
  try {
    // The production upstream transports (node:http2 for DoH, node:tls for DoT), trusting the
    // test CA through --upstream-ca.
    bridge = await startBridge(config, {
      logger: createLogger({ level: "debug", sink: (line) => logs.push(line) }),
    });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  const port = bridge.dot.addr.port;
  return {
    bridge,
    port,
    caPem: pki.ca.certPem,
    logs,
    connect: () => connectDot({ port, caCerts: [pki.ca.certPem] }),
    async close() {
      await bridge.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
