/**
 * The set of one list's names: their 64-bit fingerprints (`fingerprint.ts`) with what each
 * entry does, in three flat typed arrays. Entries are bucketed by the top bits of their high
 * word (a counting sort at build: no comparison sort, no per-entry object), with about four per
 * bucket, so a lookup reads one index pair and compares a few words. A million names take ~9 MB
 * (8 + 1 bytes each, and the bucket index); the design note in docs/architecture.md says
 * how it compared with a `Set` of strings, packed sorted names and an exact hash table.
 *
 * @module
 */

/** What an entry does to a name it matches. */
export const Action = {
  /** Blocked, answered as the policy's `--block-response` says. */
  BLOCK: 1,
  /** Blocked with NXDOMAIN whatever the policy says (RPZ `CNAME .`). */
  NXDOMAIN: 2,
  /** Blocked with NODATA whatever the policy says (RPZ `CNAME *.`). */
  NODATA: 3,
  /** Allowed: wins over every block (`@@||name^`, RPZ `rpz-passthru.`, an allowlist). */
  ALLOW: 4,
} as const;

/** One of {@linkcode Action}'s values, or 0 for none. */
export type ActionCode = 0 | typeof Action[keyof typeof Action];

/**
 * An entry's actions, packed in one byte: the low nibble for the listed name itself, the high
 * nibble for names under it. `example.com` blocks both; `*.example.com` only names under it.
 */
export type EntryActions = number;

/** Packs an entry's actions: on the name itself, and on the names under it. */
export function entryActions(self: ActionCode, under: ActionCode): EntryActions {
  return self | (under << 4);
}

/** The action on the listed name itself (0: none). */
export function selfAction(actions: EntryActions): ActionCode {
  return (actions & 0x0f) as ActionCode;
}

/** The action on names under the listed one (0: none). */
export function underAction(actions: EntryActions): ActionCode {
  return (actions >> 4) as ActionCode;
}

/** Two actions on one name: an allow wins, else the first. */
function mergeAction(a: number, b: number): number {
  if (a === Action.ALLOW || b === Action.ALLOW) return Action.ALLOW;
  return a !== 0 ? a : b;
}

/** Two entries for one name, merged nibble by nibble. */
export function mergeActions(a: EntryActions, b: EntryActions): EntryActions {
  return mergeAction(a & 0x0f, b & 0x0f) | (mergeAction(a >> 4, b >> 4) << 4);
}

/** Entries per bucket the index aims at. */
const PER_BUCKET = 4;

/**
 * An immutable set of fingerprints, each with its {@linkcode EntryActions}. Safe to share (one
 * list used by several policies); a reload builds a new set and swaps it in.
 *
 * @example
 * ```ts
 * const b = new DomainSetBuilder();
 * b.add(hi, lo, entryActions(Action.BLOCK, Action.BLOCK));
 * const set = b.build();
 * set.get(hi, lo); // the packed actions, 0 when absent
 * ```
 */
export class DomainSet {
  /** Distinct names. */
  readonly size: number;
  /** Fingerprints, high word then low word: entry `i` at `2i`, `2i + 1` (one cache line). */
  readonly #keys: Uint32Array;
  readonly #actions: Uint8Array;
  /** `#index[b]` is where bucket `b`'s entries start; `#index[b + 1]` where they end. */
  readonly #index: Uint32Array;
  readonly #shift: number;

  /** @internal by {@linkcode DomainSetBuilder} */
  constructor(keys: Uint32Array, actions: Uint8Array, index: Uint32Array, shift: number) {
    this.size = actions.length;
    this.#keys = keys;
    this.#actions = actions;
    this.#index = index;
    this.#shift = shift;
  }

  /** A set with nothing in it. */
  static empty(): DomainSet {
    return new DomainSet(new Uint32Array(0), new Uint8Array(0), new Uint32Array(3), 31);
  }

  /** The packed actions of the entry with this fingerprint, or 0 when there is none. */
  get(hi: number, lo: number): EntryActions {
    const b = hi >>> this.#shift;
    const keys = this.#keys;
    for (let i = this.#index[b], end = this.#index[b + 1]; i < end; i++) {
      if (keys[2 * i] === hi && keys[2 * i + 1] === lo) return this.#actions[i];
    }
    return 0;
  }

  /** Bytes held by the arrays (for the bench and the docs). */
  get bytes(): number {
    return this.#keys.byteLength + this.#actions.byteLength + this.#index.byteLength;
  }
}

