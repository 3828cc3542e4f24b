/**
 * A records file's text to a records table: which of the two formats it is in (hosts or zone),
 * its records, and the table built from them. No file system: the Deno loader passes a file's
 * text, the Worker the text of a variable.
 *
 * @module
 */
import { parseHosts } from "./hosts.ts";
import { DEFAULT_LOCAL_TTL, type LocalRecord } from "./record.ts";
import { LocalRecords, type LocalRecordsOptions } from "./table.ts";
import { parseZone } from "./zone.ts";

/** The two file formats {@linkcode parseLocalRecords} reads. */
export type LocalRecordFormat = "hosts" | "zone";

/** Options of {@linkcode parseLocalRecords}. */
export interface ParseLocalRecordsOptions extends LocalRecordsOptions {
  /** Default: {@linkcode detectFormat} of the text and `fileName`. */
  format?: LocalRecordFormat;
  /** Used only to pick the format by extension (`.hosts`, `.zone`, a file named `hosts`). */
  fileName?: string;
}

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
 * The records of a file's text in `format`.
 *
 * @param defaultTtl TTL of zone records before any `$TTL` that give none
 * @throws {SyntaxError} `line N: ...` naming the first bad line
 */
export function parseRecords(
  text: string,
  format: LocalRecordFormat,
  defaultTtl = DEFAULT_LOCAL_TTL,
): LocalRecord[] {
  return format === "hosts" ? parseHosts(text) : parseZone(text, defaultTtl);
}

/**
 * Parses a hosts or zone file's text into a {@linkcode LocalRecords} table. Pure: the text may
 * come from a file, a Worker variable or a test.
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
  return LocalRecords.from(parseRecords(text, format, options.defaultTtl), options);
}
