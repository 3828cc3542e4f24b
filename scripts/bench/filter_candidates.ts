/**
 * The structures considered for blocklists, measured side by side on one generated list (the
 * design note "Blocklists as 64-bit fingerprints" in docs/architecture.md quotes a run):
 *
 * - `set`: a `Set` of the names as strings, looked up suffix by suffix (`a.b.c`, `b.c`, `c`);
 * - `sorted`: the names sorted and packed into one byte array with offsets, a binary search per
 *   suffix (blocky's older string cache, without its grouping by length);
 * - `exact`: an open-addressing hash table over the packed names, hashed right to left so one
 *   pass over a query gives every suffix's hash, each hit confirmed byte by byte;
 * - `trie`: a reversed-label trie of `Map`s (`com` → `example` → `ads`);
 * - `fingerprint`: what `src/filter/` does: 64-bit fingerprints bucketed by their top bits.
 *
 * Each runs in a child process of its own (`--candidate NAME`), so memory is measured alone: the
 * JavaScript heap and array buffers after a full GC, net of the list's text, which is dropped.
 * Lookups: 200 000 names, half under a listed name, half not; the string structures take the
 * names as strings, `fingerprint` the wire form packed in one buffer, as each meets them.
 *
 * Usage: deno run -A scripts/bench/filter_candidates.ts [--names 1000000]
 *
 * @module
 */
import { parseArgs } from "node:util";
import { generatedDomains } from "./filter_list.ts";
import { FilterPolicy, NameHasher, parseList } from "../../src/filter/mod.ts";
import { encodeName } from "../../src/dns/name.ts";
import { markdownTable } from "./markdown.ts";

const CANDIDATES = ["set", "sorted", "exact", "trie", "fingerprint"] as const;
type Candidate = typeof CANDIDATES[number];

interface Figures {
  candidate: Candidate;
  buildMs: number;
  memoryMb: number;
  lookupNs: number;
}

/** murmur3's finaliser. */
function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The sorted candidate's lookup: a binary search per suffix. */
function sortedLookup(
  names: Uint8Array,
  off: Uint32Array,
  n: number,
): (name: string) => boolean {
  const cmp = (name: string, from: number, j: number) => {
    const a = off[j], lb = off[j + 1] - a, la = name.length - from;
    for (let i = 0; i < Math.min(la, lb); i++) {
      const d = name.charCodeAt(from + i) - names[a + i];
      if (d) return d;
    }
    return la - lb;
  };
  return (name) => {
    for (let k = 0;;) {
      let lo = 0, hi = n - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >>> 1;
        const c = cmp(name, k, mid);
        if (c === 0) return true;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
      }
      const dot = name.indexOf(".", k);
      if (dot < 0) return false;
      k = dot + 1;
    }
  };
}

/** The exact hash table's lookup: one hash pass right to left, each suffix probed. */
function exactLookup(
  names: Uint8Array,
  off: Uint32Array,
  slots: Uint32Array,
  mask: number,
): (name: string) => boolean {
  return (name) => {
    let h = 0x811c9dc5;
    for (let i = name.length - 1; i >= -1; i--) {
      const c = i < 0 ? 0x2e : name.charCodeAt(i);
      if (c === 0x2e) {
        const len = name.length - i - 1;
        for (let x = fmix(h) & mask; slots[x]; x = (x + 1) & mask) {
          const a = off[slots[x] - 1];
          if (off[slots[x]] - a !== len) continue;
          let same = true;
          for (let j = 0; j < len && same; j++) same = names[a + j] === name.charCodeAt(i + 1 + j);
          if (same) return true;
        }
      }
      h = Math.imul(h ^ c, 0x01000193);
    }
    return false;
  };
}

/** The list's lines as [start, end) offsets into its bytes. */
function linesOf(bytes: Uint8Array): [number, number][] {
  const lines: [number, number][] = [];
  for (let s = 0, i = bytes.indexOf(10); i >= 0; s = i + 1, i = bytes.indexOf(10, s)) {
    lines.push([s, i]);
  }
  return lines;
}

/** The names packed into one array in `lines`' order, with their offsets. */
function pack(bytes: Uint8Array, lines: [number, number][]): [Uint8Array, Uint32Array] {
  const packed = new Uint8Array(bytes.length);
  const off = new Uint32Array(lines.length + 1);
  let p = 0;
  for (let i = 0; i < lines.length; i++) {
    const [s, e] = lines[i];
    off[i] = p;
    packed.set(bytes.subarray(s, e), p);
    p += e - s;
  }
  off[lines.length] = p;
  return [packed.slice(0, p), off];
}

function byBytes(bytes: Uint8Array): (a: [number, number], b: [number, number]) => number {
  return (a, b) => {
    const la = a[1] - a[0], lb = b[1] - b[0];
    for (let i = 0; i < Math.min(la, lb); i++) {
      const d = bytes[a[0] + i] - bytes[b[0] + i];
      if (d) return d;
    }
    return la - lb;
  };
}

function buildSet(bytes: Uint8Array, lines: [number, number][]): Set<string> {
  const decoder = new TextDecoder();
  const set = new Set<string>();
  for (const [s, e] of lines) set.add(decoder.decode(bytes.subarray(s, e)));
  return set;
}

function setLookup(set: Set<string>): (name: string) => boolean {
  return (name) => {
    for (let k = 0;;) {
      if (set.has(k === 0 ? name : name.slice(k))) return true;
      const dot = name.indexOf(".", k);
      if (dot < 0) return false;
      k = dot + 1;
    }
  };
}

