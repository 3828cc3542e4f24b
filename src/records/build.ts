/**
 * Precomputing a table's answers: records are collected by name into RRsets, then every answer
 * a query can get (each type at each name, ANY, NODATA, each zone's NXDOMAIN) is written once in
 * wire format, so a lookup only puts a header, the client's question and an OPT record around a
 * ready body. Used once per load by `LocalRecords.from`.
 *
 * @module
 */
import { HEADER_LENGTH, MAX_MESSAGE_SIZE, Rcode, RrType } from "../dns/constants.ts";
import { optRecordSize } from "../dns/edns.ts";
import { minAnswerTtl } from "../dns/ttl.ts";
import { encodeName, nameWireLength, nextLabel } from "../dns/name.ts";
import { WireWriter } from "../dns/writer.ts";
import { canonicalName, fail, ipv4Bytes, ipv6Bytes, type LocalRecord, MAX_TTL } from "./record.ts";

/** Most CNAMEs followed within the local set for one answer. */
export const MAX_CNAME_HOPS = 8;

/** Stands for "a type no local record has" when precomputing answers. */
const TYPE_NONE = -1;
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
const encoder = new TextEncoder();

import type { Prepared } from "../dns/assemble.ts";

export type { Prepared };

/**
 * A {@linkcode Prepared} for this body, its `minTtl` worked out once, here: the body behind a
 * header with no question (the TTL walk reads no name through a pointer, so one into a question
 * is as good as any).
 *
 * @example
 * ```ts
 * const nodata = preparedOf(Rcode.NOERROR, 0, 0, new Uint8Array()); // minTtl undefined
 * ```
 */
export function preparedOf(
  rcode: number,
  ancount: number,
  nscount: number,
  body: Uint8Array,
): Prepared {
  const message = new Uint8Array(HEADER_LENGTH + body.length);
  message[3] = rcode & 0x0f;
  message[6] = ancount >> 8;
  message[7] = ancount & 0xff;
  message[8] = nscount >> 8;
  message[9] = nscount & 0xff;
  message.set(body, HEADER_LENGTH);
  return { rcode, ancount, nscount, body, minTtl: minAnswerTtl(message) };
}

/** The precomputed answers for one name. */
export interface Entry {
  /** Length of the question the bodies assume (the name uncompressed, type, class). */
  readonly qlen: number;
  /** Query types with their own answer, parallel to `answers`. */
  readonly types: readonly number[];
  readonly answers: readonly Prepared[];
  /** The answer for any other type. */
  readonly other: Prepared;
}

/** What a table holds: answers by canonical name, and each authoritative zone's NXDOMAIN. */
export interface PreparedSet {
  readonly entries: Map<string, Entry>;
  readonly nxdomains: Map<string, Prepared>;
  /** Records in the set, duplicates merged. */
  readonly size: number;
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

function writeRr(w: WireWriter, owner: string, rr: Rr): void {
  w.record(owner, rr.type, rr.ttl, (w) => {
    if (rr.target !== undefined) w.name(rr.target);
    else w.bytes(rr.data!);
  });
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
  const w = new WireWriter();
  w.bytes(encodeName("localhost"));
  w.bytes(encodeName("nobody.invalid"));
  for (const v of [1, 3600, 600, 86400, ttl]) w.u32(v);
  return { type: RrType.SOA, ttl, key: "soa", data: Uint8Array.from(w.out) };
}

interface Node {
  readonly name: string;
  /** Empty for a parent of declared names inside an authoritative zone. */
  readonly rrsets: Map<number, Rr[]>;
}

/** Collects records into names and precomputes every answer. */
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
    if (out.length > 512) return preparedOf(rcode, ancount, nscount, Uint8Array.from(out));
    const key = String.fromCharCode(rcode, ancount, nscount) + bytesKey(out);
    let p = this.#pool.get(key);
    if (!p) this.#pool.set(key, p = preparedOf(rcode, ancount, nscount, Uint8Array.from(out)));
    return p;
  }

  /** The answer to `qtype` (or ANY, or -1 for a type no record has) at declared `start`. */
  answer(start: string, qtype: number): Prepared {
    // The body follows a question holding `start` uncompressed: names point into it.
    const w = new WireWriter(HEADER_LENGTH + nameWireLength(start) + 4);
    w.knownName(start, HEADER_LENGTH);
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
        writeRr(w, name, cname[0]);
        ancount++;
        cnames++;
        if (seen.has(cname[0].target!)) break;
        name = cname[0].target!;
        seen.add(name);
        continue;
      }
      const rrsets = qtype === RrType.ANY
        ? [...node.rrsets.values()]
        : [node.rrsets.get(qtype) ?? []];
      for (const rr of rrsets.flat()) {
        writeRr(w, name, rr);
        ancount++;
      }
      if (ancount === cnames) negative = this.zoneOf(name) ?? name;
      break;
    }
    if (negative !== undefined) writeRr(w, negative, this.soa);
    const total = w.offset + optRecordSize([]);
    if (total > MAX_MESSAGE_SIZE) {
      const line = this.nodes.get(start)?.rrsets.get(qtype)?.[0].line;
      const type = TYPE_NAMES[qtype] ?? (qtype === RrType.ANY ? "ANY" : "other types");
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
        types.push(RrType.ANY);
      } else if (node.rrsets.size > 0) {
        answers.push(types.length === 1 ? answers[0] : this.answer(node.name, RrType.ANY));
        types.push(RrType.ANY);
      }
      entries.set(node.name, {
        qlen: nameWireLength(node.name) + 4,
        types,
        answers,
        other: this.answer(node.name, TYPE_NONE),
      });
    }
    return entries;
  }

  /** Each authoritative zone's NXDOMAIN answer (the SOA uncompressed: no pointers needed). */
  nxdomains(): Map<string, Prepared> {
    return new Map(this.zones.map((zone) => {
      const w = new WireWriter();
      writeRr(w, zone, this.soa);
      return [zone, this.prepared(Rcode.NXDOMAIN, 0, 1, w.out)];
    }));
  }
}

/**
 * Builds every answer of a set of records. Duplicates are merged; an RRset takes the smallest
 * TTL of its records.
 *
 * @param zones authoritative zones, canonical (see `LocalRecordsOptions.authoritativeZones`)
 * @throws {SyntaxError} naming the record's line for a bad name, address, TTL or string, a
 *   CNAME beside other data at the same name (or at a zone apex), two CNAMEs at one name, or
 *   an answer over 65 535 bytes
 */
export function prepareAnswers(
  records: readonly LocalRecord[],
  defaultTtl: number,
  zones: readonly string[],
): PreparedSet {
  const builder = new SetBuilder(defaultTtl, zones);
  for (const record of records) {
    const { name, rr } = toRr(record, defaultTtl);
    builder.add(builder.node(name), rr);
  }
  builder.addZones();
  return { entries: builder.entries(), nxdomains: builder.nxdomains(), size: builder.size };
}
