/**
 * Local records answered without an upstream (split horizon for self-hosters): a hosts file or a
 * small zone file is parsed once into an immutable {@linkcode LocalRecords} set whose answers are
 * built in wire format at load time. Per query only the header, the client's question bytes (its
 * ID and its spelling of the name) and an OPT record are put around a precomputed body.
 *
 * Hosts format: `IP name [aliases...]`, `#` comments. IPv4 gives A, IPv6 gives AAAA (a `%zone`
 * suffix is dropped), and every name also gets a PTR under in-addr.arpa / ip6.arpa (at most 16
 * per address, none for 0.0.0.0 and ::, the sinkhole addresses of block lists).
 *
 * Zone format (a subset of RFC 1035 §5): `name [ttl] [IN] TYPE rdata` with A, AAAA, CNAME, TXT
 * (one or more quoted strings) and PTR; `$TTL` and `$ORIGIN` (always absolute); `@`; names
 * relative to `$ORIGIN`; a line starting with blanks reuses the previous owner; `;` comments;
 * TTLs in seconds or with units (`1h30m`). No parentheses, `$INCLUDE`, wildcards or escapes in
 * names.
 *
 * @module
 */
import { answerOf } from "../dns/answer.ts";
import ipaddr from "ipaddr.js";
import {
  DEFAULT_EDNS_UDP_SIZE,
  EDNS_DO,
  Flag,
  HEADER_LENGTH,
  MAX_MESSAGE_SIZE,
  Rcode,
  RrType,
} from "../dns/constants.ts";
import type { Query } from "../dns/query.ts";
import type { Middleware, QueryContext } from "./types.ts";

/** The two file formats {@linkcode parseLocalRecords} reads. */
export type LocalRecordFormat = "hosts" | "zone";

interface RecordBase {
  /** Owner name, absolute, with or without the final dot. Case does not matter. */
  readonly name: string;
  /** Seconds; `undefined` takes the set's default TTL. */
  readonly ttl?: number;
  /** Line of the source file, for error messages. */
  readonly line?: number;
}

/** One local record, as the parsers produce it and {@linkcode LocalRecords.from} takes it. */
export type LocalRecord =
  | RecordBase & { readonly type: "A" | "AAAA"; readonly address: string }
  | RecordBase & { readonly type: "CNAME" | "PTR"; readonly target: string }
  /** Each string at most 255 bytes; a `string` is sent as UTF-8. */
  | RecordBase & { readonly type: "TXT"; readonly strings: readonly (string | Uint8Array)[] };

/** Options of a {@linkcode LocalRecords} set. */
export interface LocalRecordsOptions {
  /**
   * TTL of records that give none, and TTL and MINIMUM of the synthetic SOA sent with negative
   * answers (RFC 2308). Default 300.
   */
  defaultTtl?: number;
  /**
   * Zones this set is the authority for: a name under one of them that is not declared gets
   * NXDOMAIN instead of going upstream; the parents of declared names up to the apex exist
   * (NODATA), and the apex answers SOA. Default none: only declared names are answered.
   */
  authoritativeZones?: readonly string[];
}

/** Options of {@linkcode parseLocalRecords}. */
export interface ParseLocalRecordsOptions extends LocalRecordsOptions {
  /** Default: {@linkcode detectFormat} of the text and `fileName`. */
  format?: LocalRecordFormat;
  /** Used only to pick the format by extension (`.hosts`, `.zone`, a file named `hosts`). */
  fileName?: string;
}

/** The default TTL of local records and of the synthetic SOA. */
export const DEFAULT_LOCAL_TTL = 300;

/** Most CNAMEs followed within the local set for one answer. */
export const MAX_CNAME_HOPS = 8;

/** Most PTR names a hosts file gives one address. */
export const MAX_HOSTS_PTR_NAMES = 16;

const MAX_TTL = 0x7fffffff;
const CLASS_IN = 1;
const TYPE_ANY = 255;
/** Stands for "a type no local record has" when precomputing answers. */
const TYPE_NONE = -1;
const OPT_SIZE = 11;
const TYPE_CODES = {
  A: RrType.A,
  AAAA: RrType.AAAA,
  CNAME: RrType.CNAME,
  TXT: RrType.TXT,
  PTR: RrType.PTR,
} as const;
const TYPE_NAMES: Record<number, string> = {
  [RrType.A]: "A",
  [RrType.AAAA]: "AAAA",
  [RrType.CNAME]: "CNAME",
  [RrType.TXT]: "TXT",
  [RrType.PTR]: "PTR",
  [RrType.SOA]: "SOA",
};
const LABEL = /^[a-z0-9_/-]{1,63}$/;
const encoder = new TextEncoder();

