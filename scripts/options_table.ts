/**
 * Prints the configuration table (markdown) from the option list, or with `--write` replaces
 * the block between `<!-- options:start -->` and `<!-- options:end -->` in README.md, so the
 * README never drifts from `--help`.
 *
 * Usage: deno run --allow-read --allow-write scripts/options_table.ts [--write]
 *
 * @module
 */
import { envName, flagSyntax, OPTIONS } from "../src/config/options.ts";

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
    const path = new URL("../README.md", import.meta.url);
    const readme = Deno.readTextFileSync(path);
    const start = "<!-- options:start -->";
    const end = "<!-- options:end -->";
    const a = readme.indexOf(start);
    const b = readme.indexOf(end);
    if (a < 0 || b < a) throw new Error("README.md has no options block");
    Deno.writeTextFileSync(
      path,
      readme.slice(0, a + start.length) + "\n" + optionsTable() + "\n" + readme.slice(b),
    );
  } else {
    console.log(optionsTable());
  }
}
