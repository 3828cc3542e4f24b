/**
 * What a certificate says: subject, issuer, validity, names, CA flag and SPKI pin.
 *
 * @module
 */
import { firstCertificateDer } from "./pem.ts";
import { spkiPin } from "./spki.ts";
import { loadX509 } from "./x509.ts";

/** Facts read from a PEM certificate by {@link describeCertificate}. */
export interface CertificateInfo {
  /** Subject distinguished name, e.g. `"CN=localhost"`. */
  subject: string;
  /** Issuer distinguished name. */
  issuer: string;
  /** Serial number, hexadecimal. */
  serialNumber: string;
  /** Start of the validity period. */
  notBefore: Date;
  /** End of the validity period. */
  notAfter: Date;
  /** DNS names from subjectAltName. */
  dnsNames: string[];
  /** IP addresses from subjectAltName, as text. */
  ipAddresses: string[];
  /** Whether basicConstraints says CA:TRUE. */
  isCa: boolean;
  /** RFC 7858 SPKI pin of the certificate's public key. */
  spkiPin: string;
}

/**
 * Reads the subject, issuer, validity, subjectAltName entries, CA flag and SPKI pin of the
 * first certificate in a PEM string.
 *
 * @param certPem One or more PEM certificates; only the first is described.
 * @returns The parsed facts.
 * @example
 * ```ts
 * const info = await describeCertificate(await Deno.readTextFile(".state/dev-cert.pem"));
 * if (info.notAfter.getTime() - Date.now() < 7 * 86_400_000) console.warn("renew soon");
 * ```
 */
export async function describeCertificate(certPem: string): Promise<CertificateInfo> {
  const x509 = await loadX509();
  const der = firstCertificateDer(certPem);
  const cert = new x509.X509Certificate(der);
  const san = cert.getExtension(x509.SubjectAlternativeNameExtension);
  const names = san?.names.items ?? [];
  const basic = cert.getExtension(x509.BasicConstraintsExtension);
  return {
    subject: cert.subject,
    issuer: cert.issuer,
    serialNumber: cert.serialNumber,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
    dnsNames: names.filter((n) => n.type === "dns").map((n) => n.value),
    ipAddresses: names.filter((n) => n.type === "ip").map((n) => n.value),
    isCa: basic?.ca ?? false,
    spkiPin: await spkiPin(der),
  };
}