function fail(line: number | undefined, message: string): never {
  throw new SyntaxError(line === undefined ? message : `line ${line}: ${message}`);
}

// ---------------------------------------------------------------------------------------------
// Names and addresses

/** Canonical form of an absolute name: lower case, no final dot; `undefined` if not valid. */
function canonicalName(text: string): string | undefined {
  const name = (text.endsWith(".") ? text.slice(0, -1) : text).toLowerCase();
  if (name === "") return undefined;
  const labels = name.split(".");
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  return wireLength(name) <= 255 ? name : undefined;
}

function wireLength(name: string): number {
  return name === "" ? 1 : name.length + 2;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** Dotted-quad IPv4 only (no leading zeros, no short or hex forms). */
function ipv4Bytes(text: string): Uint8Array | undefined {
  if (!IPV4.test(text)) return undefined;
  const parts = text.split(".");
  return new Uint8Array([+parts[0], +parts[1], +parts[2], +parts[3]]);
}

function ipv6Bytes(text: string): Uint8Array | undefined {
  if (!text.includes(":") || text.includes("%") || !ipaddr.IPv6.isValid(text)) return undefined;
  return Uint8Array.from(ipaddr.IPv6.parse(text).toByteArray());
}

function reverseName(bytes: Uint8Array): string {
  if (bytes.length === 4) return `${[...bytes].reverse().join(".")}.in-addr.arpa`;
  const nibbles: string[] = [];
  for (let i = bytes.length - 1; i >= 0; i--) {
    nibbles.push((bytes[i] & 0x0f).toString(16), (bytes[i] >> 4).toString(16));
  }
  return `${nibbles.join(".")}.ip6.arpa`;
}

// ---------------------------------------------------------------------------------------------
// Format detection and parsing

function looksLikeAddress(token: string): boolean {
  return /^\d+(\.\d+)+$/.test(token) || /^[0-9a-f.]*:[0-9a-f:.]*(%\S*)?$/i.test(token);
}

/**
 * Picks the format of a records file: by name (`*.hosts` or a file named `hosts` → hosts,
 * `*.zone` → zone), else by its first meaningful line (a `$` directive or a
 * first word that is not an IP address → zone; so a zone whose first owner is all digits and
 * dots needs the `.zone` extension).
 *
 * @example
 * ```ts
 * detectFormat("192.168.1.10 nas.home.arpa nas\n"); // "hosts"
 * detectFormat("$ORIGIN home.arpa.\nnas A 192.168.1.10\n"); // "zone"
 * ```
 */
export function detectFormat(text: string, fileName = ""): LocalRecordFormat {
  const lower = fileName.toLowerCase();
  const base = lower.slice(lower.lastIndexOf("/") + 1);
  if (base === "hosts" || base.endsWith(".hosts")) return "hosts";
  if (base.endsWith(".zone")) return "zone";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    if (line.startsWith("$")) return "zone";
    return looksLikeAddress(line.split(/\s+/, 1)[0]) ? "hosts" : "zone";
  }
  return "hosts";
}

/**
 * Parses a hosts file into records: A or AAAA for every name on a line, and PTRs for the
 * address (see the module doc for the limits).
 *
 * @throws {SyntaxError} `line N: ...` for a bad address, a bad name or a line without names
 * @example
 * ```ts
 * parseHosts("10.0.0.2 nas.home.arpa nas # the NAS\n"); // A ×2, PTR ×2
 * ```
 */
export function parseHosts(text: string): LocalRecord[] {
  const records: LocalRecord[] = [];
  const ptrCount = new Map<string, number>();
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const hash = lines[i].indexOf("#");
    const tokens = (hash >= 0 ? lines[i].slice(0, hash) : lines[i]).split(/\s+/).filter(Boolean);
    if (tokens.length === 0) continue;
    const [addressText, ...names] = tokens;
    const address = addressText.includes(":") ? addressText.replace(/%.*$/, "") : addressText;
    const bytes = ipv4Bytes(address) ?? ipv6Bytes(address);
    if (!bytes) fail(line, `bad address "${addressText}"`);
    if (names.length === 0) fail(line, `address "${addressText}" has no host names`);
    const type = bytes.length === 4 ? "A" : "AAAA";
    const sinkhole = bytes.every((b) => b === 0);
    const reverse = reverseName(bytes);
    for (const text of names) {
      const name = canonicalName(text);
      if (!name) fail(line, `bad name "${text}"`);
      records.push({ name, type, address, line });
      const count = ptrCount.get(reverse) ?? 0;
      if (sinkhole || count >= MAX_HOSTS_PTR_NAMES) continue;
      ptrCount.set(reverse, count + 1);
      records.push({ name: reverse, type: "PTR", target: name, line });
    }
  }
  return records;
}

