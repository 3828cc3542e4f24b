/**
 * The test certificate authority of src/pki: what its certificates say (checked by openssl),
 * and that they serve real TLS to Deno's client, names and trust checked.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  type IssuedCertificate,
} from "../../src/pki/mod.ts";
import { openssl, run } from "../support/openssl.ts";
import { echoOneByte, echoOverTls, startEchoServer } from "../support/tls_echo.ts";

const decoder = new TextDecoder();

let tmp: string;
let ca: CertificateAuthority;
let leaf: IssuedCertificate;

beforeAll(async () => {
  tmp = await Deno.makeTempDir({ prefix: "dotbridge-pki-" });
  ca = await createCertificateAuthority({ commonName: "dotbridge test CA", days: 30 });
  leaf = await issueCertificate(ca, {
    dnsNames: ["localhost", "dot.example.test"],
    ipAddresses: ["127.0.0.1", "::1"],
    days: 10,
  });
});

afterAll(async () => {
  await Deno.remove(tmp, { recursive: true });
});

describe("pki: certificate contents", () => {
  it("openssl verifies the leaf against the CA and sees the SANs and usages", async () => {
    const caFile = `${tmp}/ca.pem`;
    const leafFile = `${tmp}/leaf.pem`;
    await Deno.writeTextFile(caFile, ca.certPem);
    await Deno.writeTextFile(leafFile, leaf.certPem);

    const verify = await run("openssl", [
      "verify",
      "-CAfile",
      caFile,
      "-purpose",
      "sslserver",
      leafFile,
    ]);
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(verify.stdout.trim()).toBe(`${leafFile}: OK`);

    const san = decoder.decode(
      await openssl(["x509", "-noout", "-ext", "subjectAltName", "-in", leafFile]),
    );
    expect(san).toContain("DNS:localhost");
    expect(san).toContain("DNS:dot.example.test");
    expect(san).toContain("IP Address:127.0.0.1");
    expect(san).toMatch(/IP Address:(0:0:0:0:0:0:0:1|::1)\b/);

    const text = decoder.decode(await openssl(["x509", "-noout", "-text", "-in", leafFile]));
    expect(text).toMatch(/Basic Constraints: critical\s+CA:FALSE/);
    expect(text).toMatch(/Key Usage: critical\s+Digital Signature\n/);
    expect(text).toContain("TLS Web Server Authentication, TLS Web Client Authentication");
    expect(text).toContain("ecdsa-with-SHA256");
    expect(text).toContain("prime256v1");

    const caText = decoder.decode(await openssl(["x509", "-noout", "-text", "-in", caFile]));
    expect(caText).toMatch(/Basic Constraints: critical\s+CA:TRUE/);
    expect(caText).toMatch(/Key Usage: critical\s+Certificate Sign, CRL Sign/);
    // The leaf's authority key id is the CA's subject key id.
    const ski = /Subject Key Identifier:\s+([0-9A-F:]+)/.exec(caText)?.[1];
    expect(ski).toBeTruthy();
    expect(text).toMatch(new RegExp(`Authority Key Identifier:\\s+(keyid:)?${ski}`));

    // The key file is PKCS#8 and belongs to the certificate.
    expect(leaf.keyPem.startsWith("-----BEGIN PRIVATE KEY-----\n")).toBe(true);
    const keyPub = await openssl(["pkey", "-pubout", "-outform", "der"], leaf.keyPem);
    const certPub = await openssl(
      ["pkey", "-pubin", "-outform", "der"],
      await openssl(["x509", "-pubkey", "-noout"], leaf.certPem),
    );
    expect(keyPub).toEqual(certPub);

    // Another CA must not verify it.
    const otherCa = await createCertificateAuthority({ days: 1 });
    await Deno.writeTextFile(`${tmp}/other-ca.pem`, otherCa.certPem);
    const bad = await run("openssl", ["verify", "-CAfile", `${tmp}/other-ca.pem`, leafFile]);
    expect(bad.code).not.toBe(0);
  });

  it("uses random positive serials, chain order, and validity bounds", async () => {
    const info = await describeCertificate(leaf.chainPem);
    expect(info.subject).toBe("CN=localhost");
    expect(info.issuer).toBe("CN=dotbridge test CA");
    expect(info.isCa).toBe(false);
    expect(info.dnsNames).toEqual(["localhost", "dot.example.test"]);
    expect(info.ipAddresses).toEqual(["127.0.0.1", "::1"]);
    const days = (info.notAfter.getTime() - info.notBefore.getTime()) / 86_400_000;
    expect(days).toBeCloseTo(10, 5);
    expect(info.notBefore.getTime()).toBeLessThanOrEqual(Date.now());

    // chainPem is leaf then CA.
    const blocks = leaf.chainPem.match(/-----BEGIN CERTIFICATE-----/g);
    expect(blocks).toHaveLength(2);
    expect(leaf.chainPem).toBe(leaf.certPem + ca.certPem);

    const caInfo = await describeCertificate(ca.certPem);
    expect(caInfo.isCa).toBe(true);
    expect(caInfo.subject).toBe(caInfo.issuer);

    const other = await issueCertificate(ca, { dnsNames: ["localhost"] });
    const otherInfo = await describeCertificate(other.certPem);
    expect(otherInfo.serialNumber).not.toBe(info.serialNumber);
    expect(parseInt(otherInfo.serialNumber.slice(0, 2), 16)).toBeLessThan(0x80);
    expect(other.spkiPin).not.toBe(leaf.spkiPin);

    // A leaf never outlives its CA.
    const long = await issueCertificate(ca, { dnsNames: ["localhost"], days: 10_000 });
    expect(long.notAfter.getTime()).toBe(ca.notAfter.getTime());

    // Explicit validity window.
    const notBefore = new Date("2030-01-01T00:00:00.500Z");
    const notAfter = new Date("2030-01-02T00:00:00Z");
    const future = await issueCertificate(
      await createCertificateAuthority({ days: 3650 }),
      { ipAddresses: ["192.0.2.1"], notBefore, notAfter },
    );
    const futureInfo = await describeCertificate(future.certPem);
    expect(futureInfo.notBefore.toISOString()).toBe("2030-01-01T00:00:00.000Z");
    expect(futureInfo.notAfter.toISOString()).toBe("2030-01-02T00:00:00.000Z");
    expect(futureInfo.subject).toBe("CN=192.0.2.1");
  });

  it("rejects a leaf without names and invalid DNS names", async () => {
    await expect(issueCertificate(ca, {})).rejects.toThrow(/at least one/);
    await expect(issueCertificate(ca, { dnsNames: ["bad name"] })).rejects.toThrow(/invalid DNS/);
  });
});

describe("pki: real TLS with Deno", () => {
  it("a client trusting the CA completes a handshake and echoes a byte", async () => {
    const server = startEchoServer(leaf);
    try {
      expect(
        await echoOverTls({
          hostname: "localhost",
          port: server.port,
          caCerts: [ca.certPem],
        }),
      ).toBe(0x2a);
    } finally {
      await server.close();
    }
  });

  it("the SAN IP address verifies, a name outside the SAN and an untrusted CA are rejected", async () => {
    const server = startEchoServer(leaf);
    try {
      // IP SAN: dial 127.0.0.1 and verify it as the server identity.
      expect(
        await echoOverTls({
          hostname: "127.0.0.1",
          port: server.port,
          caCerts: [ca.certPem],
        }),
      ).toBe(0x2a);

      // A name not in the SAN.
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      const wrongName = await Deno.startTls(tcp, {
        hostname: "not-in-san.example.test",
        caCerts: [ca.certPem],
      });
      try {
        await expect(wrongName.handshake()).rejects.toThrow(/certificate not valid for name/);
      } finally {
        wrongName.close();
      }

      // The right name but without trusting our CA.
      const otherCa = await createCertificateAuthority({ commonName: "unrelated CA", days: 1 });
      const untrusted = await Deno.connectTls({
        hostname: "localhost",
        port: server.port,
        caCerts: [otherCa.certPem],
      });
      try {
        await expect(untrusted.handshake()).rejects.toThrow(
          /invalid peer certificate: UnknownIssuer/,
        );
      } finally {
        untrusted.close();
      }
    } finally {
      await server.close();
    }
  });

  it("a wildcard leaf verifies for tenant.dot.example.test via connect + startTls", async () => {
    const wildcard = await issueCertificate(ca, { dnsNames: ["*.dot.example.test"], days: 1 });
    expect(wildcard.certPem).not.toBe(leaf.certPem);
    const server = startEchoServer(wildcard);
    try {
      const tcp = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      const conn = await Deno.startTls(tcp, {
        hostname: "tenant.dot.example.test",
        caCerts: [ca.certPem],
      });
      try {
        await conn.handshake();
        expect(await echoOneByte(conn)).toBe(0x2a);
      } finally {
        conn.close();
      }

      // A wildcard covers exactly one label: neither the bare domain nor two labels deep.
      for (const name of ["dot.example.test", "a.b.dot.example.test"]) {
        const raw = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
        const bad = await Deno.startTls(raw, { hostname: name, caCerts: [ca.certPem] });
        try {
          await expect(bad.handshake()).rejects.toThrow(/certificate not valid for name/);
        } finally {
          bad.close();
        }
      }
    } finally {
      await server.close();
    }
  });

  it("a self-signed CA certificate is refused as a server certificate (CaUsedAsEndEntity)", async () => {
    const listener = Deno.listenTls({
      hostname: "127.0.0.1",
      port: 0,
      cert: ca.certPem,
      key: ca.keyPem,
    });
    const accepted = (async () => {
      try {
        const c = await listener.accept();
        await c.handshake().catch(() => {});
        c.close();
      } catch { /* listener closed */ }
    })();
    try {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: listener.addr.port,
        caCerts: [ca.certPem],
      });
      try {
        await expect(conn.handshake()).rejects.toThrow(/CaUsedAsEndEntity/);
      } finally {
        conn.close();
      }
    } finally {
      listener.close();
      await accepted;
    }
  });
});
