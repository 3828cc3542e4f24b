/**
 * The query log's lines: one JSON object per answered query, made from what the processor's tap
 * hands over (`TappedQuery`): time, face, tenant, client (as `--query-log-client` says), name,
 * type, rcode, where the answer came from, and how long it took.
 *
 * ```json
 * {"time":"2026-12-06T16:40:00.123Z","face":"dot","tenant":"","client":"192.0.2.0/24","name":"example.com","type":"A","rcode":"NOERROR","source":"upstream","upstream":"https://dns.example","ms":1.93}
 * ```
 *
 * Lines are built by hand rather than with `JSON.stringify` of an object: a line is made for
 * every query on the hot path (see docs/observability.md for what it costs).
 *
 * @module
 */
import { rcodeName } from "../dns/constants.ts";
import type { QueryTap, TappedQuery } from "../resolver/processor.ts";

const TYPE_NAMES: Record<number, string> = {
  1: "A",
  2: "NS",
  5: "CNAME",
  6: "SOA",
  12: "PTR",
  15: "MX",
  16: "TXT",
  28: "AAAA",
  33: "SRV",
  35: "NAPTR",
  43: "DS",
  48: "DNSKEY",
  64: "SVCB",
  65: "HTTPS",
  255: "ANY",
  257: "CAA",
};

/** A type's mnemonic (`A`, `HTTPS`), or `TYPE<n>` (RFC 3597). */
export function typeName(type: number): string {
  return TYPE_NAMES[type] ?? `TYPE${type}`;
}

/**
 * `text` as a JSON string literal: as it is when every char is printable ASCII other than `"` and
 * `\\` (names come in presentation form, so nearly always), else `JSON.stringify`'s. One scan,
 * no regular expression: this runs several times per logged query.
 */
function jsonString(text: string): string {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return JSON.stringify(text);
  }
  return `"${text}"`;
}

/** ISO 8601 times, the part up to the second remembered (most lines share it). */
function isoClock(): (ms: number) => string {
  let second = -1;
  let prefix = "";
  return (ms) => {
    const s = Math.floor(ms / 1000);
    if (s !== second) {
      second = s;
      prefix = new Date(s * 1000).toISOString().slice(0, 20); // "2026-12-06T16:40:00."
    }
    const frac = ms - s * 1000;
    return `${prefix}${frac < 10 ? "00" : frac < 100 ? "0" : ""}${Math.floor(frac)}Z`;
  };
}

/** Options of {@linkcode queryLogTap}. */
export interface QueryLogOptions {
  /** What the log says of a client's address (`clientField`); `undefined`: no client field. */
  client: (address: string | undefined) => string | undefined;
  /** Where each line goes (a {@linkcode LineQueue}'s `push`): must not wait. */
  write: (line: string) => void;
  /** Tenants whose queries are not logged (`"query-log": false` in the tenants file). */
  optedOut?: ReadonlySet<string>;
  /** Milliseconds wall clock for the `time` field. Default `Date.now`. */
  now?: () => number;
}

/**
 * The query log as a processor tap: one line per answered query, handed to `write`.
 *
 * @example
 * ```ts
 * const queue = new LineQueue({ onReady: scheduleWrite });
 * const tap = queryLogTap({ client: clientField("truncated"), write: (l) => queue.push(l) });
 * const process = createProcessor({ handler, tap });
 * ```
 */
export function queryLogTap(options: QueryLogOptions): QueryTap {
  const { client, write } = options;
  const optedOut = options.optedOut?.size ? options.optedOut : undefined;
  const now = options.now ?? Date.now;
  const iso = isoClock();
  // The face and tenant part of the line, kept for the last pair seen (most queries repeat it),
  // and the client's field for the last client.
  let lastFace = "", lastTenant: string | undefined = "", facePart = "";
  let lastClient: string | undefined, clientPart = "";
  return (q: TappedQuery) => {
    const tenant = q.trace.tenant;
    if (optedOut && tenant !== undefined && optedOut.has(tenant)) return;
    const face = q.ctx.face;
    if (face !== lastFace || tenant !== lastTenant) {
      lastFace = face;
      lastTenant = tenant;
      facePart = `,"face":${jsonString(face)},"tenant":${jsonString(tenant ?? "")}`;
    }
    const who = client(q.ctx.client?.address);
    if (who !== lastClient) {
      lastClient = who;
      clientPart = who === undefined ? "" : `,"client":${jsonString(who)}`;
    }
    write(lineOf(q, `{"time":"${iso(now())}"${facePart}${clientPart}`));
  };
}

/** The rest of a line after its time, face, tenant and client (`head`). */
function lineOf(q: TappedQuery, head: string): string {
  const { trace, question } = q;
  let line = question
    ? `${head},"name":${jsonString(question.name)},"type":"${typeName(question.type)}"`
    : `${head},"name":"","type":""`;
  line += `,"rcode":"${rcodeName(q.answer.info.flags & 0xf)}","source":"${
    trace.source ?? "error"
  }"`;
  if (trace.upstream !== undefined) line += `,"upstream":${jsonString(trace.upstream)}`;
  if (trace.list !== undefined) line += `,"list":${jsonString(trace.list)}`;
  return `${line},"ms":${Math.round(q.ms * 100) / 100}}\n`;
}

/**
 * One line (with its newline) for `q`; `client` is the client field's value, `time` the ISO
 * time. For tests and tools that want the same lines.
 */
export function queryLogLine(q: TappedQuery, client: string | undefined, time: string): string {
  const tenant = jsonString(q.trace.tenant ?? "");
  const who = client === undefined ? "" : `,"client":${jsonString(client)}`;
  return lineOf(q, `{"time":"${time}","face":${jsonString(q.ctx.face)},"tenant":${tenant}${who}`);
}
