/**
 * The Worker's page at `GET /`: the DoH endpoint, and why there is no DoT here.
 *
 * @module
 */
import { landingText } from "../http/landing.ts";

/**
 * Renders the Worker's landing page: the DoH section of the shared page (its URL taken from the
 * request), and a note that DNS over TLS is not served, since Workers cannot accept inbound TCP.
 *
 * @example
 * ```ts
 * workerLandingText("https://dotbridge.example.workers.dev/dns-query", true);
 * ```
 */
export function workerLandingText(dohUrl: string, jsonApi: boolean): string {
  const shared = landingText({ dohUrl, jsonApi });
  const at = shared.indexOf("DNS over HTTPS:");
  const doh = at >= 0 ? shared.slice(at) : `DNS over HTTPS:  ${dohUrl}\n`;
  return [
    "dotbridge on Cloudflare Workers: a DNS over HTTPS (RFC 8484) endpoint.",
    "",
    "There is nothing to see in a browser; configure a DNS client instead:",
    "",
    doh.trimEnd(),
    "DNS over TLS:    not available here: Workers cannot accept inbound TCP connections.",
    "  For a DoT face (port 853), run dotbridge under Deno: deno task serve.",
    "",
  ].join("\n");
}
