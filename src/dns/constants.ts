/** Length of the fixed DNS header (RFC 1035 §4.1.1). */
export const HEADER_LENGTH = 12;

/** The largest DNS message that fits a 2-byte length prefix or an RFC 8484 body. */
export const MAX_MESSAGE_SIZE = 65535;

/** Response codes (RFC 1035 §4.1.1, RFC 6895). */
export const Rcode = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** RFC 6891: extended rcode, needs an OPT record. */
  BADVERS: 16,
} as const;

const RCODE_NAMES = ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"];

/** An rcode's mnemonic (`NXDOMAIN`), or its number: for metric labels and the query log. */
export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? String(rcode);
}

/** Operation codes. Only QUERY is forwarded; the rest get NOTIMP. */
export const Opcode = { QUERY: 0 } as const;

/** Resource record types this code needs by number. */
export const RrType = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  /** Host information (RFC 1035 §3.3.2); RFC 8482's answer to ANY. */
  HINFO: 13,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  /** Service binding (RFC 9460). */
  SVCB: 64,
  /** A question type only: every record at the name (RFC 8482 lets servers answer less). */
  ANY: 255,
} as const;

/** Resource record classes (RFC 1035 §3.2.4). */
export const RrClass = { IN: 1 } as const;

/** EDNS(0) option codes (IANA "DNS EDNS0 Option Codes"). */
export const EdnsOptionCode = {
  /** RFC 7871 EDNS Client Subnet. */
  CLIENT_SUBNET: 8,
  /** RFC 7828 edns-tcp-keepalive. */
  TCP_KEEPALIVE: 11,
  /** RFC 7830 padding. */
  PADDING: 12,
  /** RFC 8914 Extended DNS Error. */
  EXTENDED_ERROR: 15,
} as const;

/** Extended DNS Error info codes (RFC 8914 §4) that this bridge emits. */
export const EdeCode = {
  OTHER: 0,
  STALE_ANSWER: 3,
  /** RFC 8914 §4.16: blocked by the resolver's own policy (a blocklist). */
  BLOCKED: 15,
  PROHIBITED: 18,
  NO_REACHABLE_AUTHORITY: 22,
  NETWORK_ERROR: 23,
} as const;

/** Header flag bits (second 16-bit word of the header). */
export const Flag = {
  QR: 0x8000,
  AA: 0x0400,
  TC: 0x0200,
  RD: 0x0100,
  RA: 0x0080,
  AD: 0x0020,
  CD: 0x0010,
} as const;

/** The DO bit in the OPT record's TTL field (RFC 3225). */
export const EDNS_DO = 0x8000;

/** Default UDP payload size advertised in OPT records we create (DNS Flag Day 2020). */
export const DEFAULT_EDNS_UDP_SIZE = 1232;

/** RFC 8467 recommended block lengths. */
export const PADDING_BLOCK = { QUERY: 128, RESPONSE: 468 } as const;
