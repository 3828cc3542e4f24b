import { describe, expect, it } from "vitest";
import { firstCertificateDer, pemDecodeAll, pemEncode } from "../../src/pki/pem.ts";

describe("PEM", () => {
  it("encodes in 64-character lines and decodes back, block by block", () => {
    const a = Uint8Array.from({ length: 100 }, (_, i) => i);
    const b = Uint8Array.of(0xff, 0xfe);
    const pem = pemEncode(a, "CERTIFICATE") + pemEncode(b.buffer, "CERTIFICATE") +
      pemEncode(b, "PRIVATE KEY");
    const lines = pem.split("\n");
    expect(lines[0]).toBe("-----BEGIN CERTIFICATE-----");
    // 100 bytes are 136 base64 characters: 64, 64, 8.
    expect(lines.slice(1, 4).map((l) => l.length)).toEqual([64, 64, 8]);
    expect(lines[4]).toBe("-----END CERTIFICATE-----");
    expect(pemDecodeAll(pem, "CERTIFICATE").map((d) => [...d])).toEqual([[...a], [...b]]);
    expect(pemDecodeAll(pem, "PRIVATE KEY").map((d) => [...d])).toEqual([[...b]]);
    expect([...firstCertificateDer(pem)]).toEqual([...a]);
  });

  it("reads CRLF files and says when there is no certificate", () => {
    const pem = pemEncode(Uint8Array.of(1, 2, 3), "CERTIFICATE").replaceAll("\n", "\r\n");
    expect([...firstCertificateDer(pem)]).toEqual([1, 2, 3]);
    expect(() =>
      firstCertificateDer("-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----")
    )
      .toThrow(new TypeError("no PEM CERTIFICATE block found"));
  });
});
