/**
 * The one SPKI pin (RFC 7858 §4.2): base64(SHA-256(DER SubjectPublicKeyInfo)), the DER as the
 * certificate carries it, checked against openssl's recipe for the kinds of certificates an
 * operator brings (EC and RSA, v3 and v1) and for a private key's public half.
 */
import { beforeAll, describe, expect, it } from "vitest";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  firstCertificateDer,
  issueCertificate,
  type IssuedCertificate,
  spkiPin,
  spkiPinFromPem,
  spkiPinFromPrivateKeyPem,
} from "../../src/pki/mod.ts";
import { openssl, opensslPin } from "../support/openssl.ts";

const decoder = new TextDecoder();

/** A self-signed certificate made by `openssl req` with the given key options. */
async function opensslCertificate(keyArgs: string[], extra: string[] = []): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-spki-" });
  try {
    await openssl([
      "req",
      "-x509",
      "-nodes",
      ...keyArgs,
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
      "-days",
      "1",
      "-subj",
      "/CN=operator.example",
      ...extra,
    ]);
    return await Deno.readTextFile(`${dir}/cert.pem`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let ca: CertificateAuthority;
let leaf: IssuedCertificate;

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: "dotbridge spki CA", days: 2 });
  leaf = await issueCertificate(ca, { dnsNames: ["localhost"], days: 1 });
});

describe("spkiPin", () => {
  it("equals openssl's pin for our EC leaf and CA (the SPKI, not the raw EC point)", async () => {
    const expected = await opensslPin(leaf.certPem);
    expect(expected).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(await spkiPin(firstCertificateDer(leaf.certPem))).toBe(expected);
    expect(leaf.spkiPin).toBe(expected);
    expect(await spkiPin(firstCertificateDer(ca.certPem))).toBe(await opensslPin(ca.certPem));

    // The wrong pin docs/platform-notes.md#tls-clients warns of: the hash of the bare public key bit string.
    const text = decoder.decode(await openssl(["x509", "-noout", "-pubkey"], leaf.certPem));
    expect(text).toContain("PUBLIC KEY");
    const point = new Uint8Array(
      await crypto.subtle.exportKey(
        "raw",
        await crypto.subtle.importKey(
          "spki",
          Uint8Array.fromBase64(text.replace(/-----[^-]+-----|\s+/g, "")),
          { name: "ECDSA", namedCurve: "P-256" },
          true,
          ["verify"],
        ),
      ),
    );
    const wrong = new Uint8Array(await crypto.subtle.digest("SHA-256", point)).toBase64();
    expect(wrong).not.toBe(expected);
  });

  it.each([
    ["an RSA 2048 certificate", ["-newkey", "rsa:2048"]],
    ["a P-384 certificate", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384"]],
    ["an Ed25519 certificate", ["-newkey", "ed25519"]],
  ])("equals openssl's pin for %s an operator brings", async (_what, keyArgs) => {
    const pem = await opensslCertificate(keyArgs);
    expect(await spkiPin(firstCertificateDer(pem))).toBe(await opensslPin(pem));
  });

  it("finds the key of a v1 certificate (no version field)", async () => {
    const dir = await Deno.makeTempDir({ prefix: "dotbridge-spki-v1-" });
    try {
      const run = (command: string) => openssl(command.split(" "));
      await run(`genpkey -algorithm ec -pkeyopt ec_paramgen_curve:P-256 -out ${dir}/key.pem`);
      await run(`req -new -key ${dir}/key.pem -subj /CN=v1.example -out ${dir}/req.pem`);
      // `openssl x509 -req` without extensions writes a version 1 certificate.
      await run(
        `x509 -req -in ${dir}/req.pem -signkey ${dir}/key.pem -days 1 -out ${dir}/cert.pem`,
      );
      const pem = await Deno.readTextFile(`${dir}/cert.pem`);
      const text = decoder.decode(await openssl(["x509", "-noout", "-text"], pem));
      expect(text).toMatch(/Version: 1 \(0x0\)/);
      expect(await spkiPin(firstCertificateDer(pem))).toBe(await opensslPin(pem));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });

  it.each([
    ["nothing", []],
    ["a lone SEQUENCE tag", [0x30]],
    ["a length past the end", [0x30, 0x05, 0x30, 0x00]],
    ["an indefinite length", [0x30, 0x80, 0x00, 0x00]],
    ["not a SEQUENCE", [0x04, 0x02, 0x30, 0x00]],
    ["a tbsCertificate without its fields", [0x30, 0x02, 0x30, 0x00]],
  ])("rejects %s with a TypeError", async (_what, der) => {
    await expect(spkiPin(Uint8Array.from(der))).rejects.toBeInstanceOf(TypeError);
  });

  it("rejects a truncated certificate", async () => {
    const der = firstCertificateDer(leaf.certPem);
    await expect(spkiPin(der.subarray(0, 120))).rejects.toThrow(/DER/);
  });
});

describe("spkiPinFromPem and spkiPinFromPrivateKeyPem", () => {
  it("take the first certificate of a chain, and a key's public half", async () => {
    const expected = await opensslPin(leaf.certPem);
    expect(await spkiPinFromPem(leaf.chainPem)).toBe(expected);
    expect(await spkiPinFromPrivateKeyPem(leaf.keyPem)).toBe(expected);
    expect(await spkiPinFromPrivateKeyPem(ca.keyPem)).not.toBe(expected);
  });

  it("say what is missing", async () => {
    await expect(spkiPinFromPem("no certificate here")).rejects.toThrow(/no PEM CERTIFICATE/);
    await expect(spkiPinFromPrivateKeyPem(leaf.certPem)).rejects.toThrow(/no PEM PRIVATE KEY/);
  });
});
