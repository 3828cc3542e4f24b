/**
 * Local records for the Worker, from a variable holding the file's text (a Worker has no files).
 * The one place the Worker touches the local records API, so a move of that API is one edit.
 *
 * @module
 */
import { ConfigError } from "../config/parse.ts";
import { localRecordsMiddleware, parseLocalRecords } from "../records/mod.ts";
import type { Middleware } from "../pipeline/types.ts";
import { messageOf } from "../errors/message_of.ts";

/**
 * Parses `text` (hosts or zone format, told apart by content) once and answers from it.
 *
 * @param origin how errors name the source, e.g. `DOTBRIDGE_LOCAL_RECORDS_TEXT`
 * @throws {ConfigError} naming `origin` when the text does not parse
 *
 * @example
 * ```ts
 * const local = localRecordsFromText("10.0.0.2 nas.home.arpa\n", "DOTBRIDGE_LOCAL_RECORDS_TEXT");
 * ```
 */
export function localRecordsFromText(text: string, origin: string): Middleware {
  let records;
  try {
    records = parseLocalRecords(text);
  } catch (e) {
    throw new ConfigError(origin, messageOf(e));
  }
  return localRecordsMiddleware(() => records);
}
