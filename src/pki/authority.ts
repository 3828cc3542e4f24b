/**
 * A tiny certificate authority for dotbridge: an ECDSA P-256 CA, and TLS leaf certificates it
 * signs, for the development certificate and for tests. WebCrypto (`crypto.subtle`) and
 * `@peculiar/x509` (loaded on first use) only: no runtime API.
 *
 * @module
 */
import { pemEncode } from "./pem.ts";
import { spkiPin } from "./spki.ts";
import { loadX509 } from "./x509.ts";

/** A certificate authority that can sign leaf certificates with {@link issueCertificate}. */
export interface CertificateAuthority {
  /** The CA certificate, PEM ("CERTIFICATE"). Give this to clients as their trust anchor. */
  certPem: string;
  /** The CA private key, PKCS#8 PEM ("PRIVATE KEY"). */
  keyPem: string;
  /** The CA signing key (ECDSA P-256). */
  privateKey: CryptoKey;
  /** The CA public key (ECDSA P-256). */
  publicKey: CryptoKey;
  /** Start of the validity period. */
  notBefore: Date;
  /** End of the validity period. */
  notAfter: Date;
}

/** A leaf (end-entity) certificate made by {@link issueCertificate}. */
export interface IssuedCertificate {
  /** The leaf certificate alone, PEM. */
  certPem: string;
  /** The leaf private key, PKCS#8 PEM ("PRIVATE KEY"). */
  keyPem: string;
  /** Leaf followed by the issuing CA certificate, PEM: what a TLS server should present. */
  chainPem: string;
  /** RFC 7858 SPKI pin: base64(SHA-256(DER SubjectPublicKeyInfo)) of the leaf. */
  spkiPin: string;
  /** Start of the validity period. */
  notBefore: Date;
  /** End of the validity period. */
  notAfter: Date;
}

/** Options for {@link createCertificateAuthority}. */
export interface CertificateAuthorityOptions {
  /** Subject common name. Default `"dotbridge CA"`. */
  commonName?: string;
  /** Validity in days from now. Default 3650. */
  days?: number;
}

/** Options for {@link issueCertificate}. At least one DNS name or IP address is required. */
export interface IssueCertificateOptions {
  /** DNS names for the subjectAltName extension; wildcards such as `*.dot.example.test` work. */
  dnsNames?: string[];
  /** IPv4 or IPv6 addresses for the subjectAltName extension. */
  ipAddresses?: string[];
  /** Subject common name. Default: the first DNS name, else the first IP address. */
  commonName?: string;
  /** Validity in days from `notBefore` when `notAfter` is not given. Default 825. */
  days?: number;
  /** Start of validity. Default: five minutes ago (tolerates small clock skew). */
  notBefore?: Date;
  /** End of validity. Default: `notBefore` + `days`. Clamped to the CA's own `notAfter`. */
  notAfter?: Date;
}

const EC_ALGORITHM: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING_ALGORITHM: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 86_400_000;

/** A random positive serial of 16 bytes, hex, minimally DER-encodable (first byte 0x01..0x7f). */
function randomSerialHex(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return bytes.toHex();
}

/** X.509 times have one-second precision; keep our Date objects equal to what is encoded. */
function wholeSeconds(date: Date): Date {
  return new Date(Math.floor(date.getTime() / 1000) * 1000);
}

function checkDays(days: number, what: string): number {
  if (!Number.isFinite(days) || days <= 0) throw new RangeError(`${what}: days must be > 0`);
  return days;
}

