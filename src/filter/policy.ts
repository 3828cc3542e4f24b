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
  /**
   * Every verdict by its code in the recent-verdict cache: 0 none, 1 allowed, then one per
   * blocklist and action (`2 + 4 × list + action`), made once.
   */
  readonly #byCode: Verdict[] = [null, ALLOWED];
  /** The sets the cached verdicts were worked out from (allowlists, then blocklists). */
  readonly #sets: (DomainSet | undefined)[];
  #generation = 1;
  /** Recent verdicts by the name's fingerprint; made on first use. */
  #recent?: RecentVerdicts;

  constructor(options: {
    hasher: NameHasher;
    blocklists: readonly FilterList[];
    allowlists?: readonly FilterList[];
  }) {
    this.#hasher = options.hasher;
    this.#blocklists = options.blocklists;
    this.#allowlists = options.allowlists ?? [];
    for (const list of this.#blocklists) {
      for (let action = 0; action < 4; action++) {
        this.#byCode.push({ allowed: false, list, action: action as ActionCode });
      }
    }
    this.#sets = [...this.#allowlists, ...this.#blocklists].map((l) => l.set);
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
    this.#notice();
    const recent = this.#recent ??= new RecentVerdicts();
    const hi = fp.hi[0];
    const lo = fp.lo[0];
    const cached = recent.get(hi, lo, this.#generation);
    if (cached >= 0) return this.#byCode[cached];
    const code = this.#decide(fp.hi, fp.lo, labels);
    recent.set(hi, lo, this.#generation, code);
    return this.#byCode[code];
  }

  /** Forgets the cached verdicts when a list's set was swapped (a reload). */
  #notice(): void {
    const sets = this.#sets;
    const allow = this.#allowlists;
    let i = 0;
    let changed = false;
    for (const list of allow) {
      if (list.set !== sets[i]) (sets[i] = list.set, changed = true);
      i++;
    }
    for (const list of this.#blocklists) {
      if (list.set !== sets[i]) (sets[i] = list.set, changed = true);
      i++;
    }
    if (changed) this.#generation = (this.#generation + 1) >>> 0 || 1;
  }

  /** The verdict's code (see `#byCode`) from the lists themselves. */
  #decide(hi: Uint32Array, lo: Uint32Array, labels: number): number {
    for (const list of this.#allowlists) {
      if (find(list.set, hi, lo, labels) !== 0) return 1;
    }
    let blocked = 0;
    for (let l = 0; l < this.#blocklists.length; l++) {
      const action = find(this.#blocklists[l].set, hi, lo, labels);
      if (action === Action.ALLOW) return 1;
      if (action !== 0 && blocked === 0) blocked = 2 + 4 * l + action;
    }
    return blocked;
  }
}

/** Slots of a policy's recent-verdict cache (a power of two): ~56 KB, made on first use. */
const RECENT_SLOTS = 4096;

/**
 * The verdicts on the names a policy saw last, direct-mapped by the name's fingerprint and
 * tagged with the generation of the sets they came from. Cached traffic repeats names, and a hit
 * here spares the probes into a big set, whose cache lines a busy pipeline has long evicted.
 */
class RecentVerdicts {
  readonly #hi = new Uint32Array(RECENT_SLOTS);
  readonly #lo = new Uint32Array(RECENT_SLOTS);
  /** 0: empty. */
  readonly #generation = new Uint32Array(RECENT_SLOTS);
  readonly #code = new Uint16Array(RECENT_SLOTS);

  /** The cached code, or -1. */
  get(hi: number, lo: number, generation: number): number {
    const slot = lo & (RECENT_SLOTS - 1);
    return this.#generation[slot] === generation && this.#hi[slot] === hi &&
        this.#lo[slot] === lo
      ? this.#code[slot]
      : -1;
  }

  set(hi: number, lo: number, generation: number, code: number): void {
    const slot = lo & (RECENT_SLOTS - 1);
    this.#hi[slot] = hi;
    this.#lo[slot] = lo;
    this.#generation[slot] = generation;
    this.#code[slot] = code;
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
