/**
 * SPKI pins (RFC 7858 §4.2, the `pin-sha256` of RFC 7469): base64(SHA-256(DER
 * SubjectPublicKeyInfo)), the DER exactly as the certificate carries it. Equal to
 * `openssl x509 -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -binary
 * | base64`. Not the hash of the raw public key (an EC point): that pin is wrong.
 *
 * WebCrypto only, so the pins are the same wherever the bridge runs.
 *
 * @module
 */
import { derElement } from "./der.ts";
import { firstCertificateDer, pemDecodeAll } from "./pem.ts";

const EC_P256: EcKeyImportParams = { name: "ECDSA", namedCurve: "P-256" };

/**
 * The DER bytes of the SubjectPublicKeyInfo inside a DER certificate, as a view of it (a pin
 * hashes the bytes as they are on the wire, never a re-encoding).
 *
 * @throws {TypeError} if `cert` is not a DER certificate
 */
function subjectPublicKeyInfo(cert: Uint8Array): Uint8Array {
  const certificate = derElement(cert, 0);
  if (certificate.tag !== 0x30) throw new TypeError("not a DER certificate");
  const tbs = derElement(cert, certificate.valueStart);
  if (tbs.tag !== 0x30) throw new TypeError("not a DER certificate");
  let el = derElement(cert, tbs.valueStart);
  if (el.tag === 0xa0) el = derElement(cert, el.end); // [0] EXPLICIT version, absent in v1
  // serialNumber, signature, issuer, validity, subject, then subjectPublicKeyInfo.
  for (let i = 0; i < 5; i++) el = derElement(cert, el.end);
  if (el.tag !== 0x30 || el.end > tbs.end) throw new TypeError("malformed tbsCertificate");
  return cert.subarray(el.start, el.end);
}

/** base64(SHA-256(spki)). */
async function pinOfSpki(spki: Uint8Array | ArrayBuffer): Promise<string> {
  const bytes = spki instanceof Uint8Array ? new Uint8Array(spki) : spki;
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)).toBase64();
}

/**
 * The SPKI pin of a DER certificate: what a DoT client pins (RFC 7858 §4.2), and what the DoT
 * upstream's connector compares with the pins of a URL's `?pin=`.
 *
 * @returns the base64 pin (44 characters)
 * @throws {TypeError} if `certDer` is not a DER certificate
 *
 * @example
 * ```ts
 * const pin = await spkiPin(socket.getPeerCertificate(true).raw);
 * ```
 */
export async function spkiPin(certDer: Uint8Array): Promise<string> {
  return await pinOfSpki(subjectPublicKeyInfo(certDer));
}

/**
 * The SPKI pin ({@linkcode spkiPin}) of the first certificate in a PEM string.
 *
 * @param certPem one or more PEM certificates (a chain): only the first counts
 * @throws {TypeError} if there is no certificate
 *
 * @example
 * ```ts
 * const pem = await Deno.readTextFile(".state/dev-cert.pem");
 * console.log(`pin-sha256="${await spkiPinFromPem(pem)}"`);
 * ```
 */
export async function spkiPinFromPem(certPem: string): Promise<string> {
  return await spkiPin(firstCertificateDer(certPem));
}

/**
 * The SPKI pin of a PKCS#8 ECDSA P-256 private key ("PRIVATE KEY" PEM), from its public half:
 * equal to its certificate's {@linkcode spkiPinFromPem} exactly when the key belongs to it.
 *
 * @throws {TypeError} when there is no PRIVATE KEY block; WebCrypto's error for another key type
 *
 * @example
 * ```ts
 * const ok = (await spkiPinFromPrivateKeyPem(leaf.keyPem)) === (await spkiPinFromPem(leaf.certPem));
 * ```
 */
export async function spkiPinFromPrivateKeyPem(keyPem: string): Promise<string> {
  const [der] = pemDecodeAll(keyPem, "PRIVATE KEY");
  if (!der) throw new TypeError("no PEM PRIVATE KEY block found");
  const privateKey = await crypto.subtle.importKey("pkcs8", der, EC_P256, true, ["sign"]);
  const jwk = await crypto.subtle.exportKey("jwk", privateKey);
  delete jwk.d;
  jwk.key_ops = ["verify"];
  const publicKey = await crypto.subtle.importKey("jwk", jwk, EC_P256, true, ["verify"]);
  return await pinOfSpki(await crypto.subtle.exportKey("spki", publicKey));
}