/** Escapes a value for an RFC 4514 distinguished-name string. */
function dnValue(value: string): string {
  return value.replace(/[\\,+"<>;=#]/g, (c) => `\\${c}`).replace(/^ | $/g, (c) => `\\${c}`);
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return await crypto.subtle.generateKey(EC_ALGORITHM, true, ["sign", "verify"]);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  return pemEncode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
}

/**
 * Creates a self-signed ECDSA P-256 certificate authority (basicConstraints CA:TRUE, path
 * length 0, critical; keyUsage keyCertSign + cRLSign; subject key identifier).
 *
 * The CA certificate itself is not usable as a TLS server certificate (Deno rejects CA:TRUE
 * end entities); issue a leaf with {@link issueCertificate}.
 *
 * @param opts `commonName` (default `"dotbridge CA"`) and `days` of validity (default 3650).
 * @returns The CA certificate and key as PEM plus the CryptoKeys used for signing.
 * @example
 * ```ts
 * const ca = await createCertificateAuthority({ commonName: "dotbridge test CA", days: 30 });
 * const leaf = await issueCertificate(ca, { dnsNames: ["localhost"] });
 * // Clients trust ca.certPem; the server presents leaf.chainPem with leaf.keyPem.
 * ```
 */
export async function createCertificateAuthority(
  opts: CertificateAuthorityOptions = {},
): Promise<CertificateAuthority> {
  const x509 = await loadX509();
  const commonName = opts.commonName ?? "dotbridge CA";
  const days = checkDays(opts.days ?? 3650, "createCertificateAuthority");
  const notBefore = wholeSeconds(new Date(Date.now() - 5 * 60_000));
  const notAfter = wholeSeconds(new Date(Date.now() + days * DAY_MS));
  const keys = await generateKeyPair();

  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialHex(),
    name: `CN=${dnValue(commonName)}`,
    notBefore,
    notAfter,
    keys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
    ],
  }, crypto);

  return {
    certPem: pemEncode(cert.rawData, "CERTIFICATE"),
    keyPem: await privateKeyPem(keys.privateKey),
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/**
 * Issues an ECDSA P-256 TLS leaf certificate signed by `ca`: basicConstraints CA:FALSE,
 * keyUsage digitalSignature (critical), extKeyUsage serverAuth + clientAuth, subjectAltName
 * with the given DNS names (wildcards allowed) and IPv4/IPv6 addresses, subject and authority
 * key identifiers, and a random positive 128-bit serial.
 *
 * The validity ends no later than the CA's own `notAfter`.
 *
 * @param ca The issuing authority from {@link createCertificateAuthority}.
 * @param opts Names and validity; at least one of `dnsNames` / `ipAddresses` must be non-empty.
 * @returns Leaf PEM, key PEM, leaf+CA chain PEM and the leaf's SPKI pin.
 * @example
 * ```ts
 * const ca = await createCertificateAuthority();
 * const leaf = await issueCertificate(ca, {
 *   dnsNames: ["localhost", "*.dot.example.test"],
 *   ipAddresses: ["127.0.0.1", "::1"],
 *   days: 90,
 * });
 * const listener = Deno.listenTls({ port: 853, cert: leaf.chainPem, key: leaf.keyPem });
 * console.log("pin-sha256:", leaf.spkiPin);
 * ```
 */
export async function issueCertificate(
  ca: CertificateAuthority,
  opts: IssueCertificateOptions,
): Promise<IssuedCertificate> {
  const x509 = await loadX509();
  const dnsNames = opts.dnsNames ?? [];
  const ipAddresses = opts.ipAddresses ?? [];
  if (dnsNames.length === 0 && ipAddresses.length === 0) {
    throw new TypeError("issueCertificate: give at least one DNS name or IP address");
  }
  for (const name of dnsNames) {
    if (!/^(\*\.)?[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(name)) {
      throw new TypeError(`issueCertificate: invalid DNS name ${JSON.stringify(name)}`);
    }
  }
  const commonName = opts.commonName ?? dnsNames[0] ?? ipAddresses[0];

  const caCert = new x509.X509Certificate(ca.certPem);
  const notBefore = wholeSeconds(opts.notBefore ?? new Date(Date.now() - 5 * 60_000));
  let notAfter = wholeSeconds(
    opts.notAfter ??
      new Date(notBefore.getTime() + checkDays(opts.days ?? 825, "issueCertificate") * DAY_MS),
  );
  if (notAfter > caCert.notAfter) notAfter = caCert.notAfter;
  if (notAfter <= notBefore) throw new RangeError("issueCertificate: notAfter <= notBefore");

  const caKeyId = caCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const authorityKeyId = caKeyId
    ? new x509.AuthorityKeyIdentifierExtension(caKeyId, false)
    : await x509.AuthorityKeyIdentifierExtension.create(ca.publicKey, false, crypto);

  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialHex(),
    subject: `CN=${dnValue(commonName)}`,
    issuer: caCert.subjectName,
    notBefore,
    notAfter,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension(
        [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
        false,
      ),
      new x509.SubjectAlternativeNameExtension(
        [
          ...dnsNames.map((value) => ({ type: "dns" as const, value })),
          ...ipAddresses.map((value) => ({ type: "ip" as const, value })),
        ],
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      authorityKeyId,
    ],
  }, crypto);

  const certPem = pemEncode(cert.rawData, "CERTIFICATE");
  const caPem = pemEncode(caCert.rawData, "CERTIFICATE");
  return {
    certPem,
    keyPem: await privateKeyPem(keys.privateKey),
    chainPem: certPem + caPem,
    spkiPin: await spkiPin(new Uint8Array(cert.rawData)),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
