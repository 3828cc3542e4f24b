/**
 * The zone file format, a subset of RFC 1035 §5: `name [ttl] [IN] TYPE rdata` with A, AAAA,
 * CNAME, TXT (one or more quoted strings) and PTR; `$TTL` and `$ORIGIN` (always absolute); `@`;
 * names relative to `$ORIGIN`; a line starting with blanks reuses the previous owner; `;`
 * comments; TTLs in seconds or with units (`1h30m`). No parentheses, `$INCLUDE`, wildcards or
 * escapes in names.
 *
 * @module
 */
import {
  canonicalName,
  DEFAULT_LOCAL_TTL,
  fail,
  ipv4Bytes,
  ipv6Bytes,
  type LocalRecord,
  MAX_TTL,
} from "./record.ts";

/** The record types a zone file may hold. */
const TYPES: ReadonlySet<string> = new Set(["A", "AAAA", "CNAME", "TXT", "PTR"]);
const encoder = new TextEncoder();

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
    if (!TYPES.has(type)) {
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
