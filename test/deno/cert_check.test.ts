/**
 * The certificate check's reading of the leaf: its DNS names come from `node:crypto`'s
 * subjectAltName text (not the X.509 library, ~10 MB of RSS to load), for the start-up banner.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkCertificatePair, dnsNamesOf } from "../../src/deno/cert_check.ts";
import { openssl } from "../support/openssl.ts";

describe("dnsNamesOf", () => {
  it("takes the DNS entries, in order, and leaves the others", () => {
    expect(dnsNamesOf("DNS:dns.example.test, IP Address:192.0.2.1, DNS:b.example.test")).toEqual(
      ["dns.example.test", "b.example.test"],
    );
    expect(dnsNamesOf("IP Address:192.0.2.1")).toEqual([]);
    expect(dnsNamesOf(undefined)).toEqual([]);
  });

  it("reads a quoted entry (unusual characters) whole", () => {
    expect(dnsNamesOf('DNS:"odd,name.example", DNS:plain.example')).toEqual([
      "odd,name.example",
      "plain.example",
    ]);
  });
});

describe("checkCertificatePair", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await Deno.makeTempDir({ prefix: "dotbridge-certcheck-" });
  });
  afterAll(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  it("reports the leaf's DNS names and key type", async () => {
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-subj",
      "/CN=dns.example.test",
      "-addext",
      "subjectAltName=DNS:dns.example.test,IP:127.0.0.1,DNS:doh.example.test",
      "-days",
      "1",
      "-keyout",
      `${dir}/key.pem`,
      "-out",
      `${dir}/cert.pem`,
    ]);
    const summary = checkCertificatePair(
      await Deno.readTextFile(`${dir}/cert.pem`),
      await Deno.readTextFile(`${dir}/key.pem`),
    );
    expect(summary.dnsNames).toEqual(["dns.example.test", "doh.example.test"]);
    expect(summary.keyType).toBe("ec");
  });
});
