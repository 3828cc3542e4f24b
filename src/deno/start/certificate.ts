/**
 * Step: the certificate the faces serve, either `--cert`/`--key` or the development one kept in
 * `--state-dir`. The pair is checked here, before anything listens, so a listener that fails
 * later has an address problem, not a certificate one.
 *
 * @module
 */
import type { Config } from "../../config/config.ts";
import { ConfigError } from "../../config/parse.ts";
import { spkiPinFromPem } from "../../pki/spki.ts";
import { type CertificateSummary, checkCertificatePair } from "../cert_check.ts";
import { readKeyFile, type ServedCertificate } from "./context.ts";
import type { Started } from "./steps.ts";
import type { Logger } from "../../log/mod.ts";
import { messageOf } from "../../errors/message_of.ts";

/**
 * Loads the configured certificate, or makes/loads the development one, and checks the pair.
 *
 * @throws {ConfigError} naming `--cert`, `--key` or `--state-dir`
 */
export async function loadCertificate(config: Config): Promise<ServedCertificate> {
  const { certFile, keyFile, stateDir } = config.certificate;
  const { origin } = config;
  if (certFile !== undefined && keyFile !== undefined) {
    const cert = readKeyFile(origin.cert, certFile);
    const key = readKeyFile(origin.key, keyFile);
    if (!cert.includes("-----BEGIN CERTIFICATE-----")) {
      throw new ConfigError(origin.cert, `"${certFile}" holds no PEM certificate`);
    }
    if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key)) {
      throw new ConfigError(origin.key, `"${keyFile}" holds no PEM private key`);
    }
    let spkiPin: string;
    let summary: CertificateSummary;
    try {
      summary = checkCertificatePair(cert, key);
      spkiPin = await spkiPinFromPem(cert);
    } catch (e) {
      throw new ConfigError(origin.cert, `"${certFile}": ${messageOf(e)}`);
    }
    return {
      cert,
      key,
      trustPath: certFile,
      spkiPin,
      development: false,
      created: false,
      names: summary.dnsNames,
      warning: keyWarning(summary),
    };
  }
  const where = `cannot keep the development certificate in "${stateDir}"`;
  let cert: string, key: string, dev;
  try {
    // Imported only here: the X.509 library it needs is several MB a bridge with its own
    // certificate never uses.
    const { ensureDevCertificate } = await import("../devcert.ts");
    dev = await ensureDevCertificate(stateDir);
    cert = Deno.readTextFileSync(dev.certPath);
    key = Deno.readTextFileSync(dev.keyPath);
    checkCertificatePair(cert, key);
  } catch (e) {
    throw new ConfigError(origin["state-dir"], `${where}: ${messageOf(e)}`);
  }
  return {
    cert,
    key,
    trustPath: dev.caPath,
    spkiPin: dev.spkiPin,
    development: true,
    created: dev.created,
  };
}

/**
 * Advice on the key, when it costs handshakes: measured here (docs/benchmarks.md), a new TLS
 * connection cost the default listener ~1.9 ms of CPU with RSA 2048 and ~0.5 ms with ECDSA P-256.
 */
export function keyWarning(summary: CertificateSummary): string | undefined {
  if (summary.keyType !== "rsa") return undefined;
  return `certificate: an RSA${summary.rsaBits ? ` ${summary.rsaBits}` : ""} key makes each ` +
    "new TLS connection cost ~4x the CPU of an ECDSA P-256 key (certbot: --key-type ecdsa); " +
    "see docs/deployment.md, Which certificate";
}

/** The certificate step: nothing to stop; says so once when the key is a costly kind. */
export async function startCertificate(
  config: Config,
  logger?: Logger,
): Promise<Started<ServedCertificate>> {
  const certificate = await loadCertificate(config);
  if (certificate.warning) logger?.warn(certificate.warning);
  return { value: certificate };
}
