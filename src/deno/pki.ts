/**
 * Certificate helpers for dotbridge: a tiny ECDSA P-256 certificate authority, leaf
 * certificates for TLS servers, and RFC 7858 SPKI pins.
 *
 * Only WebCrypto (`crypto.subtle`) and `@peculiar/x509` are used, so this module does not
 * depend on `Deno.*` APIs.
 *
 * `@peculiar/x509` depends on `tsyringe`, which throws at import time unless a
 * `reflect-metadata` style polyfill is installed. This module therefore loads `@peculiar/x509`
 * lazily (dynamic `import()`), after installing a minimal, spec-compatible metadata shim on
 * `Reflect` when (and only when) `Reflect.getMetadata` is missing.
 *
 * @module
 */

import type * as X509 from "@peculiar/x509";

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

const EC_ALGORITHM: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING_ALGORITHM: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };
const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------
// Loading @peculiar/x509

let x509Module: Promise<typeof X509> | undefined;

/** Loads `@peculiar/x509` once, after making sure tsyringe finds a Reflect metadata API. */
function loadX509(): Promise<typeof X509> {
  if (!x509Module) {
    installReflectMetadataShim();
    x509Module = import("@peculiar/x509");
  }
  return x509Module;
}

type MetadataKey = unknown;
type PropertyKeyOrUndefined = string | symbol | undefined;

/**
 * Installs the subset of the `reflect-metadata` API that tsyringe (and most decorator
 * libraries) use, unless some polyfill is already present. Metadata is kept in a WeakMap.
 */
function installReflectMetadataShim(): void {
  const reflect = Reflect as unknown as Record<string, unknown>;
  if (typeof reflect.getMetadata === "function") return;

  const store = new WeakMap<object, Map<PropertyKeyOrUndefined, Map<MetadataKey, unknown>>>();
  const table = (target: object, property: PropertyKeyOrUndefined, create: boolean) => {
    let byProperty = store.get(target);
    if (!byProperty) {
      if (!create) return undefined;
      byProperty = new Map();
      store.set(target, byProperty);
    }
    let byKey = byProperty.get(property);
    if (!byKey) {
      if (!create) return undefined;
      byKey = new Map();
      byProperty.set(property, byKey);
    }
    return byKey;
  };
  const findOwner = (key: MetadataKey, target: object, property: PropertyKeyOrUndefined) => {
    for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o)) {
      if (table(o, property, false)?.has(key)) return o;
    }
    return undefined;
  };
  const api = {
    defineMetadata(key: MetadataKey, value: unknown, target: object, property?: string | symbol) {
      table(target, property, true)!.set(key, value);
    },
    hasOwnMetadata(key: MetadataKey, target: object, property?: string | symbol): boolean {
      return table(target, property, false)?.has(key) ?? false;
    },
    hasMetadata(key: MetadataKey, target: object, property?: string | symbol): boolean {
      return findOwner(key, target, property) !== undefined;
    },
    getOwnMetadata(key: MetadataKey, target: object, property?: string | symbol): unknown {
      return table(target, property, false)?.get(key);
    },
    getMetadata(key: MetadataKey, target: object, property?: string | symbol): unknown {
      const owner = findOwner(key, target, property);
      return owner === undefined ? undefined : table(owner, property, false)!.get(key);
    },
    getOwnMetadataKeys(target: object, property?: string | symbol): MetadataKey[] {
      return [...(table(target, property, false)?.keys() ?? [])];
    },
    getMetadataKeys(target: object, property?: string | symbol): MetadataKey[] {
      const keys = new Set<MetadataKey>();
      for (let o: object | null = target; o !== null; o = Object.getPrototypeOf(o)) {
        for (const k of table(o, property, false)?.keys() ?? []) keys.add(k);
      }
      return [...keys];
    },
    deleteMetadata(key: MetadataKey, target: object, property?: string | symbol): boolean {
      return table(target, property, false)?.delete(key) ?? false;
    },
    metadata(key: MetadataKey, value: unknown) {
      return (target: object, property?: string | symbol) => {
        table(target, property, true)!.set(key, value);
      };
    },
  };
  for (const [name, fn] of Object.entries(api)) {
    Object.defineProperty(Reflect, name, {
      value: fn,
      writable: true,
      configurable: true,
      enumerable: false,
    });
  }
}

// ---------------------------------------------------------------------------------------------
// PEM / DER helpers (no dependency on @peculiar/x509)

