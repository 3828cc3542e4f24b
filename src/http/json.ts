/**
 * The JSON flavour of DoH (Google's `/resolve`, Cloudflare's `application/dns-json`): build a
 * wire query from `?name=&type=&do=&cd=`, and turn a wire answer into
 * `{Status, TC, RD, RA, AD, CD, Question, Answer, Authority, Comment}` from its parse (no header
 * read again). Pure functions.
 *
 * @module
 */
import { getUint16 as u16, getUint32 as u32 } from "../bytes/uint.ts";
import { buildQuery } from "../dns/build_query.ts";
import { EdnsOptionCode, Flag, HEADER_LENGTH, RrType } from "../dns/constants.ts";
import type { Answer } from "../dns/answer.ts";
import { type EdnsOption, headerRcode, readName } from "../dns/message.ts";

/** The media type of the JSON API. */
export const DNS_JSON = "application/dns-json";

/** Record type mnemonics understood in `?type=` and used in nothing else (output is numeric). */
export const RR_TYPE_NUMBERS: Readonly<Record<string, number>> = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  PTR: 12,
  HINFO: 13,
  MX: 15,
  TXT: 16,
  RP: 17,
  AAAA: 28,
  LOC: 29,
  SRV: 33,
  NAPTR: 35,
  CERT: 37,
  DNAME: 39,
  DS: 43,
  SSHFP: 44,
  IPSECKEY: 45,
  RRSIG: 46,
  NSEC: 47,
  DNSKEY: 48,
  DHCID: 49,
  NSEC3: 50,
  NSEC3PARAM: 51,
  TLSA: 52,
  SMIMEA: 53,
  CDS: 59,
  CDNSKEY: 60,
  OPENPGPKEY: 61,
  CSYNC: 62,
  ZONEMD: 63,
  SVCB: 64,
  HTTPS: 65,
  SPF: 99,
  URI: 256,
  CAA: 257,
  ANY: 255,
};

/**
 * Parses a `?type=` value: a mnemonic (`aaaa`, case-insensitive), `TYPE65` (RFC 3597) or a
 * number 1-65535. OPT (41) is not a question type.
 *
 * @returns the type number, or `undefined` if the text is none of those
 */
export function parseRrType(text: string): number | undefined {
  const upper = text.trim().toUpperCase();
  if (upper in RR_TYPE_NUMBERS) return RR_TYPE_NUMBERS[upper];
  const m = /^(?:TYPE)?(\d{1,5})$/.exec(upper);
  if (!m) return undefined;
  const n = Number(m[1]);
  return n >= 1 && n <= 65535 && n !== RrType.OPT ? n : undefined;
}

/** The JSON API's query parameters, as they come from the URL (absent: `null`/`undefined`). */
export interface JsonQueryParams {
  name?: string | null;
  /** Mnemonic or number; default `A`. */
  type?: string | null;
  /** `1`/`true`: set the DO bit (RFC 3225). */
  do?: string | null;
  /** `1`/`true`: set CD (checking disabled). */
  cd?: string | null;
}

/** The outcome of {@linkcode buildJsonQuery}: a wire query, or what is wrong with the request. */
export type JsonQueryResult =
  | { readonly ok: true; readonly wire: Uint8Array; readonly name: string; readonly type: number }
  | { readonly ok: false; readonly error: string };

function flagParam(value: string | null | undefined): boolean {
  return value === "1" || value?.toLowerCase() === "true";
}

/** Checks a presentation-form name (ASCII, no escapes); returns it without the final dot. */
function checkName(name: string): string {
  if (name === "" || name === ".") return "";
  const bare = name.endsWith(".") ? name.slice(0, -1) : name;
  if (!/^[!-~]+$/.test(bare) || bare.includes("\\")) {
    throw new RangeError(
      "name must be printable ASCII without spaces or escapes (IDNs in punycode)",
    );
  }
  const labels = bare.split(".");
  if (labels.some((l) => l.length === 0)) throw new RangeError("name has an empty label");
  if (labels.some((l) => l.length > 63)) throw new RangeError("name has a label over 63 bytes");
  if (bare.length + 2 > 255) throw new RangeError("name is over 255 bytes");
  return bare;
}

/**
 * Builds the wire query for a JSON API request: ID 0, RD set, CD when `cd` is set, and an OPT
 * record (1232-byte UDP size) with DO when `do` is set.
 *
 * @example
 * ```ts
 * const q = buildJsonQuery({ name: "example.com", type: "AAAA", do: "1" });
 * if (q.ok) await process(q.wire, ctx);
 * ```
 */
