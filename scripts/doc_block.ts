/**
 * Generated blocks in the markdown docs: the text between a start and an end marker (HTML
 * comments, invisible when rendered) is replaced, the rest of the file kept. The option table in
 * `docs/configuration.md` and the benchmark results in `docs/benchmarks.md` are such blocks.
 *
 * @module
 */

/** The two markers around a generated block. */
export interface BlockMarkers {
  readonly start: string;
  readonly end: string;
}

/** The block `scripts/options_table.ts --write` fills in `docs/configuration.md`. */
export const OPTIONS_BLOCK: BlockMarkers = {
  start: "<!-- options:start -->",
  end: "<!-- options:end -->",
};

/** The block `deno task bench --write-docs` fills in `docs/benchmarks.md`. */
export const BENCH_BLOCK: BlockMarkers = {
  start: "<!-- bench:start -->",
  end: "<!-- bench:end -->",
};

/**
 * `text` with what lies between the markers replaced by `block` (trimmed, on lines of its own).
 *
 * @param file names the file in the error
 * @throws {Error} when the markers are missing or out of order
 * @example
 * ```ts
 * replaceBlock("a\n<!-- bench:start -->\nold\n<!-- bench:end -->\n", BENCH_BLOCK, "new", "x.md");
 * // "a\n<!-- bench:start -->\nnew\n<!-- bench:end -->\n"
 * ```
 */
export function replaceBlock(
  text: string,
  markers: BlockMarkers,
  block: string,
  file: string,
): string {
  const start = text.indexOf(markers.start);
  const end = text.indexOf(markers.end);
  if (start < 0 || end < 0 || end < start) {
    throw new Error(`${file} needs "${markers.start}" followed by "${markers.end}"`);
  }
  return text.slice(0, start + markers.start.length) + "\n" + block.trim() + "\n" +
    text.slice(end);
}

/** The text between the markers, trimmed; undefined when `text` has no such block. */
export function blockOf(text: string, markers: BlockMarkers): string | undefined {
  const start = text.indexOf(markers.start);
  const end = text.indexOf(markers.end);
  if (start < 0 || end < start) return undefined;
  return text.slice(start + markers.start.length, end).trim();
}

/**
 * Replaces the block in the file at `path` (a path or file URL) and formats the file with
 * `deno fmt` when `format` is set (which needs `--allow-run`).
 */
export async function writeBlock(
  path: string | URL,
  markers: BlockMarkers,
  block: string,
  format = false,
): Promise<void> {
  const file = path instanceof URL ? path.pathname : path;
  Deno.writeTextFileSync(path, replaceBlock(Deno.readTextFileSync(path), markers, block, file));
  if (!format) return;
  const fmt = await new Deno.Command(Deno.execPath(), {
    args: ["fmt", "--quiet", file],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!fmt.success) {
    throw new Error(`deno fmt ${file}: ${new TextDecoder().decode(fmt.stderr).trim()}`);
  }
}
