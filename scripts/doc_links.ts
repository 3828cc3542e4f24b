/**
 * Checks that every reference to the documentation resolves, so the docs cannot rot quietly:
 *
 * - in markdown files, every relative link (`[text](path)`, `[text](path#anchor)`,
 *   `[text](#anchor)`) names a file or folder that exists and, for a markdown file, a heading
 *   it has (anchors as GitHub makes them);
 * - in every file, each mention of `README.md` or `docs/NAME.md`, with or without `#anchor`,
 *   resolves the same way (from the repository root);
 * - nothing names a document this repository does not have (`PLATFORM-NOTES`), says "the
 *   README" without the file name (a section of it cannot be checked), or, in markdown, points
 *   at a section by quoting its title (`see "Design notes"`) instead of linking it.
 *
 * Usage: deno run --allow-read scripts/doc_links.ts [ROOT]   (exits 1 listing the problems)
 *
 * @module
 */

/** One reference that does not resolve. */
export interface DocProblem {
  /** The file holding the reference, relative to the root. */
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

/** Files and folders searched, relative to the root (folders recursively). */
const SEARCHED = [
  "README.md",
  "deno.json",
  "wrangler.toml",
  ".ci",
  "docs",
  "scripts",
  "src",
  "test",
];

/** Files that spell out the patterns below and so would match them. */
const SELF = new Set(["scripts/doc_links.ts", "test/scripts/doc_links.test.ts"]);

/** Document names that are not (or no longer) in this repository, and where the text went. */
const RETIRED: Record<string, string> = { "PLATFORM-NOTES": "docs/platform-notes.md" };

const README_WORD = /\bREADME\b(?!\.md)/g;
const DOC_MENTION = /(?<![\w/.-])(README\.md|docs\/[\w.-]+\.md)(#[\w-]+)?/g;
const MD_LINK = /\]\(([^()\s]+)(?:\s+"[^"]*")?\)/g;
const QUOTED_SECTION = /\bsee "[A-Z][^"]*"/g;

/**
 * The anchor GitHub gives a heading: lower case, inline code marks and punctuation dropped
 * (letters, digits, `_`, `-` and spaces kept), spaces as `-`.
 *
 * @example
 * ```ts
 * slug("A fleet: N bridges behind HAProxy"); // "a-fleet-n-bridges-behind-haproxy"
 * slug("DoT face on `node:tls`"); // "dot-face-on-nodetls"
 * ```
 */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, "$1")
    .toLowerCase()
    .replace(/[^\p{L}\p{M}\p{N}_\- ]/gu, "")
    .replaceAll(" ", "-");
}