export function buildJsonQuery(params: JsonQueryParams): JsonQueryResult {
  if (params.name === undefined || params.name === null) {
    return { ok: false, error: "missing name parameter" };
  }
  let name: string;
  try {
    name = checkName(params.name);
  } catch (e) {
    return { ok: false, error: `invalid name: ${(e as Error).message}` };
  }
  const typeText = params.type ?? "A";
  const type = parseRrType(typeText === "" ? "A" : typeText);
  if (type === undefined) {
    return { ok: false, error: `invalid type "${typeText.slice(0, 32)}"` };
  }
  const wire = buildQuery({
    name,
    type,
    flags: Flag.RD | (flagParam(params.cd) ? Flag.CD : 0),
    edns: { dnssecOk: flagParam(params.do) },
  });
  return { ok: true, wire, name, type };
}

/** One record in a JSON answer. */
export interface DnsJsonRecord {
  /** Owner name with the final dot. */
  name: string;
  type: number;
  TTL: number;
  /** Presentation form of the RDATA (see {@linkcode formatRdata}). */
  data: string;
}

/** A JSON API answer in Google's / Cloudflare's shape. */
export interface DnsJsonResponse {
  /** The rcode, extended by the OPT record (0 NOERROR, 2 SERVFAIL, 3 NXDOMAIN, ...). */
  Status: number;
  TC: boolean;
  RD: boolean;
  RA: boolean;
  AD: boolean;
  CD: boolean;
  Question: { name: string; type: number }[];
  /** Omitted when the answer section is empty, as Google and Cloudflare do. */
  Answer?: DnsJsonRecord[];
  /** Omitted when the authority section is empty. */
  Authority?: DnsJsonRecord[];
  /** Extended DNS Errors (RFC 8914), as `EDE(22): text`. */
  Comment?: string;
}

function fqdn(name: string): string {
  return name === "" ? "." : name + ".";
}

/** RFC 5952 text form of a 16-byte IPv6 address. */
function ipv6(bytes: Uint8Array): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(u16(bytes, i));
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart < 0) return hex.join(":");
  return hex.slice(0, bestStart).join(":") + "::" + hex.slice(bestStart + bestLen).join(":");
}

function quoteCharacterString(bytes: Uint8Array): string {
  let s = '"';
  for (const c of bytes) {
    if (c === 0x22 || c === 0x5c) s += "\\" + String.fromCharCode(c);
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c);
    else s += "\\" + c.toString().padStart(3, "0");
  }
  return s + '"';
}

function generic(rdata: Uint8Array): string {
  return rdata.length === 0 ? "\\# 0" : `\\# ${rdata.length} ${rdata.toHex()}`;
}

/**
 * Presentation form of one record's RDATA, read from the whole message (names in RDATA may be
 * compressed): A/AAAA addresses, CNAME/NS/PTR/DNAME names with the final dot, MX
 * `pref name.`, SOA `mname. rname. serial refresh retry expire minimum`, SRV
 * `prio weight port target.`, TXT as quoted strings joined by spaces, CAA `flags tag "value"`;
 * anything else (or malformed RDATA) in RFC 3597 generic form `\# len hex`.
 */
export function formatRdata(wire: Uint8Array, type: number, start: number, end: number): string {
  const rdata = wire.subarray(start, end);
  const len = end - start;
  const name = (at: number) => {
    const r = readName(wire, at);
    if (r.end > end) throw new RangeError("name runs past the RDATA");
    return { text: fqdn(r.name), end: r.end };
  };
  try {
    switch (type) {
      case RrType.A:
        if (len === 4) return rdata.join(".");
        break;
      case RrType.AAAA:
        if (len === 16) return ipv6(rdata);
        break;
      case RrType.NS:
      case RrType.CNAME:
      case RrType.PTR:
      case 39: { // DNAME
        const n = name(start);
        if (n.end === end) return n.text;
        break;
      }
      case 15: { // MX
        if (len < 3) break;
        const n = name(start + 2);
        if (n.end === end) return `${u16(wire, start)} ${n.text}`;
        break;
      }
      case 33: { // SRV
        if (len < 7) break;
        const n = name(start + 6);
        if (n.end === end) {
          return `${u16(wire, start)} ${u16(wire, start + 2)} ${u16(wire, start + 4)} ${n.text}`;
        }
        break;
      }
      case RrType.SOA: {
        const m = name(start);
        const r = name(m.end);
        if (r.end + 20 !== end) break;
        const nums = [0, 4, 8, 12, 16].map((o) => u32(wire, r.end + o));
        return `${m.text} ${r.text} ${nums.join(" ")}`;
      }
      case RrType.TXT: {
        const parts: string[] = [];
        let pos = start;
        while (pos < end) {
          const l = wire[pos];
          if (pos + 1 + l > end) throw new RangeError("character-string runs past the RDATA");
          parts.push(quoteCharacterString(wire.subarray(pos + 1, pos + 1 + l)));
          pos += 1 + l;
        }
        if (parts.length > 0) return parts.join(" ");
        break;
      }
      case 257: { // CAA
        if (len < 2 || 2 + wire[start + 1] > len) break;
        const tagEnd = start + 2 + wire[start + 1];
        const tag = new TextDecoder().decode(wire.subarray(start + 2, tagEnd));
        return `${wire[start]} ${tag} ${quoteCharacterString(wire.subarray(tagEnd, end))}`;
      }
    }
  } catch {
    // fall through to the generic form
  }
  return generic(rdata);
}