function bytesToBase64(bytes: Uint8Array): string {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function base64ToBytes(b64: string): Uint8Array<ArrayBuffer> {
  const binary = atob(b64);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

function pemEncode(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = bytesToBase64(der instanceof Uint8Array ? der : new Uint8Array(der));
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/** DER bytes of every PEM block with the given label, in order. */
function pemDecodeAll(pem: string, label: string): Uint8Array<ArrayBuffer>[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  return [...pem.matchAll(re)].map((m) => base64ToBytes(m[1].replace(/\s+/g, "")));
}

function firstCertificateDer(pem: string): Uint8Array<ArrayBuffer> {
  const [der] = pemDecodeAll(pem, "CERTIFICATE");
  if (!der) throw new TypeError("no PEM CERTIFICATE block found");
  return der;
}

/** Reads one DER TLV at `offset`; returns where its header and value start and end. */
function derElement(der: Uint8Array, offset: number) {
  if (offset + 2 > der.length) throw new TypeError("truncated DER");
  const tag = der[offset];
  let length = der[offset + 1];
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || offset + 2 + n > der.length) {
      throw new TypeError("unsupported DER length");
    }
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + der[offset + 2 + i];
    header += n;
  }
  const end = offset + header + length;
  if (end > der.length) throw new TypeError("truncated DER");
  return { tag, start: offset, valueStart: offset + header, end };
}

/**
 * The exact DER bytes of the SubjectPublicKeyInfo inside a DER certificate, without
 * re-encoding (a pin must hash the bytes as they appear on the wire).
 */
function spkiFromCertificateDer(cert: Uint8Array): Uint8Array {
  const certificate = derElement(cert, 0);
  if (certificate.tag !== 0x30) throw new TypeError("not a DER certificate");
  const tbs = derElement(cert, certificate.valueStart);
  if (tbs.tag !== 0x30) throw new TypeError("not a DER certificate");
  let p = tbs.valueStart;
  let el = derElement(cert, p);
  if (el.tag === 0xa0) { // [0] EXPLICIT version
    p = el.end;
    el = derElement(cert, p);
  }
  // serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
  for (let i = 0; i < 5; i++) {
    p = el.end;
    el = derElement(cert, p);
  }
  if (el.tag !== 0x30 || el.end > tbs.end) throw new TypeError("malformed tbsCertificate");
  return cert.subarray(el.start, el.end);
}

async function pinOfSpki(spki: Uint8Array<ArrayBuffer> | ArrayBuffer): Promise<string> {
  return bytesToBase64(new Uint8Array(await crypto.subtle.digest("SHA-256", spki)));
}

// ---------------------------------------------------------------------------------------------
// Certificate creation

/** A random positive serial of 16 bytes, hex, minimally DER-encodable (first byte 0x01..0x7f). */
function randomSerialHex(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] &= 0x7f;
  if (bytes[0] === 0) bytes[0] = 0x01;
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
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
    spkiPin: await spkiPinFromPem(certPem),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

// ---------------------------------------------------------------------------------------------
// Inspection

/**
 * The RFC 7858 SPKI pin of the first certificate in a PEM string:
 * base64(SHA-256(DER SubjectPublicKeyInfo)), hashing the SPKI bytes exactly as they appear in
 * the certificate. Matches
 * `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64`.
 *
 * @param certPem One or more PEM certificates (e.g. a chain); only the first is used.
 * @returns The base64 pin (44 characters).
 * @example
 * ```ts
 * const pem = await Deno.readTextFile(".state/dev-cert.pem");
 * console.log(`pin-sha256="${await spkiPinFromPem(pem)}"`);
 * ```
 */
export async function spkiPinFromPem(certPem: string): Promise<string> {
  const spki = spkiFromCertificateDer(firstCertificateDer(certPem));
  return await pinOfSpki(new Uint8Array(spki));
}

/**
 * The RFC 7858 SPKI pin of a PKCS#8 ECDSA P-256 private key ("PRIVATE KEY" PEM), computed from
 * its public half. Equal to the certificate's pin exactly when the key belongs to it.
 *
 * @param keyPem A PKCS#8 PEM such as `IssuedCertificate.keyPem`.
 * @returns The base64 pin of the corresponding public key.
 * @example
 * ```ts
 * const ok = (await spkiPinFromPrivateKeyPem(leaf.keyPem)) === (await spkiPinFromPem(leaf.certPem));
 * ```
 */
export async function spkiPinFromPrivateKeyPem(keyPem: string): Promise<string> {
  const [der] = pemDecodeAll(keyPem, "PRIVATE KEY");
  if (!der) throw new TypeError("no PEM PRIVATE KEY block found");
  const privateKey = await crypto.subtle.importKey("pkcs8", der, EC_ALGORITHM, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  delete jwk.d;
  jwk.key_ops = ["verify"];
  const publicKey = await crypto.subtle.importKey("jwk", jwk, EC_ALGORITHM, true, ["verify"]);
  return await pinOfSpki(await crypto.subtle.exportKey("spki", publicKey));
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
    spkiPin: await pinOfSpki(new Uint8Array(spkiFromCertificateDer(der))),
  };
}
