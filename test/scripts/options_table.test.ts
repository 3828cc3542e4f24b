import { describe, expect, it } from "vitest";
import { blockOf, OPTIONS_BLOCK } from "../../scripts/doc_block.ts";
import { CONFIGURATION_DOC, optionsTable } from "../../scripts/options_table.ts";
import { OPTIONS } from "../../src/config/options.ts";

/** A markdown table's rows with the padding `deno fmt` adds taken out. */
function rows(table: string): string[] {
  return table.split("\n")
    .map((line) => line.trim().replace(/\s+/g, " ").replace(/-{3,}/g, "---"))
    .filter((line) => line.length > 0);
}

describe("the option table in docs/configuration.md", () => {
  const doc = Deno.readTextFileSync(CONFIGURATION_DOC);

  it("has one row per option, generated from the option list", () => {
    const block = blockOf(doc, OPTIONS_BLOCK);
    expect(block, "docs/configuration.md has no options block").toBeDefined();
    // If this fails: deno run --allow-read --allow-write scripts/options_table.ts --write
    expect(rows(block!)).toEqual(rows(optionsTable()));
    expect(rows(block!)).toHaveLength(OPTIONS.length + 2);
  });

  it("would notice a drift", () => {
    const drifted = optionsTable().replace("DoT listen address", "DoT address");
    expect(rows(drifted)).not.toEqual(rows(blockOf(doc, OPTIONS_BLOCK)!));
  });
});
