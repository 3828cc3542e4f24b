/**
 * The start-up lines `deno task serve` prints: where it listens, how a client trusts it (CA path
 * or SPKI pin), and ready-to-paste client commands.
 *
 * @module
 */
import type { Config } from "../config/parse.ts";
import type { ServedCertificate } from "./start/context.ts";
import { urlHost } from "../upstream/dot_url.ts";

/** What the banner reads: a bridge, or a set of threads. */
export interface BannerSource {
  readonly dot: { readonly addr: { hostname: string; port: number } };
  readonly doh?: { readonly addr: { hostname: string; port: number }; readonly tls: boolean };
  /** The DoQ face (single-thread bridges; with threads it runs on the first one). */
  readonly doq?: { readonly addr: { hostname: string; port: number } };
  /** The plain DNS face, when on. */
  readonly dns?: { readonly addr: { hostname: string; port: number } };
  readonly certificate: ServedCertificate;
  readonly metricsAddr?: { hostname: string; port: number };
  /** Serving threads, when more than one. */
  readonly count?: number;
}

const dialable = (h: string) => (h === "0.0.0.0" || h === "::" ? "127.0.0.1" : h);

/**
 * The banner for a started bridge. `names`: the DNS names on the served certificate (the first
 * is the one the client commands use); unset or empty, the commands say where the name goes.
 */
export function banner(
  bridge: BannerSource,
  config: Config,
  names: readonly string[] = [],
): string {
  const cert = bridge.certificate;
  const { hostname, port } = bridge.dot.addr;
  const { tenantsFile } = config.resolver;
  const { upstreams, upstreamStrategy } = config.upstream;
  const tenants = tenantsFile ? `, tenants from ${tenantsFile}` : "";
  const threads = bridge.count && bridge.count > 1 ? `, ${bridge.count} threads` : "";
  const lines = [
    `dotbridge: DNS-over-TLS on ${urlHost(hostname)}:${port} -> ${upstreams.length} ` +
    `upstream(s) (${upstreamStrategy})${tenants}${threads}`,
  ];
  if (cert.development) {
    lines.push(
      `  development certificate${cert.created ? " (new)" : ""}; trust this CA: ${cert.trustPath}`,
    );
  } else {
    const on = names.length > 0 ? ` (${names.join(", ")})` : "";
    lines.push(`  certificate: ${cert.trustPath}${on}`);
  }
  lines.push(`  SPKI pin (sha256): ${cert.spkiPin}`);
  lines.push(
    config.dot.dotServer === "native"
      ? "  DoT listener: native (Deno.listenTls): ~20 KiB per idle connection; no SNI tenants, " +
        "and a client sending one query per connection may wait ~40 ms (no TCP_NODELAY)"
      : "  DoT listener: node:tls (SNI tenants, certificate reload in place, TCP_NODELAY), " +
        "~31 KiB per idle connection; --dot-server native: ~20 KiB, without those",
  );
  // A development certificate is trusted through its CA file; a real one through system roots.
  const certName = cert.development ? "localhost" : names[0] ?? "<name on the certificate>";
  const trust = cert.development
    ? `+tls-ca=${cert.trustPath} +tls-hostname=localhost`
    : `+tls-ca +tls-hostname=${certName}`;
  const dial = dialable(hostname);
  lines.push(
    `  try: kdig -d @${dial} -p ${port} ${trust} example.com`,
    `   or: kdig @${dial} -p ${port} +tls-pin=${cert.spkiPin} example.com`,
  );
  if (bridge.doh) {
    const doh = bridge.doh.addr;
    const scheme = bridge.doh.tls ? "https" : "http";
    const proxy = bridge.doh.tls ? "" : " (plain HTTP: put a TLS proxy in front)";
    lines.push(
      `dotbridge: DNS-over-HTTPS on ${scheme}://${
        urlHost(doh.hostname)
      }:${doh.port}/dns-query${proxy}`,
    );
    if (bridge.doh.tls) {
      lines.push(
        `  try: kdig @${dialable(doh.hostname)} -p ${doh.port} +https ${trust} example.com`,
      );
    }
    if (config.doh.jsonApi) {
      const curlHost = bridge.doh.tls ? certName : urlHost(dialable(doh.hostname));
      const cacert = bridge.doh.tls && cert.development ? `--cacert ${cert.trustPath} ` : "";
      lines.push(
        `   or: curl ${cacert}-H 'accept: application/dns-json' ` +
          `'${scheme}://${curlHost}:${doh.port}/dns-query?name=example.com'`,
      );
    }
  }
  if (bridge.doq) {
    const doq = bridge.doq.addr;
    lines.push(
      `dotbridge: DNS-over-QUIC on ${urlHost(doq.hostname)}:${doq.port} (UDP, ALPN doq)`,
      `  try: kdig @${dialable(doq.hostname)} -p ${doq.port} +quic ${trust} example.com`,
    );
  }
  if (bridge.dns) {
    const dns = bridge.dns.addr;
    const who = config.resolver.allow.length > 0
      ? "clients in --allow"
      : "local clients only (--dns-default-allow; --allow to change)";
    lines.push(
      `dotbridge: plain DNS on ${urlHost(dns.hostname)}:${dns.port} (UDP and TCP), ${who}`,
      `  try: dig @${dialable(dns.hostname)} -p ${dns.port} example.com`,
    );
  }
  const ddr = config.resolver.ddrNames;
  if (ddr.length > 0) {
    const ask = bridge.dns
      ? `dig @${dialable(bridge.dns.addr.hostname)} -p ${bridge.dns.addr.port}`
      : `kdig @${dial} -p ${port} ${trust}`;
    lines.push(
      `dotbridge: discovery (DDR) for ${ddr.join(", ")}: _dns.resolver.arpa SVCB names the ` +
        "encrypted faces",
      `  try: ${ask} _dns.resolver.arpa SVCB`,
    );
  }
  if (bridge.metricsAddr) {
    const m = bridge.metricsAddr;
    lines.push(`dotbridge: metrics on http://${urlHost(m.hostname)}:${m.port}/metrics`);
  }
  return lines.join("\n");
}
