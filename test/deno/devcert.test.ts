/**
 * The development certificate kept in the state directory: made once, reused while good,
 * remade when it is not.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  type IssuedCertificate,
  spkiPinFromPrivateKeyPem,
} from "../../src/pki/mod.ts";
import { ensureDevCertificate } from "../../src/deno/devcert.ts";
import { opensslPin } from "../support/openssl.ts";
import { echoOverTls, startEchoServer } from "../support/tls_echo.ts";

let tmp: string;
let ca: CertificateAuthority;
let leaf: IssuedCertificate;

beforeAll(async () => {
  tmp = await Deno.makeTempDir({ prefix: "dotbridge-devcert-" });
  ca = await createCertificateAuthority({ commonName: "dotbridge test CA", days: 30 });
  leaf = await issueCertificate(ca, { dnsNames: ["localhost"], days: 10 });
});

afterAll(async () => {
  await Deno.remove(tmp, { recursive: true });
});

describe("devcert: ensureDevCertificate", () => {
  it("creates the files once, then reuses them", async () => {
    const stateDir = `${tmp}/state/nested`;
    const first = await ensureDevCertificate(stateDir);
    expect(first.created).toBe(true);
    expect(first.caPath).toBe(`${stateDir}/dev-ca.pem`);
    expect(first.certPath).toBe(`${stateDir}/dev-cert.pem`);
    expect(first.keyPath).toBe(`${stateDir}/dev-key.pem`);

    expect((await Deno.stat(first.keyPath)).mode! & 0o777).toBe(0o600);
    expect((await Deno.stat(stateDir)).mode! & 0o777).toBe(0o700);
    expect((await Array.fromAsync(Deno.readDir(stateDir))).map((e) => e.name).sort()).toEqual([
      "dev-ca.pem",
      "dev-cert.pem",
      "dev-key.pem",
    ]);

    const certPem = await Deno.readTextFile(first.certPath);
    const caPem = await Deno.readTextFile(first.caPath);
    const keyPem = await Deno.readTextFile(first.keyPath);
    expect(first.spkiPin).toBe(await opensslPin(certPem));
    expect(certPem.endsWith(caPem)).toBe(true);
    const info = await describeCertificate(certPem);
    expect(info.dnsNames).toEqual(["localhost"]);
    expect(info.ipAddresses).toEqual(["127.0.0.1", "::1"]);
    expect(info.issuer).toBe("CN=dotbridge development CA");
    const days = (info.notAfter.getTime() - info.notBefore.getTime()) / 86_400_000;
    expect(days).toBeCloseTo(825, 5);

    const second = await ensureDevCertificate(stateDir);
    expect(second).toEqual({ ...first, created: false });
    expect(await Deno.readTextFile(second.certPath)).toBe(certPem);
    expect(await Deno.readTextFile(second.keyPath)).toBe(keyPem);

    // The files serve TLS for localhost with only dev-ca.pem trusted.
    const server = startEchoServer({ chainPem: certPem, keyPem });
    try {
      expect(
        await echoOverTls({
          hostname: "localhost",
          port: server.port,
          caCerts: [caPem],
        }),
      ).toBe(0x2a);
    } finally {
      await server.close();
    }
  });

  it("regenerates when the leaf expires within 7 days or files are missing or mismatched", async () => {
    const stateDir = `${tmp}/state-expiring`;
    await Deno.mkdir(stateDir);
    const shortCa = await createCertificateAuthority({ commonName: "dotbridge development CA" });
    const short = await issueCertificate(shortCa, {
      dnsNames: ["localhost"],
      ipAddresses: ["127.0.0.1", "::1"],
      days: 6,
    });
    await Deno.writeTextFile(`${stateDir}/dev-ca.pem`, shortCa.certPem);
    await Deno.writeTextFile(`${stateDir}/dev-cert.pem`, short.chainPem);
    await Deno.writeTextFile(`${stateDir}/dev-key.pem`, short.keyPem);

    const renewed = await ensureDevCertificate(stateDir);
    expect(renewed.created).toBe(true);
    expect(renewed.spkiPin).not.toBe(short.spkiPin);
    expect((await Deno.stat(renewed.keyPath)).mode! & 0o777).toBe(0o600);

    // Key that does not belong to the certificate.
    await Deno.writeTextFile(renewed.keyPath, leaf.keyPem);
    const fixed = await ensureDevCertificate(stateDir);
    expect(fixed.created).toBe(true);
    expect(await spkiPinFromPrivateKeyPem(await Deno.readTextFile(fixed.keyPath))).toBe(
      fixed.spkiPin,
    );

    // Missing CA file.
    await Deno.remove(fixed.caPath);
    const again = await ensureDevCertificate(stateDir);
    expect(again.created).toBe(true);
    expect((await ensureDevCertificate(stateDir)).created).toBe(false);
  });
});
