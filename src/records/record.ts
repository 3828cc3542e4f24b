/**
 * What a local record is, as the file parsers produce it and the table takes it, and the checks
 * both apply to names, addresses and TTLs.
 *
 * @module
 */
import ipaddr from "ipaddr.js";
import { MAX_NAME_LENGTH, nameWireLength } from "../dns/name.ts";

interface RecordBase {
  /** Owner name, absolute, with or without the final dot. Case does not matter. */
  readonly name: string;
  /** Seconds; `undefined` takes the set's default TTL. */
  readonly ttl?: number;
  /** Line of the source file, for error messages. */
  readonly line?: number;
}

/** One local record, as the parsers produce it and `LocalRecords.from` takes it. */
export type LocalRecord =
  | RecordBase & { readonly type: "A" | "AAAA"; readonly address: string }
  | RecordBase & { readonly type: "CNAME" | "PTR"; readonly target: string }
  /** Each string at most 255 bytes; a `string` is sent as UTF-8. */
  | RecordBase & { readonly type: "TXT"; readonly strings: readonly (string | Uint8Array)[] };

/** The default TTL of local records and of the synthetic SOA. */
export const DEFAULT_LOCAL_TTL = 300;

/** The largest TTL (RFC 2181 §8). */
export const MAX_TTL = 0x7fffffff;

const LABEL = /^[a-z0-9_/-]{1,63}$/;

/**
 * Throws the error every bad record or line gives: a `SyntaxError` whose message starts with
 * `line N: ` when the line is known.
 */
export function fail(line: number | undefined, message: string): never {
  throw new SyntaxError(line === undefined ? message : `line ${line}: ${message}`);
}

/**
 * Canonical form of an absolute name: lower case, no final dot; `undefined` if it is empty, has
 * a label outside `[a-z0-9_/-]{1,63}` or is over 255 bytes in wire format.
 */
export function canonicalName(text: string): string | undefined {
  const name = (text.endsWith(".") ? text.slice(0, -1) : text).toLowerCase();
  if (name === "") return undefined;
  const labels = name.split(".");
  if (!labels.every((l) => LABEL.test(l))) return undefined;
  return nameWireLength(name) <= MAX_NAME_LENGTH ? name : undefined;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** The 4 bytes of a dotted-quad IPv4 address (no leading zeros, no short or hex forms). */
export function ipv4Bytes(text: string): Uint8Array | undefined {
  if (!IPV4.test(text)) return undefined;
  const parts = text.split(".");
  return new Uint8Array([+parts[0], +parts[1], +parts[2], +parts[3]]);
}

/** The 16 bytes of an IPv6 address (no `%zone`). */
export function ipv6Bytes(text: string): Uint8Array | undefined {
  if (!text.includes(":") || text.includes("%") || !ipaddr.IPv6.isValid(text)) return undefined;
  return Uint8Array.from(ipaddr.IPv6.parse(text).toByteArray());
}
