/**
 * PEM armour (RFC 7468) around DER bytes, with the runtime's own base64.
 *
 * @module
 */

/**
 * DER bytes as one PEM block with the given label, in 64-character lines.
 *
 * @example
 * ```ts
 * pemEncode(await crypto.subtle.exportKey("pkcs8", key), "PRIVATE KEY");
 * ```
 */
export function pemEncode(der: ArrayBuffer | Uint8Array, label: string): string {
  const b64 = (der instanceof Uint8Array ? der : new Uint8Array(der)).toBase64();
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

/**
 * The DER bytes of every PEM block with the given label, in order.
 *
 * @throws {SyntaxError} if a block's body is not base64
 *
 * @example
 * ```ts
 * const chain = pemDecodeAll(await Deno.readTextFile("fullchain.pem"), "CERTIFICATE");
 * ```
 */
export function pemDecodeAll(pem: string, label: string): Uint8Array<ArrayBuffer>[] {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  return [...pem.matchAll(re)].map((m) => Uint8Array.fromBase64(m[1].replace(/\s+/g, "")));
}

/**
 * The DER bytes of the first certificate in a PEM string (a chain's leaf).
 *
 * @throws {TypeError} when there is no PEM CERTIFICATE block
 */
export function firstCertificateDer(pem: string): Uint8Array<ArrayBuffer> {
  const [der] = pemDecodeAll(pem, "CERTIFICATE");
  if (!der) throw new TypeError("no PEM CERTIFICATE block found");
  return der;
}
