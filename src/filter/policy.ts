/**
 * One policy's lists and the verdict on a name: allowed (an allowlist, an `@@` exception or an
 * RPZ passthru anywhere in the policy's lists), blocked (by the first blocklist, in order, that
 * lists the name or a parent of it), or neither.
 *
 * @module
 */
import { Action, type ActionCode, type DomainSet, selfAction, underAction } from "./domain_set.ts";
import { fingerprintScratch, type NameHasher, wireFingerprints } from "./fingerprint.ts";

/**
 * A list as policies see it: its name (metric label, `QueryTrace.list`) and its current set,
 * which the edge that loads it swaps on reload. One list may serve several policies.
 */
export interface FilterList {
  /** How the list is named in metrics and traces: never a credential or a URL query. */
  readonly name: string;
  /** The set in force; `undefined` until the first load (the list then matches nothing). */
  readonly set: DomainSet | undefined;
}

/**
 * Where policies get their lists: one {@linkcode FilterList} per source, however many policies
 * name it (the edge loads it once and keeps it current), and the hasher every set was built
 * with.
 */
export interface FilterLists {
  readonly hasher: NameHasher;
  /**
   * The list of `source` (a file path or URL on Deno; a URL or a variable's name in the Worker).
   * May throw a configuration error naming the source.
   */
  list(source: string): FilterList;
}

/** A name the policy blocks. */
export interface Blocked {
  readonly allowed: false;
  /** The blocklist that blocks it. */
  readonly list: FilterList;
  /** {@linkcode Action.BLOCK} (answer as the policy says), `NXDOMAIN` or `NODATA`. */
  readonly action: ActionCode;
}

/** A name the policy allows explicitly. */
export interface Allowed {
  readonly allowed: true;
}

/** The verdict on a name the policy allows explicitly. */
export const ALLOWED: Allowed = Object.freeze({ allowed: true });

/** What {@linkcode FilterPolicy.check} says: blocked, explicitly allowed, or `null` (neither). */
export type Verdict = Blocked | Allowed | null;

/**
 * The lists of one policy, checked in one pass per name: the name's suffix fingerprints are
 * computed once and probed in every list. Not reentrant (a shared scratch), which a JavaScript
 * pipeline never needs; safe to use from many queries, one check at a time.
 *
 * @example
 * ```ts
 * const policy = new FilterPolicy({ hasher, blocklists: [ads], allowlists: [mine] });
 * const verdict = policy.check(query.wire, 12); // the question's name
 * ```
 */
export class FilterPolicy {
  readonly #hasher: NameHasher;
  readonly #blocklists: readonly FilterList[];
  readonly #allowlists: readonly FilterList[];
  readonly #scratch = fingerprintScratch();
  /** One {@linkcode Blocked} per list and action, made once. */
  readonly #verdicts = new Map<FilterList, Blocked[]>();

  constructor(options: {
    hasher: NameHasher;
    blocklists: readonly FilterList[];
    allowlists?: readonly FilterList[];
  }) {
    this.#hasher = options.hasher;
    this.#blocklists = options.blocklists;
    this.#allowlists = options.allowlists ?? [];
    for (const list of this.#blocklists) {
      this.#verdicts.set(
        list,
        [0, 1, 2, 3].map((action) => ({ allowed: false, list, action } as Blocked)),
      );
    }
  }

  /** Whether the policy has any list at all. */
  get empty(): boolean {
    return this.#blocklists.length === 0 && this.#allowlists.length === 0;
  }

  /**
   * The verdict on the wire-format name at `offset` in `wire` (compression pointers followed).
   * A malformed name is neither blocked nor allowed.
   */
  check(wire: Uint8Array, offset: number): Verdict {
    const fp = this.#scratch;
    const labels = wireFingerprints(this.#hasher, wire, offset, fp);
    if (labels <= 0) return null;
    for (const list of this.#allowlists) {
      if (find(list.set, fp.hi, fp.lo, labels) !== 0) return ALLOWED;
    }
    let blocked: Blocked | null = null;
    for (const list of this.#blocklists) {
      const action = find(list.set, fp.hi, fp.lo, labels);
      if (action === Action.ALLOW) return ALLOWED;
      if (action !== 0 && blocked === null) blocked = this.#verdicts.get(list)![action];
    }
    return blocked;
  }
}

/**
 * The action `set` takes on a name whose suffix fingerprints are given (index 0: the whole
 * name): an allow at any level wins, else the most specific block; 0 for none.
 */
function find(
  set: DomainSet | undefined,
  hi: Uint32Array,
  lo: Uint32Array,
  labels: number,
): ActionCode {
  if (set === undefined || set.size === 0) return 0;
  let found: ActionCode = 0;
  for (let j = 0; j < labels; j++) {
    const entry = set.get(hi[j], lo[j]);
    if (entry === 0) continue;
    const action = j === 0 ? selfAction(entry) : underAction(entry);
    if (action === Action.ALLOW) return Action.ALLOW;
    if (found === 0) found = action;
  }
  return found;
}
