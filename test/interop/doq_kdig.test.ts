import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addressesIn, installed, runClient } from "../support/clients.ts";
import { startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const CI = Deno.env.get("CI") === "true";

const HAVE_KDIG = await installed("kdig", "-V");

const kdig = (args: string[]) => runClient("kdig", args);

/** kdig (Knot, `+quic`; Debian's 3.2 has it) against the DoQ face. */
describe("kdig +quic against the DoQ face", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let dir: string;
  let caFile: string;
  let port: number;

  beforeAll(async () => {
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    bridge = await startTestBridge(pki, upstream, ["--doq-listen", "127.0.0.1:0"]);
    port = bridge.bridge.doq!.addr.port;
    dir = await Deno.makeTempDir({ prefix: "dotbridge-doq-kdig-" });
    caFile = `${dir}/ca.pem`;
    await Deno.writeTextFile(caFile, pki.ca.certPem);
  });

  afterAll(async () => {
    await bridge?.close();
    await upstream?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it.skipIf(!HAVE_KDIG && !CI)(
    "verifies the certificate and gets every answer over QUIC",
    async () => {
      if (!HAVE_KDIG) throw new Error("kdig is not installed (knot-dnsutils); CI=true requires it");
      const names = ["kdig-q1.example.test", "kdig-q2.example.test"];
      const r = await kdig([
        "@127.0.0.1",
        "-p",
        String(port),
        `+tls-ca=${caFile}`,
        "+tls-hostname=localhost",
        "+quic",
        "+timeout=3",
        "+retry=0",
        ...names,
      ]);
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(";; QUIC session");
      for (const name of names) {
        expect(addressesIn(r.stdout, name)).toEqual([`192.0.2.${octetFor(name)}`]);
      }
      expect(r.stdout.match(/status: NOERROR/g)).toHaveLength(2);
      const text = bridge.bridge.metrics.registry.render();
      expect(text).toMatch(/dotbridge_queries_total\{face="doq",tenant="",rcode="NOERROR"\} [1-9]/);
    },
  );

  it.skipIf(!HAVE_KDIG && !CI)("a wrong certificate pin is refused by kdig", async () => {
    if (!HAVE_KDIG) throw new Error("kdig is not installed (knot-dnsutils); CI=true requires it");
    const r = await kdig([
      "@127.0.0.1",
      "-p",
      String(port),
      "+tls-pin=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
      "+quic",
      "+timeout=2",
      "+retry=0",
      "kdig-pin.example.test",
    ]);
    expect(r.code).not.toBe(0);
    expect(addressesIn(r.stdout, "kdig-pin.example.test")).toEqual([]);
  });
});
