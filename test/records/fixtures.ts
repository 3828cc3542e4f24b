/**
 * Shared fixtures of the local records tests: queries built with dns-packet (an independent
 * encoder), answers decoded with it, and one zone and one hosts file that exercise every format
 * feature.
 */
import { expect } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { parseMessage } from "../../src/dns/message.ts";
import { validateAnswer } from "../../src/dns/response.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import type { LocalRecords } from "../../src/records/mod.ts";

export interface QueryOptions {
  id?: number;
  type?: string;
  edns?: boolean;
  dnssecOk?: boolean;
  rd?: boolean;
  klass?: string;
}

export function query(name: string, options: QueryOptions = {}): Query {
  const wire = new Uint8Array(dnsPacket.encode({
    type: "query",
    id: options.id ?? 0x4242,
    flags: options.rd === false ? 0 : dnsPacket.RECURSION_DESIRED,
    questions: [{
      type: (options.type ?? "A") as "A",
      name,
      class: (options.klass ?? "IN") as "IN",
    }],
    additionals: options.edns
      ? [{
        type: "OPT",
        name: ".",
        udpPayloadSize: 4096,
        flags: options.dnssecOk ? dnsPacket.DNSSEC_OK : 0,
      } as unknown as dnsPacket.Answer]
      : [],
  }));
  const c = classifyQuery(wire);
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

export function enc(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** A decoded record, the fields these tests read. */
export interface Rec {
  name: string;
  type: string;
  ttl: number;
  data: unknown;
}

export function decode(wire: Uint8Array) {
  const p = dnsPacket.decode(Buffer.from(wire));
  return {
    id: p.id!,
    flags: p.flags!,
    rcode: wire[3] & 0x0f,
    qname: p.questions![0].name,
    answers: (p.answers ?? []) as Rec[],
    authorities: (p.authorities ?? []) as Rec[],
  };
}

/** Answer-section records as "name TYPE data" strings, for compact assertions. */
export function answers(wire: Uint8Array): string[] {
  return decode(wire).answers.map((r) => {
    const data = r.type === "TXT"
      ? (r.data as Buffer[]).map((b) => b.toString()).join("|")
      : r.type === "SOA"
      ? (r.data as dnsPacket.SoaData).mname
      : String(r.data);
    return `${r.name} ${r.type} ${data}`;
  });
}

export function ask(local: LocalRecords, name: string, options: QueryOptions = {}): Uint8Array {
  const q = query(name, options);
  const answer = local.answer(q);
  if (!answer) throw new Error(`no local answer for ${name}`);
  const { wire, info } = answer;
  validateAnswer(q.info, wire, q.info.id); // well formed, same ID and question
  expect(info).toEqual(parseMessage(wire)); // the info describes the bytes exactly
  return wire;
}

export const ZONE = `
$ORIGIN home.arpa.
$TTL 1h
@         IN TXT   "v=spf1 -all"
nas       60 IN A  192.168.1.10
          IN 60 AAAA fd00::10          ; same owner as above
media     CNAME    nas
www       CNAME    media.home.arpa.
alias     CNAME    www
out       CNAME    example.com.
loop1     CNAME    loop2
loop2     CNAME    loop1
txt       TXT      "a \\"quoted\\" word" "second" "\\065BC"
deep.sub  A        192.168.1.20
10.1.168.192.in-addr.arpa. PTR nas
`;

export const HOSTS = `
# my LAN
127.0.0.1      localhost
192.168.1.10   nas.lan nas   # trailing comment
192.168.1.11   printer.lan
fe80::1%lo0    localhost
2001:db8::10   nas.lan
0.0.0.0        ads.example  tracker.example
`;
