/**
 * dnstap messages (`dnstap.proto`, protobuf) for what the bridge sees: CLIENT_QUERY and
 * CLIENT_RESPONSE for every query a face answers, FORWARDER_QUERY and FORWARDER_RESPONSE for
 * every exchange with an upstream. Encoded with `@bufbuild/protobuf`'s wire writer (field by
 * field, from the schema's numbers below): no generated code, and the varints, fixed32 and
 * length-delimited fields are the library's.
 *
 * @module
 */
import { BinaryWriter, WireType } from "@bufbuild/protobuf/wire";
import ipaddr from "ipaddr.js";
import type { Face } from "../pipeline/types.ts";
import type { QueryTap } from "../resolver/processor.ts";
import type { ExchangeReport } from "../upstream/instrumented.ts";
import { dataFrame } from "./frame_streams.ts";

/** `Message.Type` values the bridge sends. */
export const MessageType = {
  CLIENT_QUERY: 5,
  CLIENT_RESPONSE: 6,
  FORWARDER_QUERY: 7,
  FORWARDER_RESPONSE: 8,
} as const;

/** `SocketFamily`. */
export const SocketFamily = { INET: 1, INET6: 2 } as const;

/** `SocketProtocol` (DOQ is 7: 5 and 6 are DNSCrypt over UDP and TCP). */
export const SocketProtocol = { UDP: 1, TCP: 2, DOT: 3, DOH: 4, DOQ: 7 } as const;

/** `HttpProtocol`. */
export const HttpProtocol = { HTTP1: 1, HTTP2: 2, HTTP3: 3 } as const;

/** One dnstap `Message`, its times in wall-clock milliseconds. */
export interface DnstapMessage {
  readonly type: number;
  readonly family?: number;
  readonly protocol?: number;
  readonly queryAddress?: Uint8Array;
  readonly queryPort?: number;
  readonly responseAddress?: Uint8Array;
  readonly responsePort?: number;
  readonly queryTimeMs?: number;
  readonly queryMessage?: Uint8Array;
  readonly responseTimeMs?: number;
  readonly responseMessage?: Uint8Array;
}

/** What every `Dnstap` envelope says of its sender. */
export interface DnstapIdentity {
  /** `Dnstap.identity`: the server's name (empty: left out). */
  readonly identity?: string;
  /** `Dnstap.version`: software and version. */
  readonly version?: string;
}

const encoder = new TextEncoder();

function writeTime(w: BinaryWriter, secField: number, nsecField: number, ms: number): void {
  const sec = Math.floor(ms / 1000);
  const nsec = Math.min(999_999_999, Math.round((ms - sec * 1000) * 1e6));
  w.tag(secField, WireType.Varint).uint64(sec);
  w.tag(nsecField, WireType.Bit32).fixed32(nsec);
}

/**
 * One `Dnstap` payload (`type` MESSAGE) around `m`.
 *
 * @example
 * ```ts
 * const payload = encodeDnstap({ type: MessageType.CLIENT_QUERY, queryMessage: wire }, { version: "dotbridge 0.1.0" });
 * ```
 */
export function encodeDnstap(m: DnstapMessage, id: DnstapIdentity = {}): Uint8Array {
  const w = new BinaryWriter();
  if (id.identity) w.tag(1, WireType.LengthDelimited).bytes(encoder.encode(id.identity));
  if (id.version) w.tag(2, WireType.LengthDelimited).bytes(encoder.encode(id.version));
  w.tag(14, WireType.LengthDelimited).fork();
  w.tag(1, WireType.Varint).uint32(m.type);
  if (m.family !== undefined) w.tag(2, WireType.Varint).uint32(m.family);
  if (m.protocol !== undefined) w.tag(3, WireType.Varint).uint32(m.protocol);
  if (m.queryAddress) w.tag(4, WireType.LengthDelimited).bytes(m.queryAddress);
  if (m.responseAddress) w.tag(5, WireType.LengthDelimited).bytes(m.responseAddress);
  if (m.queryPort !== undefined) w.tag(6, WireType.Varint).uint32(m.queryPort);
  if (m.responsePort !== undefined) w.tag(7, WireType.Varint).uint32(m.responsePort);
  if (m.queryTimeMs !== undefined) writeTime(w, 8, 9, m.queryTimeMs);
  if (m.queryMessage) w.tag(10, WireType.LengthDelimited).bytes(m.queryMessage);
  if (m.responseTimeMs !== undefined) writeTime(w, 12, 13, m.responseTimeMs);
  if (m.responseMessage) w.tag(14, WireType.LengthDelimited).bytes(m.responseMessage);
  w.join();
  w.tag(15, WireType.Varint).uint32(1); // Dnstap.Type MESSAGE
  return w.finish();
}

/** An address's bytes and family, or undefined when it is no IP address. */
export function addressBytes(
  address: string | undefined,
): { bytes: Uint8Array; family: number } | undefined {
  if (address === undefined) return undefined;
  const text = address.replace(/^\[|\]$/g, "").replace(/%.*$/, "");
  try {
    const ip = ipaddr.process(text);
    return {
      bytes: Uint8Array.from(ip.toByteArray()),
      family: ip.kind() === "ipv4" ? SocketFamily.INET : SocketFamily.INET6,
    };
  } catch {
    return undefined;
  }
}

