/**
 * The plain-text page served at `GET /`: what this endpoint is and how to point a client at it.
 *
 * @module
 */

/** What the landing page tells a visitor. Every field is optional; unknown ones are left out. */
export interface LandingInfo {
  /** Host name (or address) a DoT client should dial and verify. */
  dotHost?: string;
  dotPort?: number;
  /** SPKI pin of the served certificate (RFC 7858 §4.2), base64 SHA-256. */
  spkiPin?: string;
  /** Full DoH URL, e.g. `https://dns.example:8443/dns-query`. */
  dohUrl?: string;
  /** True when the JSON API (`application/dns-json`) is on. */
  jsonApi?: boolean;
}

/**
 * Renders the landing page.
 *
 * @example
 * ```ts
 * landingText({ dotHost: "dns.example", dotPort: 853, dohUrl: "https://dns.example/dns-query" });
 * ```
 */
export function landingText(info: LandingInfo): string {
  const lines = [
    "dotbridge: an encrypted DNS bridge.",
    "",
    "This endpoint answers DNS over HTTPS (RFC 8484) and DNS over TLS (RFC 7858).",
    "There is nothing to see in a browser; configure a DNS client instead:",
    "",
  ];
  if (info.dohUrl) {
    lines.push(`DNS over HTTPS:  ${info.dohUrl}`);
    lines.push(`  GET ?dns=<base64url query> or POST application/dns-message`);
    if (info.jsonApi) {
      lines.push(
        `  JSON: ${info.dohUrl}?name=example.com&type=AAAA (accept: application/dns-json)`,
      );
    }
  }
  if (info.dotHost && info.dotPort) {
    lines.push(`DNS over TLS:    ${info.dotHost} port ${info.dotPort}`);
    if (info.spkiPin) lines.push(`  SPKI pin (sha256): ${info.spkiPin}`);
    const verify = info.spkiPin ? `+tls-pin=${info.spkiPin}` : `+tls-hostname=${info.dotHost}`;
    lines.push(`  e.g. kdig @${info.dotHost} -p ${info.dotPort} ${verify} example.com`);
  }
  return lines.join("\n") + "\n";
}
