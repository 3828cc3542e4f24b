/**
 * The list formats, detected line by line as the popular lists are written, so one file may mix
 * them:
 *
 * | line                              | entry                                               |
 * | --------------------------------- | --------------------------------------------------- |
 * | `ads.example`                     | blocks `ads.example` and every name under it        |
 * | `*.ads.example`                   | blocks the names under `ads.example`, not itself    |
 * | `0.0.0.0 ads.example` (hosts)     | as `ads.example`; also `127.0.0.1`, `::`, `::1`, `0` |
 * | `\|\|ads.example^` (Adblock)      | as `ads.example` (also `^\|`)                        |
 * | `@@\|\|ads.example^`              | allows `ads.example` and the names under it         |
 * | `ads.example CNAME .` (RPZ)       | NXDOMAIN for `ads.example` only (`*.ads.example`: under it) |
 * | `ads.example CNAME *.`            | NODATA, likewise                                    |
 * | `ads.example CNAME rpz-passthru.` | allows, likewise                                    |
 *
 * `!`, `#`, `;` and `[Adblock Plus 2.0]` lines are comments; RPZ's `$ORIGIN`, `$TTL`, SOA and NS
 * records are read or passed over. A listed name follows each format's own rule: in hosts,
 * plain and Adblock lines it covers its subdomains; an RPZ QNAME trigger is exact, and
 * `*.name` covers what is under `name` (as draft-vixie-dnsop-dns-rpz has it). What is not understood is skipped
 * and counted: Adblock rules with `$` modifiers (counted on their own too), URL and cosmetic
 * rules, hosts lines redirecting to other addresses, RPZ local data, `rpz-drop.`, IP and
 * NSDNAME triggers, bad names. Hosts files' own names (`localhost`, `broadcasthost`, ...) are
 * passed over without counting.
 *
 * The parser takes text in chunks of any size (a line may straddle two), so a list is parsed as
 * it streams in; names are hashed straight from the text, with no string made per line.
 *
 * @module
 */
import {
  Action,
  type ActionCode,
  DomainSet,
  DomainSetBuilder,
  entryActions,
} from "./domain_set.ts";
import { fingerprintScratch, fingerprintText, type NameHasher } from "./fingerprint.ts";

/** What parsing one list found. */
export interface ListStats {
  /** Lines read. */
  lines: number;
  /** Entries added (a name listed twice counts twice; the set's `size` counts it once). */
  entries: number;
  /** Lines not understood or not supported (including `modifiers`). */
  skipped: number;
  /** Of `skipped`: Adblock rules with `$` modifiers. */
  modifiers: number;
}

/** A parsed list. */
export interface ParsedList {
  readonly set: DomainSet;
  readonly stats: Readonly<ListStats>;
}

/** The addresses a hosts line may point a name at to block it. */
const BLOCKING_ADDRESSES = new Set(["0.0.0.0", "127.0.0.1", "::", "::1", "0", "::0"]);

/** Names hosts files declare for the machine itself: never entries. */
const HOSTS_OWN_NAMES = new Set([
  "localhost",
  "localhost.localdomain",
  "local",
  "broadcasthost",
  "ip6-localhost",
  "ip6-loopback",
  "ip6-localnet",
  "ip6-mcastprefix",
  "ip6-allnodes",
  "ip6-allrouters",
  "ip6-allhosts",
  "0.0.0.0",
]);

/** RPZ triggers other than QNAME, by their last label. */
const OTHER_TRIGGERS = new Set(["rpz-ip", "rpz-nsdname", "rpz-nsip", "rpz-client-ip"]);

const SPACE = 0x20;
const TAB = 0x09;
const CR = 0x0d;

function isSpace(c: number): boolean {
  return c === SPACE || c === TAB || c === CR;
}

/** Most tokens a line is split into; a hosts line naming more has the rest skipped. */
const MAX_TOKENS = 64;

/**
 * Turns list text into a {@linkcode DomainSet}, chunk by chunk. Not for concurrent use.
 *
 * @example
 * ```ts
 * const parser = new ListParser(hasher);
 * for await (const chunk of textChunks) parser.push(chunk);
 * const { set, stats } = parser.end();
 * ```
 */
