/**
 * A test CA with a server certificate for localhost, 127.0.0.1 and ::1, made once per process.
 *
 * @module
 */
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueCertificate,
  type IssuedCertificate,
} from "../../src/pki/mod.ts";

/** The test PKI. */
export interface TestPki {
  ca: CertificateAuthority;
  server: IssuedCertificate;
}

let cached: Promise<TestPki> | undefined;

/** The process-wide test PKI. */
export function testPki(): Promise<TestPki> {
  cached ??= (async () => {
    const ca = await createCertificateAuthority({ commonName: "dotbridge test CA" });
    const server = await issueCertificate(ca, {
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
    });
    return { ca, server };
  })();
  return cached;
}
