import { describe, expect, it } from "vitest";
import { BENCH_BLOCK, blockOf, replaceBlock } from "../../scripts/doc_block.ts";

describe("generated blocks in the docs", () => {
  const doc =
    "# Benchmarks\n\nintro\n\n<!-- bench:start -->\n\nold\n\n<!-- bench:end -->\n\nafter\n";

  it("replaces what lies between the markers and keeps the rest", () => {
    const out = replaceBlock(doc, BENCH_BLOCK, "\n### new run\n", "docs/benchmarks.md");
    expect(out).toBe(
      "# Benchmarks\n\nintro\n\n<!-- bench:start -->\n### new run\n<!-- bench:end -->\n\nafter\n",
    );
    expect(blockOf(out, BENCH_BLOCK)).toBe("### new run");
  });

  it.each([
    ["no markers", "# Benchmarks\n"],
    ["the end first", "<!-- bench:end -->\n<!-- bench:start -->\n"],
  ])("refuses a file with %s, naming it", (_, text) => {
    expect(() => replaceBlock(text, BENCH_BLOCK, "x", "docs/benchmarks.md")).toThrow(
      'docs/benchmarks.md needs "<!-- bench:start -->" followed by "<!-- bench:end -->"',
    );
    expect(blockOf(text, BENCH_BLOCK)).toBeUndefined();
  });
});
