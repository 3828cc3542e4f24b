import { describe, expect, it } from "vitest";
import { CERT_KINDS, type CertKind, writeBenchPki } from "../../scripts/bench/pki.ts";
import { openssl } from "../support/openssl.ts";

const decoder = new TextDecoder();

/** One TLS handshake with a server presenting `pki`, the client trusting only its CA. */
async function handshakes(certPath: string, keyPath: string, caPem: string): Promise<void> {
  const listener = Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: Deno.readTextFileSync(certPath),
    key: Deno.readTextFileSync(keyPath),
  });
  const accepted = listener.accept().then(async (c) => {
    await c.handshake();
    c.close();
  });
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: listener.addr.port,
    caCerts: [caPem],
  });
  await conn.handshake();
  conn.close();
  await accepted;
  listener.close();
}

describe("the bench's --cert kinds (scripts/bench/pki.ts)", () => {
  // rsa4096 is left out for time (two 4096-bit keys, ~6 s); it differs from rsa2048 by a number.
  const kinds = (Object.keys(CERT_KINDS) as CertKind[]).filter((k) => k !== "rsa4096");

  for (const kind of kinds) {
    it(`${kind}: sends the chain of its shape, with the key asked for, trusted through the CA`, async () => {
      const dir = Deno.makeTempDirSync({ prefix: `bench-pki-${kind}-` });
      try {
        const pki = await writeBenchPki(dir, kind);
        const shape = CERT_KINDS[kind];
        const chain = Deno.readTextFileSync(pki.certPath);
        const sent = chain.match(/-----BEGIN CERTIFICATE-----/g)!.length;
        expect(sent).toBe(1 + Number(shape.intermediate) + Number(shape.sendsRoot));
        expect(chain.includes(pki.caPem.trim())).toBe(shape.sendsRoot);
        const key = decoder.decode(await openssl(["pkey", "-in", pki.keyPath, "-noout", "-text"]));
        expect(key).toContain(
          shape.key === "p256" ? "Private-Key: (256 bit" : "Private-Key: (2048 bit",
        );
        await openssl(["verify", "-CAfile", pki.caPath, "-untrusted", pki.certPath, pki.certPath]);
        await handshakes(pki.certPath, pki.keyPath, pki.caPem);
      } finally {
        Deno.removeSync(dir, { recursive: true });
      }
    });
  }
});
