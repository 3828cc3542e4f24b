import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addressesIn, installed, runClient } from "../support/clients.ts";
import { startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { testPki } from "../support/pki.ts";

const CI = Deno.env.get("CI") === "true";
const HAVE_KDIG = await installed("kdig", "-V");
const HAVE_DIG = await installed("dig", "-v");

/** In CI a missing client fails; elsewhere its tests are skipped. */
function need(present: boolean, bin: string, skip: () => void): void {
  if (present) return;
  if (CI) throw new Error(`${bin} is not installed (required in CI)`);
  skip();
}

/**
 * kdig and dig against a bridge with a blocklist file: the global policy answers blocked names
 * NXDOMAIN, the `null` tenant (chosen by its DoH path) 0.0.0.0; both carry EDE 15.
 */
describe("blocked answers as kdig and dig show them", () => {
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let dir: string;
  let caFile: string;

  beforeAll(async () => {
    const pki = await testPki();
    upstream = await startDohUpstream(pki);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-filter-clients-" });
    caFile = `${dir}/ca.pem`;
    await Deno.writeTextFile(caFile, pki.ca.certPem);
    await Deno.writeTextFile(`${dir}/block.txt`, "||blocked.example.test^\n");
    await Deno.writeTextFile(
      `${dir}/tenants.json`,
      JSON.stringify({
        tenants: { nullroute: { upstream: [upstream.url], "block-response": "null" } },
      }),
    );
    bridge = await startTestBridge(pki, upstream, [
      "--http-listen",
      "127.0.0.1:0",
      "--blocklist",
      `${dir}/block.txt`,
      "--tenants",
      `${dir}/tenants.json`,
      "--state-dir",
      `${dir}/state`,
    ]);
  });

  afterAll(async () => {
    await bridge?.close();
    await upstream?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  const tls = () => [`+tls-ca=${caFile}`, "+tls-hostname=localhost"];
  const dohPort = () => String(bridge.bridge.doh!.addr.port);

  it("kdig +tls: NXDOMAIN with EDE 15", async (ctx) => {
    need(HAVE_KDIG, "kdig", () => ctx.skip());
    const r = await runClient("kdig", [
      "@127.0.0.1",
      "-p",
      String(bridge.port),
      "+tls",
      ...tls(),
      "+timeout=3",
      "+retry=0",
      "ads.blocked.example.test",
    ]);
    expect(r.stdout, r.stderr).toMatch(/status: NXDOMAIN/);
    expect(r.stdout).toMatch(/EDE: 15 \(Blocked\)/);
  });

  it("kdig +https on a tenant's path: 0.0.0.0 with EDE 15", async (ctx) => {
    need(HAVE_KDIG, "kdig", () => ctx.skip());
    // kdig takes the path from +https=/path.
    const r = await runClient("kdig", [
      "@127.0.0.1",
      "-p",
      dohPort(),
      "+https=/dns-query/nullroute",
      ...tls(),
      "+timeout=3",
      "+retry=0",
      "blocked.example.test",
    ]);
    expect(r.stdout, r.stderr).toMatch(/status: NOERROR/);
    expect(addressesIn(r.stdout, "blocked.example.test")).toEqual(["0.0.0.0"]);
    expect(r.stdout).toMatch(/EDE: 15 \(Blocked\)/);
  });

  it("dig +tls and dig +https: NXDOMAIN with EDE 15", async (ctx) => {
    need(HAVE_DIG, "dig", () => ctx.skip());
    for (const args of [["+tls", "-p", String(bridge.port)], ["+https", "-p", dohPort()]]) {
      const r = await runClient("dig", [
        ...args,
        ...tls(),
        "+time=3",
        "+tries=1",
        "@127.0.0.1",
        "x.blocked.example.test",
      ]);
      expect(r.stdout, `${args[0]}: ${r.stderr}`).toMatch(/status: NXDOMAIN/);
      expect(r.stdout).toMatch(/EDE: 15 \(Blocked\)/);
    }
  });

  it("dig +https on a tenant's path: 0.0.0.0", async (ctx) => {
    need(HAVE_DIG, "dig", () => ctx.skip());
    const r = await runClient("dig", [
      "+https=/dns-query/nullroute",
      ...tls(),
      "+time=3",
      "+tries=1",
      "@127.0.0.1",
      "-p",
      dohPort(),
      "blocked.example.test",
    ]);
    expect(addressesIn(r.stdout, "blocked.example.test"), r.stderr).toEqual(["0.0.0.0"]);
    expect(r.stdout).toMatch(/EDE: 15 \(Blocked\)/);
    expect(upstream.requests.some((q) => q.name.endsWith("blocked.example.test"))).toBe(false);
  });
});