/**
 * Converts a response to the JSON API shape. The header fields, the question and the OPT record
 * come from the answer's parse (`info`); only the answer and authority records are read from the
 * bytes, to be written out. The OPT record is not listed; its extended rcode goes into `Status`
 * and its Extended DNS Errors into `Comment`.
 *
 * @throws {RangeError} if the bytes do not hold the records `info` promises
 *
 * @example
 * ```ts
 * const body = JSON.stringify(answerToJson(answerOf(wire))); // {"Status":0,"TC":false,...}
 * ```
 */
export function answerToJson(answer: Answer): DnsJsonResponse {
  const { wire, info } = answer;
  const { flags, ancount, nscount } = info;
  const answers: DnsJsonRecord[] = [];
  const authority: DnsJsonRecord[] = [];
  let pos = info.questionEnd;
  for (let i = 0; i < ancount + nscount; i++) {
    const n = readName(wire, pos);
    const rdata = n.end + 10;
    if (rdata > wire.length) throw new RangeError("dns: record header runs past the end");
    const type = u16(wire, n.end);
    const end = rdata + u16(wire, n.end + 8);
    if (end > wire.length) throw new RangeError("dns: record data runs past the end");
    pos = end;
    (i < ancount ? answers : authority).push({
      name: fqdn(n.name),
      type,
      TTL: u32(wire, n.end + 4),
      data: formatRdata(wire, type, rdata, end),
    });
  }
  const extendedRcode = info.opt ? info.opt.ttl >>> 24 : 0;
  const json: DnsJsonResponse = {
    Status: (extendedRcode << 4) | headerRcode(flags),
    TC: (flags & Flag.TC) !== 0,
    RD: (flags & Flag.RD) !== 0,
    RA: (flags & Flag.RA) !== 0,
    AD: (flags & Flag.AD) !== 0,
    CD: (flags & Flag.CD) !== 0,
    Question: questionsOf(answer),
  };
  if (answers.length > 0) json.Answer = answers;
  if (authority.length > 0) json.Authority = authority;
  const comments = info.opt ? extendedErrors(info.opt.options) : [];
  if (comments.length > 0) json.Comment = comments.join("; ");
  return json;
}

/** The question section: the parse's one question, or (rarely: not one) each name read again. */
function questionsOf({ wire, info }: Answer): DnsJsonResponse["Question"] {
  if (info.qdcount === 1 && info.question) {
    return [{ name: fqdn(info.question.name), type: info.question.type }];
  }
  const question: DnsJsonResponse["Question"] = [];
  let pos = HEADER_LENGTH;
  for (let i = 0; i < info.qdcount; i++) {
    const n = readName(wire, pos);
    if (n.end + 4 > wire.length) throw new RangeError("dns: question runs past the end");
    question.push({ name: fqdn(n.name), type: u16(wire, n.end) });
    pos = n.end + 4;
  }
  return question;
}

/** Extended DNS Errors (RFC 8914) among the OPT record's options, as `EDE(code): text`. */
function extendedErrors(options: readonly EdnsOption[]): string[] {
  const out: string[] = [];
  for (const { code, data } of options) {
    if (code !== EdnsOptionCode.EXTENDED_ERROR || data.length < 2) continue;
    const text = new TextDecoder().decode(data.subarray(2));
    out.push(`EDE(${u16(data, 0)})${text ? `: ${text}` : ""}`);
  }
  return out;
}
