/**
 * Wire-format fixtures for the DNS tests: a named corpus of malformed messages (reused by the
 * fuzz suite and the end-to-end tests) and small builders for well-formed ones.
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";

/** Encodes a dns-packet message as a plain `Uint8Array` (a copy, not a `Buffer`). */
export function encodePacket(packet: dnsPacket.Packet): Uint8Array {
  return new Uint8Array(dnsPacket.encode(packet));
}

/** Decodes wire bytes with dns-packet (the reference decoder in these tests). */
export function decodePacket(wire: Uint8Array): dnsPacket.Packet {
  return dnsPacket.decode(Buffer.from(wire));
}

/** One EDNS option as raw code and data. */
export interface RawOption {
  code: number;
  data: Uint8Array;
}

/** What {@linkcode makeQuery} builds. */
export interface QuerySpec {
  id?: number;
  name?: string;
  /** dns-packet type name, e.g. `"A"`, `"AAAA"`, `"TXT"`. Default `"A"`. */
  type?: string;
  /** Header flags word without QR (dns-packet's `flags`: opcode, RD, CD, ...). Default RD. */
  flags?: number;
  /** Sets QR (the message is a response). */
  response?: boolean;
  /** Adds an OPT record. */
  opt?: {
    udpSize?: number;
    /** The 16-bit flags of the OPT TTL (DO is 0x8000). */
    flags?: number;
    version?: number;
    extendedRcode?: number;
    options?: RawOption[];
  };
}

/** Builds a query (or, with `response`, a bare response) with dns-packet. */
export function makeQuery(spec: QuerySpec = {}): Uint8Array {
  const additionals: dnsPacket.Answer[] = [];
  if (spec.opt) {
    additionals.push({
      type: "OPT",
      name: ".",
      udpPayloadSize: spec.opt.udpSize ?? 1232,
      flags: spec.opt.flags ?? 0,
      ednsVersion: spec.opt.version ?? 0,
      extendedRcode: spec.opt.extendedRcode ?? 0,
      options: (spec.opt.options ?? []).map((o) => ({ code: o.code, data: Buffer.from(o.data) })),
    } as unknown as dnsPacket.Answer);
  }
  return encodePacket({
    type: spec.response ? "response" : "query",
    id: spec.id ?? 0x1234,
    flags: spec.flags ?? dnsPacket.RECURSION_DESIRED,
    questions: [{ type: (spec.type ?? "A") as "A", name: spec.name ?? "example.com", class: "IN" }],
    additionals,
  });
}

/** Builds a response to `query`-like fields with one A answer, via dns-packet. */
export function makeAnswer(
  spec: QuerySpec & { rcode?: number; address?: string } = {},
): Uint8Array {
  const name = spec.name ?? "example.com";
  const additionals: dnsPacket.Answer[] = [];
  if (spec.opt) {
    additionals.push({
      type: "OPT",
      name: ".",
      udpPayloadSize: spec.opt.udpSize ?? 1232,
      flags: spec.opt.flags ?? 0,
      options: (spec.opt.options ?? []).map((o) => ({ code: o.code, data: Buffer.from(o.data) })),
    } as unknown as dnsPacket.Answer);
  }
  return encodePacket({
    type: "response",
    id: spec.id ?? 0x1234,
    flags: (spec.flags ?? dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE) |
      (spec.rcode ?? 0),
    questions: [{ type: (spec.type ?? "A") as "A", name, class: "IN" }],
    answers: spec.rcode ? [] : [{ type: "A", name, ttl: 300, data: spec.address ?? "192.0.2.1" }],
    additionals,
  });
}

/** Concatenates byte arrays. */
export function concat(...parts: (Uint8Array | readonly number[])[]): Uint8Array {
  const arrays = parts.map((p) => p instanceof Uint8Array ? p : Uint8Array.from(p));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let pos = 0;
  for (const a of arrays) {
    out.set(a, pos);
    pos += a.length;
  }
  return out;
}