export class ListParser {
  readonly #hasher: NameHasher;
  readonly #builder = new DomainSetBuilder();
  readonly #scratch = fingerprintScratch();
  readonly #stats: ListStats = { lines: 0, entries: 0, skipped: 0, modifiers: 0 };
  readonly #starts = new Int32Array(MAX_TOKENS);
  readonly #ends = new Int32Array(MAX_TOKENS);
  /** The unfinished last line of the text pushed so far. */
  #rest = "";
  /** RPZ: the zone's origin (lower case, no final dot), once known. */
  #origin?: string;
  /** RPZ: the owner of the last record, for lines that leave it out. */
  #owner?: string;
  /** RPZ: inside a record continued over lines by parentheses. */
  #inParens = false;

  constructor(hasher: NameHasher) {
    this.#hasher = hasher;
  }

  /** Counts so far. */
  get stats(): Readonly<ListStats> {
    return this.#stats;
  }

  /** Parses the complete lines of `chunk` (after what is left of earlier chunks). */
  push(chunk: string): void {
    const text = this.#rest.length > 0 ? this.#rest + chunk : chunk;
    let start = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", start)) {
      this.#line(text, start, nl);
      start = nl + 1;
    }
    this.#rest = start === 0 ? text : text.slice(start);
  }

  /** Parses the last line and builds the set. The parser is spent afterwards. */
  end(): ParsedList {
    const steps = this.endSteps(Infinity);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
    }
  }

  /** {@linkcode end} in steps (see `DomainSetBuilder.buildSteps`). */
  *endSteps(entries?: number): Generator<void, ParsedList> {
    if (this.#rest.length > 0) this.#line(this.#rest, 0, this.#rest.length);
    this.#rest = "";
    const set = yield* this.#builder.buildSteps(entries);
    return { set, stats: { ...this.#stats } };
  }

  #skip(): void {
    this.#stats.skipped++;
  }

  /**
   * Adds `text[start, end)` as a name doing `self` to itself and `under` to the names under it;
   * a leading `*.` turns it into `under` alone (the RPZ wildcard's action is passed as `self`).
   */
  #add(text: string, start: number, end: number, self: ActionCode, under: ActionCode): boolean {
    if (end - start > 1 && text.charCodeAt(end - 1) === 0x2e) end--;
    if (end - start > 2 && text.charCodeAt(start) === 0x2a && text.charCodeAt(start + 1) === 0x2e) {
      start += 2;
      under = under || self;
      self = 0;
    }
    if (!fingerprintText(this.#hasher, text, start, end, this.#scratch)) return false;
    this.#builder.add(this.#scratch.hi[0], this.#scratch.lo[0], entryActions(self, under));
    this.#stats.entries++;
    return true;
  }

  #line(text: string, start: number, end: number): void {
    this.#stats.lines++;
    let i = start;
    while (i < end && isSpace(text.charCodeAt(i))) i++;
    while (end > i && isSpace(text.charCodeAt(end - 1))) end--;
    if (i === end) return;
    const indented = i > start;
    const c = text.charCodeAt(i);
    if (this.#inParens) {
      const close = text.indexOf(")", i);
      if (close >= 0 && close < end) this.#inParens = false;
      return;
    }
    if (c === 0x21 || c === 0x23 || c === 0x3b || c === 0x5b) return; // ! # ; [
    if (c === 0x7c || (c === 0x40 && text.charCodeAt(i + 1) === 0x40)) {
      return this.#adblock(text, i, end);
    }
    if (c === 0x24) return this.#directive(text, i, end); // $
    // The common line, a bare name, is tried as one before the line is split into tokens.
    if (!indented && this.#add(text, i, end, Action.BLOCK, Action.BLOCK)) return;
    const n = this.#tokens(text, i, end);
    if (n === 0) return;
    const starts = this.#starts;
    const ends = this.#ends;
    if (n === 1 && !indented) {
      if (!this.#add(text, starts[0], ends[0], Action.BLOCK, Action.BLOCK)) this.#skip();
      return;
    }
    const first = text.slice(starts[0], ends[0]);
    if (!indented && (first.includes(":") || /^\d+(\.\d+){3}$|^0$/.test(first))) {
      return this.#hosts(text, first, n);
    }
    this.#rpz(text, n, indented);
  }

  /** Splits `text[i, end)` at whitespace, stopping at a token that starts a comment. */
  #tokens(text: string, i: number, end: number): number {
    let n = 0;
    while (i < end && n < MAX_TOKENS) {
      const c = text.charCodeAt(i);
      if (isSpace(c)) {
        i++;
        continue;
      }
      if (c === 0x23 || c === 0x3b) break; // # ;
      this.#starts[n] = i;
      while (i < end && !isSpace(text.charCodeAt(i))) i++;
      this.#ends[n++] = i;
    }
    return n;
  }

  /** `ADDRESS name [name ...]`. */
  #hosts(text: string, address: string, n: number): void {
    if (!BLOCKING_ADDRESSES.has(address)) return this.#skip();
    let added = false;
    let bad = false;
    for (let t = 1; t < n; t++) {
      const s = this.#starts[t];
      const e = this.#ends[t];
      if (e - s <= 21 && HOSTS_OWN_NAMES.has(text.slice(s, e).toLowerCase())) continue;
      if (this.#add(text, s, e, Action.BLOCK, Action.BLOCK)) added = true;
      else bad = true;
    }
    if (bad && !added) this.#skip();
  }

  /** `||name^`, `||name^|`, `@@||name^`; anything else Adblock-like is skipped. */
  #adblock(text: string, i: number, end: number): void {
    let action: ActionCode = Action.BLOCK;
    if (text.startsWith("@@", i)) {
      action = Action.ALLOW;
      i += 2;
    }
    if (!text.startsWith("||", i)) return this.#skip();
    i += 2;
    const dollar = text.indexOf("$", i);
    if (dollar >= 0 && dollar < end) {
      this.#stats.modifiers++;
      return this.#skip();
    }
    let stop = end;
    if (text.charCodeAt(stop - 1) === 0x7c) stop--; // ^|
    if (text.charCodeAt(stop - 1) !== 0x5e) return this.#skip(); // ^
    stop--;
    if (text.charCodeAt(i) === 0x2a) return this.#skip(); // ||*.name^: a pattern
    if (!this.#add(text, i, stop, action, action)) this.#skip();
  }

  /** `$ORIGIN name.`, `$TTL 300`; `$INCLUDE` and others are skipped. */
  #directive(text: string, i: number, end: number): void {
    const n = this.#tokens(text, i, end);
    const word = text.slice(this.#starts[0], this.#ends[0]).toUpperCase();
    if (word === "$TTL") return;
    if (word === "$ORIGIN" && n >= 2) {
      this.#origin = absolute(text.slice(this.#starts[1], this.#ends[1]));
      return;
    }
    this.#skip();
  }

  /** An RPZ record: `owner [ttl] [class] TYPE rdata`, the owner left out when indented. */
  #rpz(text: string, n: number, indented: boolean): void {
    const token = (t: number) => text.slice(this.#starts[t], this.#ends[t]);
    let t = 0;
    if (!indented) this.#owner = token(t++);
    const owner = this.#owner;
    while (t < n && /^(\d+[smhdw]?|IN|CH|HS)$/i.test(token(t))) t++;
    if (t >= n || owner === undefined) return this.#skip();
    const type = token(t).toUpperCase();
    const rest = text.slice(this.#starts[t], this.#ends[n - 1]);
    if (type === "SOA" || type === "NS") {
      if (rest.includes("(") && !rest.includes(")")) this.#inParens = true;
      if (type === "SOA" && this.#origin === undefined && owner.endsWith(".")) {
        this.#origin = absolute(owner);
      }
      return;
    }
    if (type !== "CNAME" || t + 1 >= n) return this.#skip();
    const target = token(t + 1).toLowerCase();
    const action: ActionCode = target === "."
      ? Action.NXDOMAIN
      : target === "*."
      ? Action.NODATA
      : target === "rpz-passthru."
      ? Action.ALLOW
      : 0;
    const trigger = this.#trigger(owner);
    if (action === 0 || trigger === undefined) return this.#skip();
    if (!this.#add(trigger, 0, trigger.length, action, 0)) this.#skip();
  }

  /** The QNAME an RPZ owner name stands for, or undefined (the apex, another trigger, ...). */
  #trigger(owner: string): string | undefined {
    let name = owner.toLowerCase();
    if (name === "@") return undefined;
    if (name.endsWith(".")) {
      const origin = this.#origin;
      if (origin === undefined || !name.endsWith(`.${origin}.`)) return undefined;
      name = name.slice(0, -origin.length - 2);
    }
    const last = name.slice(name.lastIndexOf(".") + 1);
    return OTHER_TRIGGERS.has(last) ? undefined : name;
  }
}

/** A zone file's absolute name without its final dot, lower case. */
function absolute(name: string): string {
  return name.toLowerCase().replace(/\.$/, "");
}

/**
 * Parses a whole list held as text.
 *
 * @example
 * ```ts
 * const { set, stats } = parseList("||ads.example^\n0.0.0.0 track.example\n", hasher);
 * stats.entries; // 2
 * ```
 */
export function parseList(text: string, hasher: NameHasher): ParsedList {
  const parser = new ListParser(hasher);
  parser.push(text);
  return parser.end();
}
