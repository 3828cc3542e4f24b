/**
 * Takes a screenshot of a running bridge's status page, so a person can look at it:
 *
 *     deno run -A scripts/status_screenshot.ts [--url http://127.0.0.1:9153/status]
 *       [--out status.png] [--wait 15]
 *
 * Opens the page in headless Chromium (Debian's `chromium`), lets it poll `/metrics` for `--wait`
 * seconds (its charts fill as it samples), and writes the PNG. Run the bridge with
 * `--metrics-listen` (or `--doh-metrics` and the DoH face's URL) and some traffic first.
 *
 * @module
 */
import { startChromium } from "./chromium.ts";

function option(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}

if (import.meta.main) {
  const url = option("url", "http://127.0.0.1:9153/status");
  const out = option("out", "status.png");
  const waitS = Number(option("wait", "15"));
  const browser = await startChromium();
  try {
    const page = await browser.open(url, 1280, 860);
    await new Promise((r) => setTimeout(r, waitS * 1000));
    const samples = await page.evaluate<string | null>(
      "document.body && document.body.getAttribute('data-samples')",
    );
    Deno.writeFileSync(out, await page.screenshot(true));
    console.log(`${out}: ${url} after ${waitS} s (${samples ?? 0} samples)`);
  } finally {
    await browser.close();
  }
}