/** A 12-byte header with these fields. */
export function header(
  fields: { id?: number; flags?: number; qd?: number; an?: number; ns?: number; ar?: number } = {},
): Uint8Array {
  const words = [
    fields.id ?? 0xbeef,
    fields.flags ?? 0x0100,
    fields.qd ?? 0,
    fields.an ?? 0,
    fields.ns ?? 0,
    fields.ar ?? 0,
  ];
  return Uint8Array.from(words.flatMap((w) => [w >> 8, w & 0xff]));
}

/** A name in uncompressed wire form (`"a.b"` → `01 61 01 62 00`). */
export function wireName(name: string): Uint8Array {
  const labels = name === "" ? [] : name.split(".");
  return concat(
    ...labels.map((l) => concat([l.length], new TextEncoder().encode(l))),
    [0],
  );
}

/** Type A, class IN. */
export const A_IN: readonly number[] = [0, 1, 0, 1];

/** Deterministic bytes from a 32-bit seed (mulberry32), for fixtures that must not vary. */
export function seededBytes(length: number, seed: number): Uint8Array {
  let a = seed >>> 0;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return out;
}

/** A malformed message and what the bridge must do with it. */
export interface MalformedCase {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** `drop`: not even a header, close the connection. `formerr`: answer FORMERR. */
  readonly expect: "drop" | "formerr";
}

const QUERY_FLAGS = 0x0100; // RD

/**
 * Messages a client might send that are not acceptable queries. Every entry is classified the
 * same way by the bridge whichever face it arrives on.
 */
