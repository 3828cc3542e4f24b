/**
 * The certificate step's advice on the key: an RSA key makes every new TLS connection cost
 * several times the CPU of an ECDSA one (docs/benchmarks.md), so the start-up log says so once.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { startCertificate } from "../../src/deno/start/certificate.ts";
import { createLogger } from "../../src/log/mod.ts";
import { openssl } from "../support/openssl.ts";

let dir: string;

/** A self-signed certificate and its key for `keyArgs` (openssl req -newkey ...). */
async function pair(name: string, keyArgs: string[]): Promise<[string, string]> {
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}.key`;
  await openssl([
    "req",
    "-x509",
    ...keyArgs,
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-days",
    "1",
    "-keyout",
    key,
    "-out",
    cert,
  ]);
  return [cert, key];
}

async function warningsFor(cert: string, key: string): Promise<string[]> {
  const parsed = parseConfig({
    args: ["--cert", cert, "--key", key, "--upstream", "https://dns.example/dns-query"],
    env: {},
  });
  if (parsed.help) throw new Error("asked for --help");
  const lines: string[] = [];
  await startCertificate(parsed.config, createLogger({ sink: (l) => lines.push(l) }));
  return lines.filter((l) => l.includes("level=warn"));
}

describe("the certificate step's advice on the key", () => {
  beforeAll(async () => {
    dir = await Deno.makeTempDir({ prefix: "dotbridge-certkey-" });
  });
  afterAll(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  it("warns once for an RSA key, naming its size and the ECDSA alternative", async () => {
    const warnings = await warningsFor(...await pair("rsa", ["-newkey", "rsa:2048"]));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("RSA 2048 key");
    expect(warnings[0]).toContain("--key-type ecdsa");
  });

  it("says nothing for an ECDSA P-256 key", async () => {
    const ec = await pair("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]);
    expect(await warningsFor(...ec)).toEqual([]);
  });
});
