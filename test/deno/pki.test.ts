import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  describeCertificate,
  issueCertificate,
  type IssuedCertificate,
  spkiPinFromPem,
  spkiPinFromPrivateKeyPem,
} from "../../src/deno/pki.ts";
import { ensureDevCertificate } from "../../src/deno/devcert.ts";

const decoder = new TextDecoder();

/** Runs a command, optionally feeding stdin; returns exit code and decoded output. */
async function run(
  cmd: string,
  args: string[],
  stdin?: string | Uint8Array,
): Promise<{ code: number; stdout: string; stderr: string; raw: Uint8Array }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
    await writer.close();
  }
  const out = await child.output();
  return {
    code: out.code,
    stdout: decoder.decode(out.stdout),
    stderr: decoder.decode(out.stderr),
    raw: out.stdout,
  };
}

async function openssl(args: string[], stdin?: string | Uint8Array): Promise<Uint8Array> {
  const r = await run("openssl", args, stdin);
  if (r.code !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
  return r.raw;
}

/** The pin as the RFC 7858 / openssl recipe computes it. */
async function opensslPin(certPem: string): Promise<string> {
  const pubPem = await openssl(["x509", "-pubkey", "-noout"], certPem);
  const der = await openssl(["pkey", "-pubin", "-outform", "der"], pubPem);
  const digest = await openssl(["dgst", "-sha256", "-binary"], der);
  return decoder.decode(await openssl(["base64"], digest)).trim();
}

async function readAll(conn: Deno.Conn, n: number): Promise<Uint8Array> {
  const buf = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const r = await conn.read(buf.subarray(got));
    if (r === null) throw new Error("unexpected EOF");
    got += r;
  }
  return buf;
}

/**
 * A TLS echo server on 127.0.0.1 presenting `leaf.chainPem`. Handshake failures on the server
 * side are expected in negative tests and swallowed.
 */
function startEchoServer(leaf: IssuedCertificate) {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: leaf.chainPem,
    key: leaf.keyPem,
  });
  const conns = new Set<Deno.TlsConn>();
  const done = (async () => {
    for await (const conn of listener) {
      conns.add(conn);
      (async () => {
        try {
          const buf = new Uint8Array(64);
          for (;;) {
            const n = await conn.read(buf);
            if (n === null) break;
            await conn.write(buf.subarray(0, n));
          }
        } catch {
          // client rejected our certificate or went away
        } finally {
          conns.delete(conn);
          try {
            conn.close();
          } catch { /* already closed */ }
        }
      })();
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    async close() {
      listener.close();
      for (const c of conns) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await done;
    },
  };
}

/** Sends one byte over an established TLS connection and expects it echoed back. */
async function echoOneByte(conn: Deno.Conn): Promise<number> {
  await conn.write(new Uint8Array([0x2a]));
  return (await readAll(conn, 1))[0];
}

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
  it("spkiPinFromPem matches the openssl recipe (SPKI, not the raw EC point)", async () => {
    const expected = await opensslPin(leaf.certPem);
    expect(await spkiPinFromPem(leaf.certPem)).toBe(expected);
    expect(await spkiPinFromPem(leaf.chainPem)).toBe(expected); // first cert of a chain
    expect(leaf.spkiPin).toBe(expected);
    expect(await spkiPinFromPem(ca.certPem)).toBe(await opensslPin(ca.certPem));
    expect(await spkiPinFromPrivateKeyPem(leaf.keyPem)).toBe(expected);
    expect(expected).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  });

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
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port: server.port,
        caCerts: [ca.certPem],
      });
      try {
        expect(await echoOneByte(conn)).toBe(0x2a);
      } finally {
        conn.close();
      }
    } finally {
      await server.close();
    }
  });

  it("the SAN IP address verifies, a name outside the SAN and an untrusted CA are rejected", async () => {
    const server = startEchoServer(leaf);
    try {
      // IP SAN: dial 127.0.0.1 and verify it as the server identity.
      const byIp = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: server.port,
        caCerts: [ca.certPem],
      });
      try {
        expect(await echoOneByte(byIp)).toBe(0x2a);
      } finally {
        byIp.close();
      }

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
    const server = startEchoServer({ ...leaf, chainPem: certPem, keyPem });
    try {
      const conn = await Deno.connectTls({
        hostname: "localhost",
        port: server.port,
        caCerts: [caPem],
      });
      try {
        expect(await echoOneByte(conn)).toBe(0x2a);
      } finally {
        conn.close();
      }
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
