/**
 * Prints the configuration table (markdown) from the option list, or with `--write` replaces
 * the block between `<!-- options:start -->` and `<!-- options:end -->` in
 * `docs/configuration.md`, so the documentation never drifts from `--help`
 * (`test/scripts/options_table.test.ts` fails while they differ). With `--allow-run` the file
 * is then formatted (`deno fmt`); without, run `deno fmt` yourself.
 *
 * Usage: deno run --allow-read --allow-write [--allow-run] scripts/options_table.ts [--write]
 *
 * @module
 */
import { envName, flagSyntax, OPTIONS } from "../src/config/options.ts";
import { OPTIONS_BLOCK, writeBlock } from "./doc_block.ts";

/** Where `--write` puts the table. */
export const CONFIGURATION_DOC = new URL("../docs/configuration.md", import.meta.url);

/** The markdown table of every option. */
export function optionsTable(): string {
  const rows = [
    "| flag | config key | environment | default | meaning |",
    "| --- | --- | --- | --- | --- |",
  ];
  for (const o of OPTIONS) {
    const flag = flagSyntax(o);
    const choices = o.choices ? ` (${o.choices.join(", ")})` : "";
    const key = o.name === "config" ? "" : `\`${o.name}\``;
    rows.push(
      `| \`${flag.replaceAll("|", "\\|")}\` | ${key} | \`${envName(o.name)}\` | ${
        o.default ? `\`${o.default}\`` : ""
      } | ${o.help.replaceAll("|", "\\|")}${choices} |`,
    );
  }
  return rows.join("\n");
}

if (import.meta.main) {
  if (Deno.args.includes("--write")) {
    const format = Deno.permissions.querySync({ name: "run" }).state === "granted";
    await writeBlock(CONFIGURATION_DOC, OPTIONS_BLOCK, optionsTable(), format);
    console.error(
      `docs/configuration.md: option table written${format ? "" : "; now run deno fmt"}`,
    );
  } else {
    console.log(optionsTable());
  }
}
