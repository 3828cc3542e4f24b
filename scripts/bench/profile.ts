/**
 * Summaries of where the bridge spends its time: self time per function and per source file
 * from a V8 `.cpuprofile` (written by `deno run --cpu-prof`), and per thread / per binary from
 * `perf record` (the Rust side of Deno is invisible to the V8 profiler).
 *
 * @module
 */
import { markdownTable } from "./markdown.ts";

interface CpuProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
    columnNumber: number;
    scriptId?: string | number;
  };
  hitCount?: number;
}

interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

/** Self time of one function (or one file), in ms and as a share of the profile. */
export interface SelfTime {
  name: string;
  ms: number;
  share: number;
}

/** A script URL as the profiles show it: from `src/` or `node_modules/` on, else the path. */
export function shortUrl(url: string): string {
  if (!url) return "";
  const src = url.indexOf("/src/");
  if (src >= 0) return url.slice(src + 1);
  const nm = url.indexOf("/node_modules/");
  if (nm >= 0) return url.slice(nm + 1);
  return url.replace(/^file:\/\//, "");
}

/**
 * Self time per function and per file in a V8 CPU profile, largest first. Time between two
 * samples is charged to the first one.
 */
export function cpuProfileSelfTimes(
  profile: CpuProfile,
): { functions: SelfTime[]; files: SelfTime[]; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  if (samples.length > 0 && deltas.length === samples.length) {
    for (let i = 0; i < samples.length; i++) {
      const dt = i + 1 < deltas.length ? deltas[i + 1] : 0;
      selfUs.set(samples[i], (selfUs.get(samples[i]) ?? 0) + Math.max(0, dt));
    }
  } else {
    const hits = profile.nodes.reduce((a, n) => a + (n.hitCount ?? 0), 0) || 1;
    const span = profile.endTime - profile.startTime;
    for (const n of profile.nodes) selfUs.set(n.id, ((n.hitCount ?? 0) / hits) * span);
  }
  const totalUs = [...selfUs.values()].reduce((a, b) => a + b, 0) || 1;
  const fns = new Map<string, number>();
  const files = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const f = byId.get(id)?.callFrame;
    if (!f) continue;
    const file = shortUrl(f.url);
    // V8's own pseudo-frames are "(idle)", "(program)", "(garbage collector)"; other frames
    // without a script are natives (Deno ops, V8 builtins called from JS).
    const pseudo = /^\(.*\)$/.test(f.functionName);
    const native = !file && !pseudo;
    const fn = native
      ? `${f.functionName || "(anonymous)"} [native]`
      : `${f.functionName || "(anonymous)"}${file ? ` ${file}:${f.lineNumber + 1}` : ""}`;
    fns.set(fn, (fns.get(fn) ?? 0) + us);
    const fileKey = file || (native ? "[native: ops and builtins]" : f.functionName);
    files.set(fileKey, (files.get(fileKey) ?? 0) + us);
  }
  const toList = (m: Map<string, number>) =>
    [...m].map(([name, us]) => ({ name, ms: us / 1000, share: us / totalUs }))
      .sort((a, b) => b.ms - a.ms);
  return { functions: toList(fns), files: toList(files), totalMs: totalUs / 1000 };
}

/** The layer a source file belongs to: the project, Deno's Node compatibility, and so on. */
export function layerOf(file: string): string {
  if (file.startsWith("src/")) return "dotbridge src/";
  if (file.startsWith("ext:deno_node") || file.startsWith("node:")) return "Deno node: compat (JS)";
  if (file.startsWith("ext:")) return "Deno core/web (JS)";
  if (file.startsWith("node_modules/")) return "npm packages";
  if (file.startsWith("[native")) return "native ops and builtins";
  return file; // (garbage collector), (idle), (program)
}

/** Self time summed per {@linkcode layerOf}, largest first. */
export function layerTimes(files: SelfTime[]): SelfTime[] {
  const m = new Map<string, SelfTime>();
  for (const f of files) {
    const key = layerOf(f.name);
    const t = m.get(key) ?? { name: key, ms: 0, share: 0 };
    t.ms += f.ms;
    t.share += f.share;
    m.set(key, t);
  }
  return [...m.values()].sort((a, b) => b.ms - a.ms);
}

/** Markdown for the layers, and the top `n` functions and files, of a CPU profile. */
export function renderCpuProfile(profile: CpuProfile, n = 15): string {
  const { functions, files, totalMs } = cpuProfileSelfTimes(profile);
  const row = (s: SelfTime) => [s.name.replace(/\|/g, "\\|"), s.ms.toFixed(0), pct(s.share)];
  const seconds = (totalMs / 1000).toFixed(1);
  return [
    `V8 profile of the bridge's JS thread (${seconds} s sampled); "(idle)" is time outside JS, ` +
    "which includes the Rust event loop and TLS. By layer:",
    "",
    markdownTable(["layer", "self ms", "share"], layerTimes(files).map(row)),
    "",
    "Top self time by function:",
    "",
    markdownTable(["function", "self ms", "share"], functions.slice(0, n).map(row)),
    "",
    "By file:",
    "",
    markdownTable(["file", "self ms", "share"], files.slice(0, n).map(row)),
  ].join("\n");
}

function pct(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}

/**
 * Parses `perf report --stdio` lines (`  12.34%  comm  dso  [.] symbol`) into rows of
 * [percent, ...keys], skipping comments.
 */
export function parsePerfReport(text: string): { pct: number; keys: string[] }[] {
  const rows: { pct: number; keys: string[] }[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s+([\d.]+)%\s+(.*\S)\s*$/.exec(line);
    if (!m) continue;
    rows.push({ pct: Number(m[1]), keys: m[2].split(/\s{2,}/) });
  }
  return rows;
}
