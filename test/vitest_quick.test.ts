/**
 * Keeps the quick run honest: every test file that starts a program other than Deno (through
 * the helpers that start clients, HAProxy, Redis or wrangler, or a `Deno.Command` of its own)
 * is in `NEEDS_TOOLS` of `vitest.quick.config.ts`, and every file listed there still exists and
 * still does.
 *
 * @module
 */
import { describe, expect, it } from "vitest";
import { NEEDS_TOOLS } from "./vitest.quick.config.ts";

const ROOT = new URL("../", import.meta.url);

/** Test files under `test/`, as paths from the repository root. */
function testFiles(dir = "test"): string[] {
  const out: string[] = [];
  for (const entry of Deno.readDirSync(new URL(dir, ROOT))) {
    const path = `${dir}/${entry.name}`;
    if (entry.isDirectory) out.push(...testFiles(path));
    else if (entry.name.endsWith(".test.ts")) out.push(path);
  }
  return out.sort();
}

/** The helpers in `test/support/` (and `scripts/chromium.ts`) that start another program. */
const TOOL_HELPERS =
  /from "\.\.\/(support\/(clients|haproxy|knot|openssl|redis_server|worker)|\.\.\/scripts\/chromium)\.ts"/;
/** A child process that is not Deno itself (`Deno.execPath()`: the bridge, a script). */
const OTHER_COMMAND = /new Deno\.Command\((?!\s*Deno\.execPath\(\))/;

function startsTools(path: string): boolean {
  const text = Deno.readTextFileSync(new URL(path, ROOT));
  return TOOL_HELPERS.test(text) || OTHER_COMMAND.test(text);
}

describe("the quick run (test/vitest.quick.config.ts)", () => {
  const files = testFiles();

  it("leaves out every test file that starts another program", () => {
    const missing = files.filter((f) => startsTools(f) && !(f in NEEDS_TOOLS));
    expect(missing).toEqual([]);
  });

  it("leaves out only files that exist and start another program", () => {
    const stale = Object.keys(NEEDS_TOOLS).filter((f) => !files.includes(f) || !startsTools(f));
    expect(stale).toEqual([]);
  });

  it("keeps most of the suite", () => {
    expect(files.length - Object.keys(NEEDS_TOOLS).length).toBeGreaterThan(files.length / 2);
  });
});
