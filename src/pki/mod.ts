/**
 * Certificates, runtime-free: a tiny ECDSA P-256 certificate authority and the leaves it issues,
 * what a certificate says, PEM armour, and the one SPKI pin (RFC 7858 §4.2). `@peculiar/x509` is
 * loaded only by the functions that need it, on their first call.
 *
 * @module
 */
export {
  type CertificateAuthority,
  type CertificateAuthorityOptions,
  createCertificateAuthority,
  issueCertificate,
  type IssueCertificateOptions,
  type IssuedCertificate,
} from "./authority.ts";
export { type CertificateInfo, describeCertificate } from "./describe.ts";
export { firstCertificateDer, pemDecodeAll, pemEncode } from "./pem.ts";
export { spkiPin, spkiPinFromPem, spkiPinFromPrivateKeyPem } from "./spki.ts";
