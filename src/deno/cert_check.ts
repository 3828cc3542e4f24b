/**
 * Checks a certificate chain and key before they are served: parseable, the key matches the
 * leaf, the leaf is within its validity period. Works for RSA and EC keys in any PEM form
 * (PKCS#8, SEC1, PKCS#1), through `node:crypto`.
 *
 * @module
 */
import { Buffer } from "node:buffer";
import { createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { messageOf } from "../errors/message_of.ts";

/** What a good pair looks like. Its SPKI pin: `spkiPinFromPem` of `src/pki/spki.ts`. */
export interface CertificateSummary {
  notAfter: Date;
  subject: string;
  /** The key's type as `node:crypto` names it: `ec`, `rsa`, `ed25519`, ... */
  keyType: string;
  /** For RSA: the modulus length in bits. */
  rsaBits?: number;
  /** The leaf's DNS names (subjectAltName), for the start-up banner. */
  dnsNames: string[];
}

/**
 * Validates a PEM chain and key.
 *
 * @throws {Error} saying what is wrong: no certificate, unparseable key, key does not match,
 *   expired or not yet valid
 *
 * @example
 * ```ts
 * const { notAfter } = checkCertificatePair(certPem, keyPem);
 * ```
 */
export function checkCertificatePair(
  certPem: string,
  keyPem: string,
  now: Date = new Date(),
): CertificateSummary {
  const first = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(certPem);
  if (!first) throw new Error("no PEM certificate found");
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(first[0]);
  } catch (e) {
    throw new Error(`certificate does not parse: ${messageOf(e)}`);
  }
  let keySpki: Buffer;
  let keyType: string;
  let rsaBits: number | undefined;
  try {
    const key = createPrivateKey(keyPem);
    keyType = key.asymmetricKeyType ?? "unknown";
    rsaBits = keyType === "rsa" ? key.asymmetricKeyDetails?.modulusLength : undefined;
    keySpki = createPublicKey(key).export({ type: "spki", format: "der" });
  } catch (e) {
    throw new Error(`private key does not parse: ${messageOf(e)}`);
  }
  const certSpki = leaf.publicKey.export({ type: "spki", format: "der" });
  if (!Buffer.from(certSpki).equals(Buffer.from(keySpki))) {
    throw new Error("private key does not match the certificate");
  }
  const notBefore = new Date(leaf.validFrom);
  const notAfter = new Date(leaf.validTo);
  if (now < notBefore) {
    throw new Error(`certificate is not valid before ${notBefore.toISOString()}`);
  }
  if (now > notAfter) throw new Error(`certificate expired ${notAfter.toISOString()}`);
  return {
    notAfter,
    subject: leaf.subject,
    keyType,
    rsaBits,
    dnsNames: dnsNamesOf(leaf.subjectAltName),
  };
}

/**
 * The DNS names in `node:crypto`'s subjectAltName text (`DNS:a.example, IP Address:192.0.2.1`;
 * an entry with unusual characters comes JSON-quoted, `DNS:"a,b"`). Read here rather than with
 * the X.509 library, which costs the process ~10 MB of RSS to load.
 */
export function dnsNamesOf(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const names: string[] = [];
  const entry = /(?:^|, )DNS:("(?:[^"\\]|\\.)*"|[^,]*)/g;
  for (const m of subjectAltName.matchAll(entry)) {
    let name = m[1];
    if (name.startsWith('"')) {
      try {
        name = JSON.parse(name);
      } catch {
        continue;
      }
    }
    if (name) names.push(name);
  }
  return names;
}
