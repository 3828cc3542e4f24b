/**
 * The commands in README.md and in docs/ work as written, as far as they can be tried offline:
 *
 * - every bridge command line (`dotbridge ...`, `deno task serve ...`, `deno run ...
 *   src/deno/main.ts ...`, with its `VAR=value` prefixes) is accepted by the real parser, its
 *   placeholders (`<pin>`, `<URL>`, ...) filled with values of the right shape;
 * - every `deno task NAME` names a task of deno.json;
 * - every JSON block that is a configuration file or a tenants file parses.
 *
 * What needs a network, a real host or root (kdig at 203.0.113.10, systemd, Docker, wrangler
 * deploy) is covered where it can be: the quick start and the banner's commands by
 * test/deno/cli.test.ts, the clients by test/interop/, the installer by
 * test/scripts/install_service.test.ts, the Dockerfile by test/scripts/dockerfile.test.ts.
 */
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/parse.ts";
import { parseTenants } from "../../src/config/tenants.ts";
import { OPTIONS } from "../../src/config/options.ts";

const OPTION_NAMES = new Set(OPTIONS.map((o) => o.name));

const ROOT = new URL("../../", import.meta.url).pathname;
const TASKS = Object.keys(JSON.parse(Deno.readTextFileSync(`${ROOT}deno.json`)).tasks);

/** Markdown files with commands: README.md and every document in docs/. */
function documents(): string[] {
  const docs = [...Deno.readDirSync(`${ROOT}docs`)]
    .filter((e) => e.isFile && e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`)
    .sort();
  return ["README.md", ...docs];
}

/** Fenced code blocks of the given languages, with where each starts. */
function blocks(file: string, langs: readonly string[]): { line: number; text: string }[] {
  const lines = Deno.readTextFileSync(`${ROOT}${file}`).split("\n");
  const out: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^```(\w*)\s*$/.exec(lines[i]);
    if (!m) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith("```"));
    if (langs.includes(m[1])) out.push({ line: i + 1, text: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return out;
}

/** Placeholders the documents use, and values of the right shape for the parser. */
const PLACEHOLDERS: [RegExp, string][] = [
  [
    /<pin>|<pin printed at start-up>|<base64 sha256 SPKI>/g,
    "uZk0euJyf4UEhL48UOs37dKNMCJBrmjJRZnuUvVjVYk=",
  ],
  [/<URL>/g, "https://dns.example/dns-query"],
  [/"?\$\(openssl rand -base64 32\)"?/g, "c2VjcmV0LW9mLWF0LWxlYXN0LTMyLWJ5dGVzLWxvbmcK"],
];

/** Shell words of one command (quotes removed; `$(...)` kept as one word). */
function words(command: string): string[] {
  const out: string[] = [];
  let word = "";
  let quote: string | undefined;
  let any = false;
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (quote) {
      if (c === quote) quote = undefined;
      else word += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      any = true;
    } else if (/\s/.test(c)) {
      if (word || any) out.push(word);
      word = "";
      any = false;
    } else word += c;
  }
  if (word || any) out.push(word);
  return out;
}

/** The commands of a shell block: continuation lines joined, comments and prompts dropped. */
function commands(block: string): string[] {
  const joined = block.replace(/\\\n\s*/g, " ");
  const out: string[] = [];
  for (let line of joined.split("\n")) {
    line = line.replace(/^\$ /, "").replace(/(^|\s)#.*$/, "").trim();
    if (!line) continue;
    for (const PART of line.split(/&&|;/)) {
      const part = PART.trim().replace(/^\(+|\)+$/g, "").trim();
      if (part) out.push(part);
    }
  }
  return out;
}

interface BridgeCommand {
  where: string;
  text: string;
  env: Record<string, string>;
  args: string[];
}

/** Every bridge invocation and `deno task` name in the documents. */
function collect(): { bridge: BridgeCommand[]; tasks: { where: string; name: string }[] } {
  const bridge: BridgeCommand[] = [];
  const tasks: { where: string; name: string }[] = [];
  for (const file of documents()) {
    for (const b of blocks(file, ["sh", "bash", "console", "shell"])) {
      for (let text of commands(b.text)) {
        for (const [pattern, value] of PLACEHOLDERS) text = text.replace(pattern, value);
        const where = `${file}:${b.line}`;
        const w = words(text);
        const env: Record<string, string> = {};
        while (w.length > 0 && /^[A-Z_][A-Z0-9_]*=/.test(w[0])) {
          const [name, ...value] = w.shift()!.split("=");
          env[name] = value.join("=");
        }
        if (w[0] === "sudo") w.shift();
        if (w[0] === "deno" && w[1] === "task") {
          tasks.push({ where, name: w[2] });
          if (w[2] === "serve") bridge.push({ where, text, env, args: w.slice(3) });
        } else if (w[0] === "dotbridge") {
          bridge.push({ where, text, env, args: w.slice(1) });
        } else if (w[0] === "deno" && w[1] === "run" && w.includes("src/deno/main.ts")) {
          bridge.push({ where, text, env, args: w.slice(w.indexOf("src/deno/main.ts") + 1) });
        }
      }
    }
  }
  return { bridge, tasks };
}

const found = collect();

describe("the commands in README.md and docs/", () => {
  it("find bridge commands and tasks to check (the extraction works)", () => {
    expect(found.bridge.length).toBeGreaterThan(10);
    expect(found.tasks.some((t) => t.name === "serve")).toBe(true);
  });

  it("name only tasks that deno.json has", () => {
    const missing = found.tasks.filter((t) => !TASKS.includes(t.name));
    expect(missing).toEqual([]);
  });

  for (const c of found.bridge) {
    it(`${c.where}: ${c.text.slice(0, 90)}`, () => {
      const files = (path: string) => {
        if (path.endsWith(".json")) return "{}";
        throw new Error(`${path}: not in this test`);
      };
      let problem = "";
      try {
        parseConfig({ args: c.args, env: c.env, readTextFile: files });
      } catch (e) {
        if (!(e instanceof ConfigError)) throw e;
        problem = e.message;
      }
      expect(problem).toBe("");
    });
  }

  it("hold JSON configuration and tenants files that parse", () => {
    const problems: string[] = [];
    let checked = 0;
    for (const file of documents()) {
      for (const b of blocks(file, ["json"])) {
        let data: unknown;
        try {
          data = JSON.parse(b.text);
        } catch {
          continue; // a JSON API answer or a fragment, not a file
        }
        if (typeof data !== "object" || data === null || Array.isArray(data)) continue;
        // A configuration file holds option names (a query log line, a JSON API answer do not:
        // at most a word that happens to be one).
        const keys = Object.keys(data);
        const isConfig = keys.filter((k) => OPTION_NAMES.has(k)).length * 2 >= keys.length;
        if (!("tenants" in data) && !isConfig) continue;
        const where = `${file}:${b.line}`;
        try {
          if ("tenants" in data) parseTenants(b.text, where);
          else parseConfig({ args: ["--config", where], readTextFile: () => b.text });
          checked++;
        } catch (e) {
          problems.push(`${where}: ${(e as Error).message}`);
        }
      }
    }
    expect(problems).toEqual([]);
    expect(checked).toBeGreaterThan(2);
  });
});