/** The dnstap socket protocol of a face: `dot`, `doh`, `doq`, and UDP/TCP for plain DNS. */
export function faceProtocol(face: Face | string): number | undefined {
  switch (face) {
    case "dot":
      return SocketProtocol.DOT;
    case "doh":
      return SocketProtocol.DOH;
    case "doq":
      return SocketProtocol.DOQ;
    case "udp":
    case "dns":
      return SocketProtocol.UDP;
    case "tcp":
      return SocketProtocol.TCP;
    default:
      return undefined;
  }
}

/** Options of {@linkcode dnstapTap} and {@linkcode dnstapReporter}. */
export interface DnstapTapOptions extends DnstapIdentity {
  /** Where each data frame goes (a `FrameQueue`'s push): must not wait. */
  send: (frame: Uint8Array) => void;
  /** The listening address of a face (the response address of client messages). */
  local?: (face: Face) => { address: string; port: number } | undefined;
  /** Milliseconds wall clock. Default `Date.now`. */
  now?: () => number;
}

/**
 * CLIENT_QUERY and CLIENT_RESPONSE frames for every answered query, as a processor tap.
 *
 * @example
 * ```ts
 * const tap = dnstapTap({ send: (f) => queue.push(f), version: "dotbridge 0.1.0" });
 * ```
 */
export function dnstapTap(options: DnstapTapOptions): QueryTap {
  const { send } = options;
  const now = options.now ?? Date.now;
  const id = { identity: options.identity, version: options.version };
  return (q) => {
    const responseTimeMs = now();
    const queryTimeMs = responseTimeMs - q.ms;
    const client = addressBytes(q.ctx.client?.address);
    const local = options.local?.(q.ctx.face);
    const server = addressBytes(local?.address);
    const common = {
      family: client?.family ?? server?.family,
      protocol: faceProtocol(q.ctx.face),
      queryAddress: client?.bytes,
      queryPort: q.ctx.client?.port,
      responseAddress: server?.bytes,
      responsePort: local?.port,
      queryTimeMs,
      queryMessage: q.query,
    };
    send(dataFrame(encodeDnstap({ type: MessageType.CLIENT_QUERY, ...common }, id)));
    send(dataFrame(encodeDnstap({
      type: MessageType.CLIENT_RESPONSE,
      ...common,
      responseTimeMs,
      responseMessage: q.answer.wire,
    }, id)));
  };
}

/** What an upstream's name (`https://host:port [2]`, `tls://host`) says of where it is. */
function upstreamEndpoint(name: string): { protocol?: number; address?: string; port?: number } {
  const m = /^(\w+):\/\/(\[[^\]]+\]|[^:/\s]+)(?::(\d+))?/.exec(name);
  if (!m) return {};
  const scheme = m[1].toLowerCase();
  const protocol = scheme === "https"
    ? SocketProtocol.DOH
    : scheme === "tls"
    ? SocketProtocol.DOT
    : scheme === "quic"
    ? SocketProtocol.DOQ
    : scheme === "http"
    ? SocketProtocol.TCP
    : undefined;
  const defaults: Record<string, number> = { https: 443, tls: 853, quic: 853, http: 80 };
  return { protocol, address: m[2], port: m[3] ? Number(m[3]) : defaults[scheme] };
}

/**
 * FORWARDER_QUERY and FORWARDER_RESPONSE frames for every upstream exchange (the response only
 * when there was an answer), as the resolver's report hook.
 *
 * @example
 * ```ts
 * const report = dnstapReporter({ send: (f) => queue.push(f) });
 * ```
 */
export function dnstapReporter(options: DnstapTapOptions): (r: ExchangeReport) => void {
  const { send } = options;
  const now = options.now ?? Date.now;
  const id = { identity: options.identity, version: options.version };
  const endpoints = new Map<
    string,
    ReturnType<typeof upstreamEndpoint> & { ip?: ReturnType<typeof addressBytes> }
  >();
  return (r) => {
    let endpoint = endpoints.get(r.upstream);
    if (!endpoint) {
      const e = upstreamEndpoint(r.upstream);
      endpoint = { ...e, ip: addressBytes(e.address) };
      if (endpoints.size > 1_000) endpoints.clear();
      endpoints.set(r.upstream, endpoint);
    }
    const responseTimeMs = now();
    const common = {
      family: endpoint.ip?.family,
      protocol: endpoint.protocol,
      responseAddress: endpoint.ip?.bytes,
      responsePort: endpoint.port,
      queryTimeMs: responseTimeMs - r.seconds * 1000,
      queryMessage: r.query.wire,
    };
    send(dataFrame(encodeDnstap({ type: MessageType.FORWARDER_QUERY, ...common }, id)));
    if (r.answer) {
      send(dataFrame(encodeDnstap({
        type: MessageType.FORWARDER_RESPONSE,
        ...common,
        responseTimeMs,
        responseMessage: r.answer.wire,
      }, id)));
    }
  };
}