/** Lines outside fenced code blocks, with their line numbers (1-based). */
function proseLines(markdown: string): { text: string; line: number }[] {
  const out: { text: string; line: number }[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((text, i) => {
    const f = /^\s*(`{3,}|~{3,})/.exec(text)?.[1];
    if (f && (fence === undefined || f.startsWith(fence))) {
      fence = fence === undefined ? f : undefined;
      return;
    }
    if (fence === undefined) out.push({ text, line: i + 1 });
  });
  return out;
}

/**
 * The anchors of a markdown document's headings (outside code blocks); a repeated heading gets
 * `-1`, `-2`, ... as on GitHub.
 */
export function headingAnchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const m = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(text);
    if (!m) continue;
    const base = slug(m[1]);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** The relative link targets of a markdown document (outside code), with their lines. */
export function markdownLinks(markdown: string): { target: string; line: number }[] {
  const out: { target: string; line: number }[] = [];
  for (const { text, line } of proseLines(markdown)) {
    const prose = text.replace(/`[^`]*`/g, "");
    for (const m of prose.matchAll(MD_LINK)) {
      if (!/^[a-z][a-z0-9+.-]*:/i.test(m[1])) out.push({ target: m[1], line });
    }
  }
  return out;
}

/** Joins a relative path onto a folder (both `/`-separated, relative to the root). */
function join(dir: string, path: string): string {
  const parts = dir === "" ? [] : dir.split("/");
  for (const p of path.split("/")) {
    if (p === "..") parts.pop();
    else if (p !== "." && p !== "") parts.push(p);
  }
  return parts.join("/");
}

/** Reads the repository's files for the checks. */
export interface RepoFiles {
  /** The text of a file, or undefined when it is not a readable text file. */
  text(path: string): string | undefined;
  /** True when a file or folder exists. */
  exists(path: string): boolean;
  /** Every file under the searched places. */
  list(): string[];
}

/** {@linkcode RepoFiles} over a folder on disk. */
export function filesOnDisk(root: string): RepoFiles {
  const at = (p: string) => `${root}/${p}`;
  const walk = (path: string, out: string[]) => {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(at(path));
    } catch {
      return;
    }
    if (info.isFile) out.push(path);
    if (!info.isDirectory) return;
    for (const e of Deno.readDirSync(at(path))) {
      if (e.name === "node_modules" || e.name.startsWith(".")) continue;
      walk(`${path}/${e.name}`, out);
    }
  };
  return {
    text(path) {
      try {
        const text = Deno.readTextFileSync(at(path));
        return text.includes("\0") ? undefined : text;
      } catch {
        return undefined;
      }
    },
    exists(path) {
      try {
        Deno.statSync(at(path));
        return true;
      } catch {
        return false;
      }
    },
    list() {
      const out: string[] = [];
      for (const p of SEARCHED) walk(p, out);
      return out;
    },
  };
}

/**
 * Every reference in the repository that does not resolve.
 *
 * @example
 * ```ts
 * checkDocLinks(filesOnDisk(".")); // [] when every link and mention resolves
 * ```
 */
export function checkDocLinks(files: RepoFiles): DocProblem[] {
  const problems: DocProblem[] = [];
  const anchors = new Map<string, Set<string> | undefined>();
  const anchorsOf = (path: string) => {
    if (!anchors.has(path)) {
      const text = files.text(path);
      anchors.set(path, text === undefined ? undefined : headingAnchors(text));
    }
    return anchors.get(path);
  };
  /** Why `path#anchor` (relative to the root) does not resolve, if it does not. */
  const unresolved = (path: string, anchor: string | undefined): string | undefined => {
    if (!files.exists(path)) return `${path} does not exist`;
    if (anchor === undefined || !path.endsWith(".md")) return undefined;
    return anchorsOf(path)?.has(anchor) ? undefined : `${path} has no heading #${anchor}`;
  };

  for (const file of files.list()) {
    if (SELF.has(file)) continue;
    const text = files.text(file);
    if (text === undefined) continue;
    const dir = file.includes("/") ? file.slice(0, file.lastIndexOf("/")) : "";
    const lineAt = (index: number) => text.slice(0, index).split("\n").length;
    const report = (line: number, message: string) => problems.push({ file, line, message });

    // In markdown, link targets are checked as links below (relative to the file), not here.
    const mentions = file.endsWith(".md")
      ? text.replace(MD_LINK, (m) => " ".repeat(m.length))
      : text;
    for (const m of mentions.matchAll(DOC_MENTION)) {
      const why = unresolved(m[1], m[2]?.slice(1));
      if (why) report(lineAt(m.index), `${m[0]}: ${why}`);
    }
    for (const m of text.matchAll(README_WORD)) {
      report(lineAt(m.index), 'says "README" without a file: name README.md (with #anchor)');
    }
    for (const [name, now] of Object.entries(RETIRED)) {
      for (const m of text.matchAll(new RegExp(`\\b${name}\\b`, "g"))) {
        report(lineAt(m.index), `${name} is not in this repository (see ${now})`);
      }
    }
    if (!file.endsWith(".md")) continue;
    for (const { target, line } of markdownLinks(text)) {
      const hash = target.indexOf("#");
      const path = hash < 0 ? target : target.slice(0, hash);
      const anchor = hash < 0 ? undefined : target.slice(hash + 1);
      const why = unresolved(path === "" ? file : join(dir, decodeURI(path)), anchor);
      if (why) report(line, `link (${target}): ${why}`);
    }
    for (const { text: prose, line } of proseLines(text)) {
      for (const m of prose.matchAll(QUOTED_SECTION)) {
        report(line, `${m[0]}: link the section instead of quoting its title`);
      }
    }
  }
  return problems;
}

if (import.meta.main) {
  const root = Deno.args[0] ?? new URL("..", import.meta.url).pathname;
  const problems = checkDocLinks(filesOnDisk(root.replace(/\/$/, "")));
  for (const p of problems) console.error(`${p.file}:${p.line}: ${p.message}`);
  if (problems.length > 0) Deno.exit(1);
  console.error("doc links: every reference resolves");
}
