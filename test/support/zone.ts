/**
 * A tiny authoritative test zone answered with dns-packet, shared by the local test upstreams.
 *
 * Names (case-insensitive):
 * - `nx.example.test` → NXDOMAIN with an SOA
 * - `delay-<ms>.example.test` → answered after `<ms>` milliseconds
 * - `big-<n>[-<tag>].example.test` TXT → one TXT record of about `<n>` bytes (at most 64 000),
 *   so the whole answer is a little over `<n>` bytes (the tag makes names unique)
 * - `via-<name>` → a CNAME to `<name>`, then `<name>`'s answer (so `via-via-x.example.test`
 *   is a chain of two CNAMEs ending at `x.example.test`)
 * - anything else → A 192.0.2.<n> (n from the name), AAAA 2001:db8::<n>, TXT "<name>"
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";

/** A deterministic IPv4 last octet for a name, so tests can check answers. */
export function octetFor(name: string): number {
  let h = 0;
  for (const c of name.toLowerCase()) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return (h % 250) + 1;
}

/** The delay a name asks for, in ms (0 for none). */
export function delayFor(name: string): number {
  const m = /^delay-(\d+)\./i.exec(name);
  return m ? Number(m[1]) : 0;
}

/** The answer size a `big-<n>` name asks for, in bytes (0 for none). */
export function bigFor(name: string): number {
  const m = /^big-(\d+)(?:-[a-z0-9]+)?\./i.exec(name);
  return m ? Math.min(Number(m[1]), 64_000) : 0;
}

/** Answers a wire-format query from the zone; the response keeps the query's ID and EDNS. */
export function answerFromZone(query: Uint8Array): Uint8Array {
  const q = dnsPacket.decode(Buffer.from(query));
  const question = q.questions![0];
  const answers: dnsPacket.Answer[] = [];
  let name = question.name;
  while (/^via-/i.test(name) && question.type !== "CNAME") {
    const target = name.slice(4);
    answers.push({ type: "CNAME", name, ttl: 300, data: target });
    name = target;
  }
  const n = octetFor(name);
  let rcode = "NOERROR";
  const authorities: dnsPacket.Answer[] = [];
  if (/^nx\./i.test(name)) {
    rcode = "NXDOMAIN";
    authorities.push({
      type: "SOA",
      name: "example.test",
      ttl: 300,
      data: {
        mname: "ns.example.test",
        rname: "hostmaster.example.test",
        serial: 1,
        refresh: 3600,
        retry: 600,
        expire: 86400,
        minimum: 60,
      },
    });
  } else if (question.type === "A") {
    answers.push({ type: "A", name, ttl: 300, data: `192.0.2.${n}` });
  } else if (question.type === "AAAA") {
    answers.push({ type: "AAAA", name, ttl: 300, data: `2001:db8::${n.toString(16)}` });
  } else if (question.type === "TXT" && bigFor(name) > 0) {
    const strings: string[] = [];
    for (let left = bigFor(name); left > 0; left -= 256) {
      strings.push("x".repeat(Math.min(255, Math.max(0, left - 1))));
    }
    answers.push({ type: "TXT", name, ttl: 300, data: strings });
  } else if (question.type === "TXT") {
    answers.push({ type: "TXT", name, ttl: 60, data: [name] });
  }
  const opt = q.additionals?.find((r) => r.type === "OPT");
  const response = dnsPacket.encode({
    type: "response",
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE |
      (rcode === "NXDOMAIN" ? 3 : 0),
    questions: q.questions,
    answers,
    authorities,
    additionals: opt
      ? [{ type: "OPT", name: ".", udpPayloadSize: 1232, flags: 0 } as dnsPacket.Answer]
      : [],
  });
  return new Uint8Array(response);
}