export const MALFORMED: MalformedCase[] = [
  /** Nothing at all. */
  { name: "zero-length", bytes: new Uint8Array(0), expect: "drop" },
  /** Five bytes: less than the 12-byte header. */
  { name: "short header (5 bytes)", bytes: Uint8Array.from([0x12, 0x34, 1, 0, 0]), expect: "drop" },
  /** Eleven bytes: one short of a header. */
  { name: "short header (11 bytes)", bytes: header().subarray(0, 11), expect: "drop" },
  /** A bare header with qdcount 0: no question to answer. */
  { name: "header only, qdcount 0", bytes: header({ flags: QUERY_FLAGS }), expect: "formerr" },
  /** qdcount says 2, one question present. */
  {
    name: "qdcount lies (2 claimed, 1 present)",
    bytes: concat(header({ qd: 2 }), wireName("example.com"), A_IN),
    expect: "formerr",
  },
  /** qdcount says 1, no question bytes. */
  { name: "qdcount lies (1 claimed, none present)", bytes: header({ qd: 1 }), expect: "formerr" },
  /** ancount says 1, no answer bytes. */
  {
    name: "ancount lies",
    bytes: concat(header({ qd: 1, an: 1 }), wireName("example.com"), A_IN),
    expect: "formerr",
  },
  /** arcount says 3, nothing there. */
  {
    name: "arcount lies",
    bytes: concat(header({ qd: 1, ar: 3 }), wireName("example.com"), A_IN),
    expect: "formerr",
  },
  /** The question name is a pointer to itself (offset 12). */
  {
    name: "compression loop (pointer to itself)",
    bytes: concat(header({ qd: 1 }), [0xc0, 12], A_IN),
    expect: "formerr",
  },
  /** The question name's second label is a pointer forward to the type field. */
  {
    name: "compression pointer forward",
    bytes: concat(header({ qd: 1 }), [1, 0x61, 0xc0, 16], A_IN),
    expect: "formerr",
  },
  /** Two pointers referring to each other. */
  {
    name: "compression loop (two pointers)",
    bytes: concat(header({ qd: 1 }), [0xc0, 14, 0xc0, 12], A_IN),
    expect: "formerr",
  },
  /** A pointer whose second byte is missing. */
  {
    name: "truncated compression pointer",
    bytes: concat(header({ qd: 1 }), [1, 0x61, 0xc0]),
    expect: "formerr",
  },
  /** A label of length 63 with only 3 bytes behind it. */
  {
    name: "label past end",
    bytes: concat(header({ qd: 1 }), [63, 0x61, 0x62, 0x63]),
    expect: "formerr",
  },
  /** Label type 0x40 (extended label, RFC 6891 deprecated) is reserved. */
  {
    name: "reserved label type",
    bytes: concat(header({ qd: 1 }), [0x41, 0x61, 0], A_IN),
    expect: "formerr",
  },
  /** Five 63-byte labels: 321 bytes of name, over the 255-byte limit. */
  {
    name: "name over 255 bytes",
    bytes: concat(header({ qd: 1 }), wireName(Array(5).fill("a".repeat(63)).join(".")), A_IN),
    expect: "formerr",
  },
  /** The question's type and class are cut short. */
  {
    name: "question runs past the end",
    bytes: concat(header({ qd: 1 }), wireName("example.com"), [0, 1]),
    expect: "formerr",
  },
  /** A valid query followed by junk. */
  {
    name: "trailing bytes",
    bytes: concat(makeQuery({ id: 7 }), [0xde, 0xad]),
    expect: "formerr",
  },
  /** QR is set: a response sent where a query belongs. */
  {
    name: "response sent as a query",
    bytes: makeQuery({ id: 9, response: true }),
    expect: "formerr",
  },
  /** Two questions (well-formed, but a query must have exactly one). */
  {
    name: "two questions",
    bytes: concat(header({ qd: 2 }), wireName("a.example"), A_IN, wireName("b.example"), A_IN),
    expect: "formerr",
  },
  /** A query carrying an answer record. */
  {
    name: "answers in a query",
    bytes: concat(
      header({ qd: 1, an: 1 }),
      wireName("example.com"),
      A_IN,
      [0xc0, 12],
      A_IN,
      [0, 0, 0, 60, 0, 4, 192, 0, 2, 1],
    ),
    expect: "formerr",
  },
  /** Two OPT records in the additional section. */
  {
    name: "two OPT records",
    bytes: concat(
      header({ qd: 1, ar: 2 }),
      wireName("example.com"),
      A_IN,
      [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0],
      [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0],
    ),
    expect: "formerr",
  },
  /** An OPT record in the answer section. */
  {
    name: "OPT outside the additional section",
    bytes: concat(
      header({ qd: 1, an: 1 }),
      wireName("example.com"),
      A_IN,
      [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 0],
    ),
    expect: "formerr",
  },
  /** An EDNS option whose length runs past its OPT record's rdata. */
  {
    name: "EDNS option past the OPT record",
    bytes: concat(
      header({ qd: 1, ar: 1 }),
      wireName("example.com"),
      A_IN,
      [0, 0, 41, 4, 208, 0, 0, 0, 0, 0, 6],
      [0, 12, 0, 9, 0, 0],
    ),
    expect: "formerr",
  },
  /** A record whose rdlength runs past the end of the message. */
  {
    name: "record data past end",
    bytes: concat(
      header({ qd: 1, ar: 1 }),
      wireName("example.com"),
      A_IN,
      [0, 0, 1, 0, 1, 0, 0, 0, 60, 0, 200, 1, 2, 3],
    ),
    expect: "formerr",
  },
  /** An HTTP request line sent to a DNS port: parses as a header with an absurd qdcount. */
  {
    name: "plaintext GET / HTTP/1.1",
    bytes: new TextEncoder().encode("GET / HTTP/1.1\r\nHost: dns.example\r\n\r\n"),
    expect: "formerr",
  },
  /** 65535 pseudo-random bytes (seed 0x5eed): the largest frame, all noise. */
  {
    name: "65535 random bytes (seed 0x5eed)",
    bytes: seededBytes(65535, 0x5eed),
    expect: "formerr",
  },
];
