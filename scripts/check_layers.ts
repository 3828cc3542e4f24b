/**
 * Lists the imports between the folders of `src/` and fails when any folders reach each other
 * in a loop: the layers must point one way (see `docs/architecture.md`). Prints the folders
 * from the bottom layer up, each with the folders it imports.
 *
 * Usage: deno run --allow-read scripts/check_layers.ts [--quiet] [ROOT]
 *
 * Exits 1 on a loop, naming each loop and the files behind its arrows.
 *
 * @module
 */

/** One import from a file of one folder into another folder. */
export interface FolderImport {
  readonly from: string;
  readonly to: string;
  readonly file: string;
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*"(\.{1,2}\/[^"]+)"/g;
const DYNAMIC = /import\(\s*"(\.{1,2}\/[^"]+)"\s*\)/g;

/** The folder directly under `src/` that a path (relative to the root) lies in, if any. */
function folderOf(path: string): string | undefined {
  const parts = path.split("/");
  return parts[0] === "src" && parts.length > 2 ? parts[1] : undefined;
}

/** Resolves `spec` against the folder of `file` (both relative, `/`-separated). */
function resolve(file: string, spec: string): string {
  const parts = file.split("/").slice(0, -1);
  for (const p of spec.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== ".") parts.push(p);
  }
  return parts.join("/");
}

/** Every import in `source` (the text of `file`) that crosses from its folder into another. */
export function crossingImports(file: string, source: string): FolderImport[] {
  const from = folderOf(file);
  if (!from) return [];
  const out: FolderImport[] = [];
  for (const pattern of [IMPORT, DYNAMIC]) {
    for (const m of source.matchAll(pattern)) {
      const to = folderOf(resolve(file, m[1]));
      if (to && to !== from) out.push({ from, to, file });
    }
  }
  return out;
}

/**
 * The loops among the folders: each strongly connected set of two or more folders (Tarjan's
 * algorithm), its members sorted.
 *
 * @example
 * ```ts
 * loops(new Map([["a", new Set(["b"])], ["b", new Set(["a"])]])); // [["a", "b"]]
 * ```
 */
export function loops(edges: ReadonlyMap<string, ReadonlySet<string>>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[][] = [];
  let next = 0;
  const nodes = new Set([...edges.keys(), ...[...edges.values()].flatMap((s) => [...s])]);
  const visit = (v: string) => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const set: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        set.push(w);
      } while (w !== v);
      if (set.length > 1) found.push(set.sort());
    }
  };
  for (const v of [...nodes].sort()) if (!index.has(v)) visit(v);
  return found;
}

/** The folders in layer order (each after everything it imports), when there is no loop. */
export function layerOrder(edges: ReadonlyMap<string, ReadonlySet<string>>): string[] {
  const nodes = [...new Set([...edges.keys(), ...[...edges.values()].flatMap((s) => [...s])])]
    .sort();
  const depth = new Map<string, number>();
  const depthOf = (v: string, seen: Set<string>): number => {
    const known = depth.get(v);
    if (known !== undefined) return known;
    if (seen.has(v)) return 0; // a loop: reported elsewhere
    seen.add(v);
    let d = 0;
    for (const w of edges.get(v) ?? []) d = Math.max(d, depthOf(w, seen) + 1);
    depth.set(v, d);
    return d;
  };
  for (const v of nodes) depthOf(v, new Set());
  return nodes.sort((a, b) => depth.get(a)! - depth.get(b)! || a.localeCompare(b));
}

async function* tsFiles(dir: string): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(dir)) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) yield* tsFiles(path);
    else if (entry.isFile && entry.name.endsWith(".ts")) yield path;
  }
}

if (import.meta.main) {
  const quiet = Deno.args.includes("--quiet");
  const root = Deno.args.find((a) => !a.startsWith("--")) ?? ".";
  const imports: FolderImport[] = [];
  for await (const path of tsFiles(`${root}/src`)) {
    const file = path.slice(root.length + 1);
    imports.push(...crossingImports(file, await Deno.readTextFile(path)));
  }
  const edges = new Map<string, Set<string>>();
  for (const i of imports) {
    if (!edges.has(i.from)) edges.set(i.from, new Set());
    edges.get(i.from)!.add(i.to);
  }
  const found = loops(edges);
  if (!quiet) {
    for (const folder of layerOrder(edges)) {
      console.log(`src/${folder} -> ${[...(edges.get(folder) ?? [])].sort().join(", ") || "-"}`);
    }
  }
  if (found.length > 0) {
    for (const set of found) {
      console.error(`layers: a loop among src/{${set.join(",")}}:`);
      const arrows = new Set(
        imports.filter((i) => set.includes(i.from) && set.includes(i.to))
          .map((i) => `  ${i.file} -> src/${i.to}`),
      );
      for (const arrow of [...arrows].sort()) console.error(arrow);
    }
    Deno.exit(1);
  }
  if (!quiet) console.log("layers: no loop among the folders of src/");
}