interface Token {
  readonly text: string;
  /** The bytes of a quoted string. */
  readonly quoted?: Uint8Array;
}

function tokenize(source: string, line: number): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < source.length) {
    const c = source[i];
    if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (c === ";") {
      break;
    } else if (c === "(" || c === ")") {
      fail(line, "parentheses (multi-line records) are not supported");
    } else if (c === '"') {
      const bytes: number[] = [];
      let j = i + 1;
      for (;;) {
        if (j >= source.length) fail(line, "unterminated quoted string");
        const d = source[j];
        if (d === '"') break;
        if (d === "\\") {
          const digits = /^\d{3}/.exec(source.slice(j + 1, j + 4));
          if (digits) {
            const value = Number(digits[0]);
            if (value > 255) fail(line, `bad escape "\\${digits[0]}"`);
            bytes.push(value);
            j += 4;
            continue;
          }
          if (j + 1 >= source.length) fail(line, "unterminated quoted string");
          j++;
        }
        const cp = source.codePointAt(j)!;
        const ch = String.fromCodePoint(cp);
        bytes.push(...encoder.encode(ch));
        j += ch.length;
      }
      tokens.push({ text: source.slice(i, j + 1), quoted: Uint8Array.from(bytes) });
      i = j + 1;
    } else {
      let j = i;
      while (j < source.length && !/[\s;"()]/.test(source[j])) j++;
      tokens.push({ text: source.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

const TTL_PATTERN = /^(\d+|(\d+[smhdw])+)$/i;
const UNIT_SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };

function parseTtl(text: string, line: number): number {
  let seconds = 0;
  if (/^\d+$/.test(text)) {
    seconds = Number(text);
  } else {
    for (const [, n, unit] of text.matchAll(/(\d+)([smhdw])/gi)) {
      seconds += Number(n) * UNIT_SECONDS[unit.toLowerCase()];
    }
  }
  if (seconds > MAX_TTL) fail(line, `bad TTL "${text}"`);
  return seconds;
}

/**
 * Parses the zone-file subset described in the module doc.
 *
 * @param defaultTtl TTL of records before any `$TTL` that give none
 * @throws {SyntaxError} `line N: ...`, e.g. `line 12: bad AAAA address "2001:db8::zz"`
 * @example
 * ```ts
 * parseZone('$ORIGIN home.arpa.\n@ TXT "v=spf1 -all"\nnas 60 IN A 10.0.0.2\n');
 * ```
 */
export function parseZone(text: string, defaultTtl = DEFAULT_LOCAL_TTL): LocalRecord[] {
  const records: LocalRecord[] = [];
  let origin: string | undefined;
  let ttlDefault = defaultTtl;
  let lastOwner: string | undefined;
  const lines = text.split("\n");

  const resolve = (token: Token, line: number, what: string): string => {
    if (token.quoted) fail(line, `bad ${what} ${token.text}`);
    let absolute: string | undefined;
    if (token.text === "@") {
      if (origin === undefined) fail(line, `"@" with no $ORIGIN`);
      absolute = origin;
    } else if (token.text.endsWith(".")) {
      absolute = token.text;
    } else {
      if (origin === undefined) fail(line, `relative name "${token.text}" with no $ORIGIN`);
      absolute = `${token.text}.${origin}`;
    }
    const name = canonicalName(absolute);
    if (!name) fail(line, `bad ${what} "${token.text}"`);
    return name;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = i + 1;
    const tokens = tokenize(lines[i], line);
    if (tokens.length === 0) continue;
    const first = tokens[0].text;
    if (!tokens[0].quoted && first.startsWith("$")) {
      const directive = first.toUpperCase();
      if (directive !== "$TTL" && directive !== "$ORIGIN") {
        fail(line, `unsupported directive "${first}"`);
      }
      if (tokens.length !== 2) fail(line, `${directive} takes exactly one value`);
      const value = tokens[1];
      if (directive === "$TTL") {
        if (value.quoted || !TTL_PATTERN.test(value.text)) fail(line, `bad TTL "${value.text}"`);
        ttlDefault = parseTtl(value.text, line);
      } else {
        const name = value.quoted ? undefined : canonicalName(value.text);
        if (!name) fail(line, `bad $ORIGIN "${value.text}"`);
        origin = name;
      }
      continue;
    }

    let owner: string;
    let pos = 0;
    if (/^[ \t]/.test(lines[i])) {
      if (lastOwner === undefined) fail(line, "indented record with no previous owner");
      owner = lastOwner;
    } else {
      owner = resolve(tokens[0], line, "name");
      pos = 1;
    }
    lastOwner = owner;

    let ttl: number | undefined;
    let sawClass = false;
    for (let k = 0; k < 2 && pos < tokens.length; k++) {
      const t = tokens[pos];
      if (t.quoted) break;
      if (ttl === undefined && TTL_PATTERN.test(t.text)) {
        ttl = parseTtl(t.text, line);
      } else if (!sawClass && /^(IN|CH|CS|HS|ANY)$/i.test(t.text)) {
        if (t.text.toUpperCase() !== "IN") fail(line, `unsupported class "${t.text}"`);
        sawClass = true;
      } else {
        break;
      }
      pos++;
    }
    if (pos >= tokens.length) fail(line, "missing record type");
    const typeText = tokens[pos++].text;
    const type = typeText.toUpperCase();
    if (!Object.hasOwn(TYPE_CODES, type)) {
      fail(line, `unsupported type "${typeText}" (A, AAAA, CNAME, TXT and PTR are)`);
    }
    const rdata = tokens.slice(pos);
    if (rdata.length === 0) fail(line, `missing ${type} data`);
    const base = { name: owner, ttl: ttl ?? ttlDefault, line };
    switch (type) {
      case "A":
      case "AAAA": {
        if (rdata.length > 1) fail(line, `unexpected "${rdata[1].text}" after the ${type} address`);
        const text = rdata[0].text;
        const ok = rdata[0].quoted ? false : type === "A" ? ipv4Bytes(text) : ipv6Bytes(text);
        if (!ok) fail(line, `bad ${type} address "${text}"`);
        records.push({ ...base, type, address: text });
        break;
      }
      case "CNAME":
      case "PTR": {
        if (rdata.length > 1) fail(line, `unexpected "${rdata[1].text}" after the ${type} target`);
        records.push({ ...base, type, target: resolve(rdata[0], line, `${type} target`) });
        break;
      }
      case "TXT": {
        const strings = rdata.map((t) => {
          if (!t.quoted) fail(line, `TXT data must be quoted strings, got ${t.text}`);
          if (t.quoted.length > 255) fail(line, `TXT string of ${t.quoted.length} bytes (max 255)`);
          return t.quoted;
        });
        records.push({ ...base, type: "TXT", strings });
        break;
      }
    }
  }
  return records;
}

/**
 * Parses a hosts or zone file into a {@linkcode LocalRecords} set.
 *
 * @throws {SyntaxError} `line N: ...` naming the first bad line, or a conflict between records
 * @throws {RangeError} for bad options (TTL, zone names)
 * @example
 * ```ts
 * const records = parseLocalRecords(await Deno.readTextFile("home.zone"), {
 *   fileName: "home.zone",
 *   authoritativeZones: ["home.arpa"],
 * });
 * ```
 */
export function parseLocalRecords(
  text: string,
  options: ParseLocalRecordsOptions = {},
): LocalRecords {
  const format = options.format ?? detectFormat(text, options.fileName);
  const defaultTtl = options.defaultTtl ?? DEFAULT_LOCAL_TTL;
  const records = format === "hosts" ? parseHosts(text) : parseZone(text, defaultTtl);
  return LocalRecords.from(records, options);
}

// ---------------------------------------------------------------------------------------------
// Wire building

/** The offset of the label after the one starting at `k`, or -1 after the last label. */
function nextLabel(name: string, k: number): number {
  const dot = name.indexOf(".", k);
  return dot < 0 ? -1 : dot + 1;
}

/** A name in wire format, uncompressed. */
function nameBytes(name: string): number[] {
  const out: number[] = [];
  for (let k = 0; k >= 0; k = nextLabel(name, k)) {
    const end = name.indexOf(".", k);
    const label = end < 0 ? name.slice(k) : name.slice(k, end);
    out.push(label.length);
    for (let i = 0; i < label.length; i++) out.push(label.charCodeAt(i));
  }
  out.push(0);
  return out;
}

/** A string key for bytes, to merge duplicates and share equal answer bodies. */
function bytesKey(bytes: ArrayLike<number>): string {
  let key = "";
  for (let i = 0; i < bytes.length; i++) key += String.fromCharCode(bytes[i]);
  return key;
}

/** A record ready to write. */
interface Rr {
  readonly type: number;
  ttl: number;
  /** Identifies the RDATA, to merge duplicates. */
  readonly key: string;
  /** RDATA that holds no name. */
  readonly data?: Uint8Array;
  /** The name that is the RDATA (CNAME, PTR), written compressed. */
  readonly target?: string;
  readonly line?: number;
}

/**
 * Writes an answer body that follows the question in the message: owner names equal to the
 * question's are written as a pointer to it (offset 12), other names are compressed against
 * what was written before.
 */
class RecordWriter {
  readonly out: number[] = [];
  #known?: Map<string, number>;

  /** @param question the question name (canonical), uncompressed at offset 12 */
  constructor(readonly question: string) {}

  /** Offset of the body's first byte in the message. */
  get base(): number {
    return HEADER_LENGTH + wireLength(this.question) + 4;
  }

  name(name: string): void {
    if (name === this.question) {
      this.u16(0xc000 | HEADER_LENGTH);
      return;
    }
    if (!this.#known) {
      this.#known = new Map();
      const q = this.question;
      for (let k = 0; k >= 0; k = nextLabel(q, k)) this.#known.set(q.slice(k), HEADER_LENGTH + k);
    }
    for (let k = 0; k >= 0; k = nextLabel(name, k)) {
      const suffix = name.slice(k);
      const pointer = this.#known.get(suffix);
      if (pointer !== undefined) {
        this.u16(0xc000 | pointer);
        return;
      }
      const at = this.base + this.out.length;
      if (at < 0x4000) this.#known.set(suffix, at);
      const end = name.indexOf(".", k);
      const label = end < 0 ? suffix : name.slice(k, end);
      this.out.push(label.length);
      for (let i = 0; i < label.length; i++) this.out.push(label.charCodeAt(i));
    }
    this.out.push(0);
  }

  u16(v: number): void {
    this.out.push(v >> 8, v & 0xff);
  }

  record(owner: string, rr: Rr): void {
    this.name(owner);
    const ttl = rr.ttl;
    this.out.push(rr.type >> 8, rr.type & 0xff, 0, CLASS_IN);
    this.out.push(ttl >>> 24, (ttl >>> 16) & 0xff, (ttl >>> 8) & 0xff, ttl & 0xff);
    const at = this.out.length;
    this.u16(0);
    if (rr.target !== undefined) this.name(rr.target);
    else for (const b of rr.data!) this.out.push(b);
    const length = this.out.length - at - 2;
    this.out[at] = length >> 8;
    this.out[at + 1] = length & 0xff;
  }
}

function toRr(record: LocalRecord, defaultTtl: number): { name: string; rr: Rr } {
  const line = record.line;
  const name = canonicalName(record.name);
  if (!name) fail(line, `bad name "${record.name}"`);
  const ttl = record.ttl ?? defaultTtl;
  if (!Number.isInteger(ttl) || ttl < 0 || ttl > MAX_TTL) fail(line, `bad TTL ${ttl}`);
  switch (record.type) {
    case "A":
    case "AAAA": {
      const data = record.type === "A" ? ipv4Bytes(record.address) : ipv6Bytes(record.address);
      if (!data) fail(line, `bad ${record.type} address "${record.address}"`);
      return { name, rr: { type: TYPE_CODES[record.type], ttl, key: bytesKey(data), data, line } };
    }
    case "CNAME":
    case "PTR": {
      const target = canonicalName(record.target);
      if (!target) fail(line, `bad ${record.type} target "${record.target}"`);
      return { name, rr: { type: TYPE_CODES[record.type], ttl, key: target, target, line } };
    }
    case "TXT": {
      if (record.strings.length === 0) fail(line, "TXT record without strings");
      const bytes: number[] = [];
      for (const s of record.strings) {
        const b = typeof s === "string" ? encoder.encode(s) : s;
        if (b.length > 255) fail(line, `TXT string of ${b.length} bytes (max 255)`);
        bytes.push(b.length, ...b);
      }
      const data = Uint8Array.from(bytes);
      return { name, rr: { type: RrType.TXT, ttl, key: bytesKey(data), data, line } };
    }
  }
}

/** The synthetic SOA of negative answers: RFC 2308 negative TTL = `ttl`. */
function soaRr(ttl: number): Rr {
  const data: number[] = [...nameBytes("localhost"), ...nameBytes("nobody.invalid")];
  for (const v of [1, 3600, 600, 86400, ttl]) {
    data.push(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }
  return { type: RrType.SOA, ttl, key: "soa", data: Uint8Array.from(data) };
}

/** A precomputed answer body (answer and authority sections) with its header fields. */
interface Prepared {
  readonly rcode: number;
  readonly ancount: number;
  readonly nscount: number;
  readonly body: Uint8Array;
}

/** The precomputed answers for one name. */
interface Entry {
  /** Length of the question the bodies assume (the name uncompressed, type, class). */
  readonly qlen: number;
  /** Query types with their own answer, parallel to `answers`. */
  readonly types: readonly number[];
  readonly answers: readonly Prepared[];
  /** The answer for any other type. */
  readonly other: Prepared;
}

interface Node {
  readonly name: string;
  /** Empty for a parent of declared names inside an authoritative zone. */
  readonly rrsets: Map<number, Rr[]>;
}

/** Collects records into names and precomputes every answer; used once by `LocalRecords.from`. */
class SetBuilder {
  readonly nodes = new Map<string, Node>();
  readonly zones: readonly string[];
  readonly soa: Rr;
  /** Equal bodies (e.g. thousands of `0.0.0.0` answers) are stored once. */
  readonly #pool = new Map<string, Prepared>();
  size = 0;

  constructor(defaultTtl: number, zones: readonly string[]) {
    this.zones = zones;
    this.soa = soaRr(defaultTtl);
  }

  node(name: string): Node {
    let node = this.nodes.get(name);
    if (!node) this.nodes.set(name, node = { name, rrsets: new Map() });
    return node;
  }

  add(node: Node, rr: Rr): void {
    const cname = node.rrsets.get(RrType.CNAME);
    if (cname && rr.type === RrType.CNAME && cname[0].key !== rr.key) {
      fail(rr.line, `"${node.name}" already has a CNAME`);
    }
    const conflict = rr.type === RrType.CNAME
      ? [...node.rrsets.keys()].some((t) => t !== RrType.CNAME)
      : cname !== undefined;
    if (conflict) {
      const what = rr.type === RrType.SOA ? "zone apex" : "other records";
      fail(rr.line ?? cname?.[0].line, `CNAME at "${node.name}" alongside ${what}`);
    }
    const rrset = node.rrsets.get(rr.type);
    if (!rrset) node.rrsets.set(rr.type, [rr]);
    else if (rrset.some((r) => r.key === rr.key)) return;
    else rrset.push(rr);
    if (rr.type !== RrType.SOA) this.size++;
  }

  /** The closest authoritative zone holding `name`. */
  zoneOf(name: string): string | undefined {
    if (this.zones.length === 0) return undefined;
    for (let k = 0; k >= 0; k = nextLabel(name, k)) {
      const suffix = name.slice(k);
      if (this.zones.includes(suffix)) return suffix;
    }
    return undefined;
  }

  /** Adds zone apexes (with the SOA) and the parents of declared names inside zones. */
  addZones(): void {
    for (const name of [...this.nodes.keys()]) {
      const zone = this.zoneOf(name);
      if (zone === undefined) continue;
      for (let parent = name; parent !== zone;) {
        parent = parent.slice(parent.indexOf(".") + 1);
        this.node(parent);
      }
    }
    for (const zone of this.zones) this.add(this.node(zone), this.soa);
  }

  prepared(rcode: number, ancount: number, nscount: number, out: number[]): Prepared {
    if (out.length > 512) return { rcode, ancount, nscount, body: Uint8Array.from(out) };
    const key = String.fromCharCode(rcode, ancount, nscount) + bytesKey(out);
    let p = this.#pool.get(key);
    if (!p) this.#pool.set(key, p = { rcode, ancount, nscount, body: Uint8Array.from(out) });
    return p;
  }

  /** The answer to `qtype` (or ANY, or -1 for a type no record has) at declared `start`. */
  answer(start: string, qtype: number): Prepared {
    const w = new RecordWriter(start);
    let ancount = 0;
    let cnames = 0;
    let rcode: number = Rcode.NOERROR;
    let negative: string | undefined;
    const seen = new Set([start]);
    for (let name = start;;) {
      const node = this.nodes.get(name);
      if (!node) {
        negative = this.zoneOf(name);
        if (negative !== undefined) rcode = Rcode.NXDOMAIN;
        break;
      }
      const cname = node.rrsets.get(RrType.CNAME);
      if (cname && qtype !== RrType.CNAME) {
        if (cnames === MAX_CNAME_HOPS) break;
        w.record(name, cname[0]);
        ancount++;
        cnames++;
        if (seen.has(cname[0].target!)) break;
        name = cname[0].target!;
        seen.add(name);
        continue;
      }
      const rrsets = qtype === TYPE_ANY
        ? [...node.rrsets.values()]
        : [node.rrsets.get(qtype) ?? []];
      for (const rr of rrsets.flat()) {
        w.record(name, rr);
        ancount++;
      }
      if (ancount === cnames) negative = this.zoneOf(name) ?? name;
      break;
    }
    if (negative !== undefined) w.record(negative, this.soa);
    const total = w.base + w.out.length + OPT_SIZE;
    if (total > MAX_MESSAGE_SIZE) {
      const line = this.nodes.get(start)?.rrsets.get(qtype)?.[0].line;
      const type = TYPE_NAMES[qtype] ?? (qtype === TYPE_ANY ? "ANY" : "other types");
      fail(line, `answer for "${start}" ${type} is ${total} bytes (max 65535)`);
    }
    return this.prepared(rcode, ancount, negative === undefined ? 0 : 1, w.out);
  }

  /** Every name's precomputed answers. */
  entries(): Map<string, Entry> {
    for (const node of this.nodes.values()) {
      for (const rrset of node.rrsets.values()) {
        const ttl = rrset.reduce((min, r) => Math.min(min, r.ttl), MAX_TTL);
        for (const r of rrset) r.ttl = ttl;
      }
    }
    const allTypes = new Set<number>();
    for (const node of this.nodes.values()) for (const t of node.rrsets.keys()) allTypes.add(t);

    const entries = new Map<string, Entry>();
    for (const node of this.nodes.values()) {
      const alias = node.rrsets.has(RrType.CNAME);
      const types = [...(alias ? allTypes : node.rrsets.keys())];
      const answers = types.map((t) => this.answer(node.name, t));
      if (alias) {
        answers.push(answers[types.indexOf(RrType.CNAME)]);
        types.push(TYPE_ANY);
      } else if (node.rrsets.size > 0) {
        answers.push(types.length === 1 ? answers[0] : this.answer(node.name, TYPE_ANY));
        types.push(TYPE_ANY);
      }
      entries.set(node.name, {
        qlen: wireLength(node.name) + 4,
        types,
        answers,
        other: this.answer(node.name, TYPE_NONE),
      });
    }
    return entries;
  }

  /** Each authoritative zone's NXDOMAIN answer (the SOA uncompressed: no pointers needed). */
  nxdomains(): Map<string, Prepared> {
    const soa = this.soa;
    return new Map(this.zones.map((zone) => {
      const out = nameBytes(zone);
      out.push(0, RrType.SOA, 0, CLASS_IN);
      out.push(soa.ttl >>> 24, (soa.ttl >>> 16) & 0xff, (soa.ttl >>> 8) & 0xff, soa.ttl & 0xff);
      out.push(soa.data!.length >> 8, soa.data!.length & 0xff, ...soa.data!);
      return [zone, this.prepared(Rcode.NXDOMAIN, 0, 1, out)];
    }));
  }
}

/**
 * An immutable set of local records with every answer precomputed. Safe for concurrent use;
 * holds no resources (nothing to close). Build it with {@linkcode parseLocalRecords} or
 * {@linkcode LocalRecords.from}; swap the whole set to reload.
 *
 * @example
 * ```ts
 * const local = parseLocalRecords("10.0.0.2 nas.home.arpa\n");
 * const answer = local.answer(query); // Uint8Array, or undefined: ask the upstream
 * ```
 */
export class LocalRecords {
  readonly #entries: Map<string, Entry>;
  /** Authoritative zones (canonical) → their NXDOMAIN answer. */
  readonly #zones: Map<string, Prepared>;
  /** Records in the set, duplicates merged. */
  readonly size: number;

  private constructor(entries: Map<string, Entry>, zones: Map<string, Prepared>, size: number) {
    this.#entries = entries;
    this.#zones = zones;
    this.size = size;
  }

  /** A set with no records and no zones: answers nothing. */
  static empty(): LocalRecords {
    return new LocalRecords(new Map(), new Map(), 0);
  }

  /**
   * Builds a set from records. Duplicates are merged; an RRset takes the smallest TTL of its
   * records.
   *
   * @throws {SyntaxError} naming the record's line for a bad name, address, TTL or string, a
   *   CNAME beside other data at the same name (or at a zone apex), two CNAMEs at one name, or
   *   an answer over 65 535 bytes
   * @throws {RangeError} for a bad `defaultTtl` or zone name
   * @example
   * ```ts
   * const local = LocalRecords.from(
   *   [{ name: "nas.home.arpa", type: "A", address: "10.0.0.2" }],
   *   { authoritativeZones: ["home.arpa"] },
   * );
   * ```
   */
  static from(records: readonly LocalRecord[], options: LocalRecordsOptions = {}): LocalRecords {
    const defaultTtl = options.defaultTtl ?? DEFAULT_LOCAL_TTL;
    if (!Number.isInteger(defaultTtl) || defaultTtl < 0 || defaultTtl > MAX_TTL) {
      throw new RangeError(`local records: bad default TTL ${defaultTtl}`);
    }
    const zones = (options.authoritativeZones ?? []).map((z) => {
      const name = canonicalName(z);
      if (!name) throw new RangeError(`local records: bad authoritative zone "${z}"`);
      return name;
    });
    const builder = new SetBuilder(defaultTtl, zones);
    for (const record of records) {
      const { name, rr } = toRr(record, defaultTtl);
      builder.add(builder.node(name), rr);
    }
    builder.addZones();
    return new LocalRecords(builder.entries(), builder.nxdomains(), builder.size);
  }

  /**
   * The answer to `query` from this set, or `undefined` when the set has nothing to say (the
   * query goes upstream). Answers are authoritative (AA, RA set; RD and CD copied) and carry the
   * client's ID and question bytes, and an OPT record when the query had one:
   *
   * - a declared name: its records of the asked type (ANY: all of them); a CNAME, followed
   *   through local names up to {@linkcode MAX_CNAME_HOPS} times; NODATA with a synthetic SOA
   *   (owned by the enclosing authoritative zone, else by the name) when it has other types
   * - an undeclared name under an authoritative zone: NXDOMAIN with the zone's SOA
   * - anything else, a class other than IN, or a question with a compressed name: `undefined`
   *
   * @example
   * ```ts
   * const answer = local.answer(query) ?? await upstream.query(query);
   * ```
   */
  answer(query: Query): Uint8Array | undefined {
    const q = query.question;
    if (q.class !== CLASS_IN) return undefined;
    const name = q.name.toLowerCase();
    const entry = this.#entries.get(name);
    if (entry) {
      // The bodies point into the question: only answer a plain (uncompressed) question name.
      if (query.info.questionEnd - HEADER_LENGTH !== entry.qlen) return undefined;
      const i = entry.types.indexOf(q.type);
      return assemble(query, i >= 0 ? entry.answers[i] : entry.other);
    }
    if (this.#zones.size === 0) return undefined;
    for (let k = 0; k >= 0; k = nextLabel(name, k)) {
      const nx = this.#zones.get(name.slice(k));
      if (nx) return assemble(query, nx);
    }
    return undefined;
  }
}

function assemble(query: Query, p: Prepared): Uint8Array {
  const { info, wire } = query;
  const qend = info.questionEnd;
  const out = new Uint8Array(qend + p.body.length + (info.opt ? OPT_SIZE : 0));
  out.set(wire.subarray(0, qend));
  const flags = Flag.QR | Flag.AA | Flag.RA | (info.flags & (Flag.RD | Flag.CD)) | p.rcode;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  out[4] = 0;
  out[5] = 1;
  out[6] = p.ancount >> 8;
  out[7] = p.ancount & 0xff;
  out[8] = p.nscount >> 8;
  out[9] = p.nscount & 0xff;
  out[10] = 0;
  out[11] = info.opt ? 1 : 0;
  out.set(p.body, qend);
  if (info.opt) {
    const at = qend + p.body.length;
    const doBit = info.opt.ttl & EDNS_DO;
    // root owner, TYPE OPT, CLASS = UDP size, TTL = ext-rcode 0, version 0, DO; RDLENGTH 0
    out[at + 2] = RrType.OPT;
    out[at + 3] = DEFAULT_EDNS_UDP_SIZE >> 8;
    out[at + 4] = DEFAULT_EDNS_UDP_SIZE & 0xff;
    out[at + 7] = doBit >> 8;
  }
  return out;
}

/**
 * Answers from the local set chosen for each query (e.g. per tenant), else passes the query on.
 * Put it after policy (ACL, rate limit) and before the cache, so a reload shows at once and
 * local answers never sit in the cache.
 *
 * @param select the set for this query; `undefined` skips local records
 * @example
 * ```ts
 * const watch = watchLocalRecords({ path: "home.zone", logger });
 * const handler = compose([aclMiddleware(acl), localRecordsMiddleware(() => watch.current()),
 *   cacheMiddleware(cache)], upstreamHandler);
 * ```
 */
export function localRecordsMiddleware(
  select: (ctx: QueryContext) => LocalRecords | undefined,
): Middleware {
  return (next) => (query, ctx) => {
    const answer = select(ctx)?.answer(query);
    return answer ? Promise.resolve(answerOf(answer)) : next(query, ctx);
  };
}
