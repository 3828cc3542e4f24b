/**
 * The local records table: an immutable set whose answers were all built in wire format at load
 * time (`build.ts`). Per query only the header, the client's question bytes (its ID and its
 * spelling of the name) and an OPT record are put around a precomputed body, and what the
 * answer holds is known without walking it.
 *
 * @module
 */
import type { Answer } from "../dns/answer.ts";
import { HEADER_LENGTH, RrClass } from "../dns/constants.ts";
import { nextLabel } from "../dns/name.ts";
import type { Query } from "../dns/query.ts";
import { type Entry, prepareAnswers } from "./build.ts";
import { assembleAnswer, type Prepared } from "../dns/assemble.ts";
import { canonicalName, DEFAULT_LOCAL_TTL, type LocalRecord, MAX_TTL } from "./record.ts";

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

/** Size of the OPT record a local answer carries (no options). */

/**
 * An immutable set of local records with every answer precomputed. Safe for concurrent use;
 * holds no resources (nothing to close). Build it with `parseLocalRecords` (from a file's text)
 * or {@linkcode LocalRecords.from}; swap the whole set to reload.
 *
 * @example
 * ```ts
 * const local = parseLocalRecords("10.0.0.2 nas.home.arpa\n");
 * const answer = local.answer(query); // an Answer, or undefined: ask the upstream
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
  static from(
    records: readonly LocalRecord[],
    options: LocalRecordsOptions = {},
  ): LocalRecords {
    const defaultTtl = options.defaultTtl ?? DEFAULT_LOCAL_TTL;
    if (!Number.isInteger(defaultTtl) || defaultTtl < 0 || defaultTtl > MAX_TTL) {
      throw new RangeError(`local records: bad default TTL ${defaultTtl}`);
    }
    const zones = (options.authoritativeZones ?? []).map((z) => {
      const name = canonicalName(z);
      if (!name) throw new RangeError(`local records: bad authoritative zone "${z}"`);
      return name;
    });
    const set = prepareAnswers(records, defaultTtl, zones);
    return new LocalRecords(set.entries, set.nxdomains, set.size);
  }

  /**
   * The answer to `query` from this set, or `undefined` when the set has nothing to say (the
   * query goes upstream). Answers are authoritative (AA, RA set; RD and CD copied) and carry the
   * client's ID and question bytes, and an OPT record when the query had one:
   *
   * - a declared name: its records of the asked type (ANY: all of them); a CNAME, followed
   *   through local names up to `MAX_CNAME_HOPS` times; NODATA with a synthetic SOA
   *   (owned by the enclosing authoritative zone, else by the name) when it has other types
   * - an undeclared name under an authoritative zone: NXDOMAIN with the zone's SOA
   * - anything else, a class other than IN, or a question with a compressed name: `undefined`
   *
   * The answer's `info` is built from the precomputed counts, not by walking the bytes.
   *
   * @example
   * ```ts
   * const answer = local.answer(query) ?? await upstream.exchange(query);
   * ```
   */
  answer(query: Query): Answer | undefined {
    const q = query.question;
    if (q.class !== RrClass.IN) return undefined;
    const name = q.name.toLowerCase();
    const entry = this.#entries.get(name);
    if (entry) {
      // The bodies point into the question: only answer a plain (uncompressed) question name.
      if (query.info.questionEnd - HEADER_LENGTH !== entry.qlen) return undefined;
      const i = entry.types.indexOf(q.type);
      return assembleAnswer(query, i >= 0 ? entry.answers[i] : entry.other);
    }
    if (this.#zones.size === 0) return undefined;
    for (let k = 0; k >= 0; k = nextLabel(name, k)) {
      const nx = this.#zones.get(name.slice(k));
      if (nx) return assembleAnswer(query, nx);
    }
    return undefined;
  }
}