function buildSlots(bytes: Uint8Array, lines: [number, number][]): [Uint32Array, number] {
  let cap = 1;
  while (cap < lines.length / 0.6) cap <<= 1;
  const mask = cap - 1;
  const slots = new Uint32Array(cap);
  for (let i = 0; i < lines.length; i++) {
    const [s, e] = lines[i];
    let h = 0x811c9dc5;
    for (let j = e - 1; j >= s; j--) h = Math.imul(h ^ bytes[j], 0x01000193);
    let x = fmix(h) & mask;
    while (slots[x]) x = (x + 1) & mask;
    slots[x] = i + 1;
  }
  return [slots, mask];
}

type TrieNode = Map<string, TrieNode> & { end?: boolean };

function buildTrie(bytes: Uint8Array, lines: [number, number][]): TrieNode {
  const root: TrieNode = new Map();
  const decoder = new TextDecoder();
  for (const [s, e] of lines) {
    const labels = decoder.decode(bytes.subarray(s, e)).split(".");
    let node = root;
    for (let k = labels.length - 1; k >= 0; k--) {
      let next = node.get(labels[k]);
      if (!next) node.set(labels[k], next = new Map());
      node = next;
    }
    node.end = true;
  }
  return root;
}

function trieLookup(root: TrieNode): (name: string) => boolean {
  return (name) => {
    const labels = name.split(".");
    let node: TrieNode | undefined = root;
    for (let k = labels.length - 1; k >= 0 && node; k--) {
      node = node.get(labels[k]);
      if (node?.end) return true;
    }
    return false;
  };
}

/**
 * Builds one string-keyed candidate from the list's text; returns its lookup over presentation
 * names. Only the structure outlives the call (no closure keeps the text's bytes).
 */
function build(
  candidate: Exclude<Candidate, "fingerprint">,
  text: string,
): (name: string) => boolean {
  const bytes = new TextEncoder().encode(text);
  const lines = linesOf(bytes);
  switch (candidate) {
    case "set":
      return setLookup(buildSet(bytes, lines));
    case "sorted": {
      lines.sort(byBytes(bytes));
      const [names, off] = pack(bytes, lines);
      return sortedLookup(names, off, lines.length);
    }
    case "exact": {
      const [slots, mask] = buildSlots(bytes, lines);
      const [names, off] = pack(bytes, lines);
      return exactLookup(names, off, slots, mask);
    }
    case "trie":
      return trieLookup(buildTrie(bytes, lines));
  }
}

/** Measures one candidate in this process. */
async function measure(candidate: Candidate, names: number): Promise<Figures> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --v8-flags=--expose-gc");
  let text = [...generatedDomains(names, 1)].join("\n") + "\n";
  const listed = [...generatedDomains(Math.min(names, 100_000), 1)];
  const probeNames: string[] = [];
  let i = 0;
  for (const other of generatedDomains(100_000, 99)) {
    probeNames.push(i % 2 === 0 ? `cdn.x.${listed[i % listed.length]}` : `www.${other}`);
    i++;
  }
  const textBytes = text.length; // one byte per character: a one-byte string
  gc();
  const mem = () => {
    const m = Deno.memoryUsage();
    return m.heapUsed + m.external;
  };
  // The probes in the form each structure takes, made before the clock starts.
  const encoded = probeNames.map((n) => encodeName(n));
  const wire = new Uint8Array(encoded.reduce((n, e) => n + e.length, 0));
  const offsets: number[] = [];
  let at = 0;
  for (const e of encoded) {
    offsets.push(at);
    wire.set(e, at);
    at += e.length;
  }
  encoded.length = 0;
  gc();
  gc();
  const before = mem();
  const t0 = performance.now();
  let lookup: () => number;
  if (candidate === "fingerprint") {
    const hasher = new NameHasher();
    const policy = new FilterPolicy({
      hasher,
      blocklists: [{ name: "l", set: parseList(text, hasher).set }],
    });
    lookup = () => {
      let hits = 0;
      for (const o of offsets) if (policy.check(wire, o)) hits++;
      return hits;
    };
  } else {
    const has = build(candidate, text);
    lookup = () => {
      let hits = 0;
      for (const n of probeNames) if (has(n)) hits++;
      return hits;
    };
  }
  const buildMs = performance.now() - t0;
  text = "";
  await new Promise((r) => setTimeout(r, 100));
  gc();
  gc();
  const memoryMb = (mem() - before + textBytes) / 1048576;
  if (lookup() < probeNames.length / 2) throw new Error(`${candidate}: too few hits`);
  const passes = 5;
  const t1 = performance.now();
  for (let r = 0; r < passes; r++) lookup();
  const lookupNs = ((performance.now() - t1) * 1e6) / (passes * probeNames.length);
  return { candidate, buildMs, memoryMb, lookupNs };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: { names: { type: "string", default: "1000000" }, candidate: { type: "string" } },
  });
  const names = Number(values.names);
  if (values.candidate) {
    console.log(JSON.stringify(await measure(values.candidate as Candidate, names)));
  } else {
    const rows: string[][] = [];
    for (const candidate of CANDIDATES) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "--v8-flags=--expose-gc",
          new URL(import.meta.url).pathname,
          "--candidate",
          candidate,
          "--names",
          String(names),
        ],
        stderr: "inherit",
      }).output();
      const f = JSON.parse(new TextDecoder().decode(out.stdout)) as Figures;
      rows.push([
        f.candidate,
        f.buildMs.toFixed(0),
        f.memoryMb.toFixed(1),
        f.lookupNs.toFixed(0),
      ]);
      console.error(`${candidate}: done`);
    }
    console.log(
      `${names} names, ${Deno.version.deno}\n\n` +
        markdownTable(["structure", "build ms", "memory MB", "lookup ns"], rows),
    );
  }
}
