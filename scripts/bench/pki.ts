/**
 * The benchmark's throwaway PKI: one test CA and one leaf for localhost / 127.0.0.1 / ::1,
 * shared by the upstream, the bridge and the peer.
 *
 * @module
 */
import { createCertificateAuthority, issueCertificate } from "../../src/pki/mod.ts";

/** Paths of the PEM files written by {@linkcode writeBenchPki}. */
export interface BenchPki {
  /** The CA certificate: what clients trust. */
  caPath: string;
  /** Leaf + CA chain, what the servers present. */
  certPath: string;
  /** The leaf's private key (PKCS#8). */
  keyPath: string;
  /** The CA certificate text (for Deno clients' `caCerts`). */
  caPem: string;
  /** RFC 7858 SPKI pin of the leaf. */
  spkiPin: string;
}

/** Creates a CA and a leaf valid for two days and writes them to `dir`. */
export async function writeBenchPki(dir: string): Promise<BenchPki> {
  const ca = await createCertificateAuthority({ commonName: "dotbridge bench CA", days: 2 });
  const leaf = await issueCertificate(ca, {
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
    days: 1,
  });
  const pki: BenchPki = {
    caPath: `${dir}/ca.pem`,
    certPath: `${dir}/chain.pem`,
    keyPath: `${dir}/key.pem`,
    caPem: ca.certPem,
    spkiPin: leaf.spkiPin,
  };
  Deno.writeTextFileSync(pki.caPath, ca.certPem);
  Deno.writeTextFileSync(pki.certPath, leaf.chainPem);
  Deno.writeTextFileSync(pki.keyPath, leaf.keyPem, { mode: 0o600 });
  return pki;
}