/**
 * Collects fingerprints in growing typed arrays, then sorts them into buckets once. Not for
 * concurrent use; one builder builds one set.
 */
export class DomainSetBuilder {
  #hi = new Uint32Array(1024);
  #lo = new Uint32Array(1024);
  #actions = new Uint8Array(1024);
  #count = 0;

  /** Entries added so far (duplicates included). */
  get count(): number {
    return this.#count;
  }

  /** Adds one entry; a name added twice gets its actions merged at build. */
  add(hi: number, lo: number, actions: EntryActions): void {
    if (actions === 0) return;
    const n = this.#count;
    if (n === this.#hi.length) this.#grow();
    this.#hi[n] = hi;
    this.#lo[n] = lo;
    this.#actions[n] = actions;
    this.#count = n + 1;
  }

  #grow(): void {
    const size = this.#hi.length * 2;
    const hi = new Uint32Array(size);
    hi.set(this.#hi);
    const lo = new Uint32Array(size);
    lo.set(this.#lo);
    const actions = new Uint8Array(size);
    actions.set(this.#actions);
    this.#hi = hi;
    this.#lo = lo;
    this.#actions = actions;
  }

  /**
   * The set: entries placed by bucket (a counting sort on the high word's top bits), equal
   * fingerprints merged, arrays cut to size. The builder is spent afterwards.
   */
  build(): DomainSet {
    const steps = this.buildSteps(Infinity);
    for (;;) {
      const step = steps.next();
      if (step.done) return step.value;
    }
  }

  /**
   * {@linkcode build} in steps of about `entries` entries each, so a caller can let other work
   * run between them (a million names take ~50 ms in all here); returns the set when done.
   */
  *buildSteps(entries = 65_536): Generator<void, DomainSet> {
    const n = this.#count;
    let bits = 1;
    while (bits < 31 && (1 << bits) * PER_BUCKET < n) bits++;
    const shift = 32 - bits;
    const buckets = 1 << bits;
    const index = new Uint32Array(buckets + 1);
    const srcHi = this.#hi;
    const srcLo = this.#lo;
    const srcActions = this.#actions;
    for (let from = 0; from < n; from += entries) {
      for (let i = from, to = Math.min(n, from + entries); i < to; i++) {
        index[(srcHi[i] >>> shift) + 1]++;
      }
      yield;
    }
    for (let b = 1; b <= buckets; b++) index[b] += index[b - 1];
    const next = index.slice(0, buckets);
    const keys = new Uint32Array(2 * n);
    const actions = new Uint8Array(n);
    for (let from = 0; from < n; from += entries) {
      for (let i = from, to = Math.min(n, from + entries); i < to; i++) {
        const h = srcHi[i];
        const at = next[h >>> shift]++;
        keys[2 * at] = h;
        keys[2 * at + 1] = srcLo[i];
        actions[at] = srcActions[i];
      }
      yield;
    }
    this.#hi = this.#lo = new Uint32Array(0);
    this.#actions = new Uint8Array(0);
    this.#count = 0;
    return yield* dedupe(keys, actions, index, shift, entries);
  }
}

/**
 * Merges equal fingerprints within each bucket, in place, then cuts the arrays to size; yields
 * after about every `entries` entries.
 */
function* dedupe(
  keys: Uint32Array,
  actions: Uint8Array,
  index: Uint32Array,
  shift: number,
  entries: number,
): Generator<void, DomainSet> {
  let w = 0;
  let start = 0;
  let sinceYield = 0;
  const buckets = index.length - 1;
  for (let b = 0; b < buckets; b++) {
    if (sinceYield >= entries) {
      sinceYield = 0;
      yield;
    }
    const end = index[b + 1];
    const first = w;
    for (let r = start; r < end; r++) {
      const hi = keys[2 * r];
      const lo = keys[2 * r + 1];
      let dup = -1;
      for (let k = first; k < w; k++) {
        if (keys[2 * k] === hi && keys[2 * k + 1] === lo) {
          dup = k;
          break;
        }
      }
      if (dup >= 0) {
        actions[dup] = mergeActions(actions[dup], actions[r]);
      } else {
        keys[2 * w] = hi;
        keys[2 * w + 1] = lo;
        actions[w] = actions[r];
        w++;
      }
    }
    index[b] = first;
    sinceYield += end - start;
    start = end;
  }
  index[buckets] = w;
  if (w === actions.length) return new DomainSet(keys, actions, index, shift);
  return new DomainSet(keys.slice(0, 2 * w), actions.slice(0, w), index, shift);
}
