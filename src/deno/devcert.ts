/**
 * Development TLS certificate for the Deno edge: a private CA plus a `localhost` leaf, kept in
 * a state directory and reused across restarts.
 *
 * @module
 */

import {
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  spkiPinFromPrivateKeyPem,
} from "../pki/mod.ts";

/** Paths and pin of the development certificate returned by {@link ensureDevCertificate}. */
export interface DevCertificate {
  /** `<stateDir>/dev-ca.pem`: the CA certificate clients should trust (`caCerts`, `DENO_CERT`). */
  caPath: string;
  /** `<stateDir>/dev-cert.pem`: leaf followed by the CA certificate (server `cert`). */
  certPath: string;
  /** `<stateDir>/dev-key.pem`: the leaf's PKCS#8 private key (server `key`), mode 0600. */
  keyPath: string;
  /** RFC 7858 SPKI pin (base64 SHA-256 of the leaf's DER SubjectPublicKeyInfo). */
  spkiPin: string;
  /** `true` when new files were written, `false` when existing ones were reused. */
  created: boolean;
}

/** Reuse existing files only if the leaf stays valid at least this long. */
const MIN_REMAINING_MS = 7 * 86_400_000;
const VALIDITY_DAYS = 825;
const DNS_NAMES = ["localhost"];
const IP_ADDRESSES = ["127.0.0.1", "::1"];

function join(dir: string, name: string): string {
  return dir.endsWith("/") || dir.endsWith("\\") ? dir + name : `${dir}/${name}`;
}

/**
 * Loads the existing files when they form a usable set: the leaf is currently valid for at
 * least 7 more days, covers localhost/127.0.0.1/::1, is issued by the CA in `dev-ca.pem`, and
 * the key belongs to it. Returns the pin, or `undefined` if anything is missing or unusable.
 */
async function loadExisting(
  caPath: string,
  certPath: string,
  keyPath: string,
): Promise<string | undefined> {
  let caPem: string, certPem: string, keyPem: string;
  try {
    [caPem, certPem, keyPem] = await Promise.all([
      Deno.readTextFile(caPath),
      Deno.readTextFile(certPath),
      Deno.readTextFile(keyPath),
    ]);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return undefined;
    throw err;
  }
  try {
    const [leaf, ca] = await Promise.all([
      describeCertificate(certPem),
      describeCertificate(caPem),
    ]);
    const now = Date.now();
    const usable = leaf.notBefore.getTime() <= now &&
      leaf.notAfter.getTime() - now >= MIN_REMAINING_MS &&
      ca.notAfter.getTime() - now >= MIN_REMAINING_MS &&
      !leaf.isCa && ca.isCa && leaf.issuer === ca.subject &&
      DNS_NAMES.every((n) => leaf.dnsNames.includes(n)) &&
      IP_ADDRESSES.every((ip) => leaf.ipAddresses.includes(ip)) &&
      // The chain file must hold the CA after the leaf; the key must match the leaf.
      certPem.includes(caPem.trim()) &&
      (await spkiPinFromPrivateKeyPem(keyPem)) === leaf.spkiPin;
    return usable ? leaf.spkiPin : undefined;
  } catch {
    return undefined; // corrupt or foreign files: replace them
  }
}

/** Writes `data` to `path` via a temporary file and rename, so readers never see half a file. */
async function writeFileAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${crypto.randomUUID()}.tmp`;
  try {
    await Deno.writeTextFile(tmp, data, { mode, createNew: true });
    if (Deno.build.os !== "windows") await Deno.chmod(tmp, mode); // umask-proof
    await Deno.rename(tmp, path);
  } catch (err) {
    await Deno.remove(tmp).catch(() => {});
    throw err;
  }
}

/**
 * Makes sure a development CA and a TLS leaf for `localhost`, `127.0.0.1` and `::1` exist in
 * `stateDir`, and returns their paths and the leaf's SPKI pin.
 *
 * Existing `dev-ca.pem`, `dev-cert.pem` (leaf + CA chain) and `dev-key.pem` are reused when the
 * leaf is still valid for at least 7 days (and the files are consistent). Otherwise the
 * directory is created (mode 0700), a new "dotbridge development CA" and an 825-day leaf are
 * generated, and the files are written atomically (key mode 0600). The CA private key is never
 * written to disk, so trusting `dev-ca.pem` only ever trusts this one leaf.
 *
 * Concurrent calls for the same directory are not coordinated; the last writer wins, and a
 * mismatched set is detected and regenerated on the next call.
 *
 * @param stateDir Directory for the certificate files (created if missing).
 * @returns Paths, SPKI pin, and whether new files were created.
 * @example
 * ```ts
 * const dev = await ensureDevCertificate(".state");
 * const listener = Deno.listenTls({
 *   port: 8853,
 *   cert: await Deno.readTextFile(dev.certPath),
 *   key: await Deno.readTextFile(dev.keyPath),
 * });
 * console.log(`trust ${dev.caPath}; pin-sha256="${dev.spkiPin}"`);
 * ```
 */
export async function ensureDevCertificate(stateDir: string): Promise<DevCertificate> {
  const caPath = join(stateDir, "dev-ca.pem");
  const certPath = join(stateDir, "dev-cert.pem");
  const keyPath = join(stateDir, "dev-key.pem");

  const existingPin = await loadExisting(caPath, certPath, keyPath);
  if (existingPin !== undefined) {
    return { caPath, certPath, keyPath, spkiPin: existingPin, created: false };
  }

  await Deno.mkdir(stateDir, { recursive: true, mode: 0o700 });
  const ca = await createCertificateAuthority({
    commonName: "dotbridge development CA",
    days: VALIDITY_DAYS,
  });
  const leaf = await issueCertificate(ca, {
    dnsNames: DNS_NAMES,
    ipAddresses: IP_ADDRESSES,
    commonName: "localhost",
    days: VALIDITY_DAYS,
  });

  await writeFileAtomic(keyPath, leaf.keyPem, 0o600);
  await writeFileAtomic(certPath, leaf.chainPem, 0o644);
  await writeFileAtomic(caPath, ca.certPem, 0o644);
  return { caPath, certPath, keyPath, spkiPin: leaf.spkiPin, created: true };
}
