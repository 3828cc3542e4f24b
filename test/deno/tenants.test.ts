import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { issueCertificate } from "../../src/deno/pki.ts";
import { silentLogger } from "../../src/log/mod.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { aRecords, buildQuery, connectDot, edeCode, idOf, rcodeOf } from "../support/dot_client.ts";
import { connectDoq } from "../support/doq_client.ts";
import { testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

/**
 * Two upstreams: `home` (the global policy) and `kids` (a tenant). Each test checks which
 * upstream a query reached by counting the requests each received for its name.
 */
describe("tenants over real TLS and HTTPS", () => {
  let home: LocalDohUpstream;
  let kids: LocalDohUpstream;
  let bridge: Bridge;
  let dir: string;
  let caPem: string;
  let http: Deno.HttpClient;

  const reached = (up: LocalDohUpstream, name: string) =>
    up.requests.filter((r) => r.name === name).length;

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    home = await startDohUpstream(pki);
    kids = await startDohUpstream(pki);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-tenants-" });
    const leaf = await issueCertificate(pki.ca, {
      dnsNames: ["localhost", "dot.example.test", "*.dot.example.test"],
      ipAddresses: ["127.0.0.1"],
    });
    await Deno.writeTextFile(`${dir}/cert.pem`, leaf.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, leaf.keyPem);
    await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
    await Deno.writeTextFile(
      `${dir}/tenants.json`,
      JSON.stringify({ tenants: { kids: { upstream: [kids.url], cache: false } } }),
    );
    const parsed = parseConfig({
      args: [
        "--listen=127.0.0.1:0",
        "--http-listen=127.0.0.1:0",
        "--doq-listen=127.0.0.1:0",
        `--cert=${dir}/cert.pem`,
        `--key=${dir}/key.pem`,
        `--upstream-ca=${dir}/ca.pem`,
        `--upstream=${home.url}`,
        `--tenants=${dir}/tenants.json`,
        "--tenant-domain=dot.example.test",
        "--no-cache",
      ],
    });
    if (parsed.help) throw new Error("help");
    bridge = await startBridge(parsed.config, { logger: silentLogger, sighup: false });
    http = Deno.createHttpClient({ caCerts: [caPem] });
  });

  afterAll(async () => {
    http?.close();
    await bridge?.shutdown();
    await home?.close();
    await kids?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  async function dotQuery(name: string, servername: string, edns?: string): Promise<Uint8Array> {
    const client = await connectDot({ port: bridge.dot.addr.port, caCerts: [caPem], servername });
    try {
      const options = edns ? [{ code: 65011, data: new TextEncoder().encode(edns) }] : [];
      const q = buildQuery(name, { id: 77, options });
      await client.send(q);
      return await client.waitFor(idOf(q));
    } finally {
      client.close();
    }
  }

  it("routes a DoT client to the tenant named by its SNI's first label", async () => {
    const answer = await dotQuery("sni.example.test", "kids.dot.example.test");
    expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("sni.example.test")}`]);
    expect(reached(kids, "sni.example.test")).toBe(1);
    expect(reached(home, "sni.example.test")).toBe(0);
  });

  it("routes a DoQ client to the tenant named by its SNI's first label", async () => {
    const client = await connectDoq({
      port: bridge.doq!.addr.port,
      caCerts: [caPem],
      serverName: "kids.dot.example.test",
    });
    try {
      const answer = await client.query(buildQuery("doq-sni.example.test"));
      expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("doq-sni.example.test")}`]);
    } finally {
      client.close();
    }
    expect(reached(kids, "doq-sni.example.test")).toBe(1);
    expect(reached(home, "doq-sni.example.test")).toBe(0);
    expect(bridge.metrics.registry.render()).toMatch(
      /dotbridge_queries_total\{face="doq",tenant="kids",rcode="NOERROR"\} 1/,
    );
  });

  it("sends the generic name and other names to the global policy", async () => {
    await dotQuery("generic.example.test", "dot.example.test");
    await dotQuery("local.example.test", "localhost");
    expect(reached(home, "generic.example.test")).toBe(1);
    expect(reached(home, "local.example.test")).toBe(1);
    expect(reached(kids, "generic.example.test") + reached(kids, "local.example.test")).toBe(0);
  });

  it("routes by EDNS option 65011 on the generic name and strips it before forwarding", async () => {
    await dotQuery("edns.example.test", "dot.example.test", "kids");
    expect(reached(kids, "edns.example.test")).toBe(1);
    const seen = kids.requests.find((r) => r.name === "edns.example.test")!;
    expect(seen.options).not.toContain(65011);
  });

  it("refuses an unknown tenant with REFUSED and EDE 18", async () => {
    const bySni = await dotQuery("nobody.example.test", "nobody.dot.example.test");
    expect(rcodeOf(bySni)).toBe(5);
    expect(edeCode(bySni)).toBe(18);
    const byEdns = await dotQuery("nobody2.example.test", "dot.example.test", "nobody");
    expect(rcodeOf(byEdns)).toBe(5);
    expect(reached(home, "nobody.example.test") + reached(kids, "nobody.example.test")).toBe(0);
  });

  it("routes DoH /dns-query/<tenant> to that tenant and /dns-query to the global policy", async () => {
    const url = `https://localhost:${bridge.doh!.addr.port}/dns-query`;
    const post = (path: string, name: string) =>
      fetch(url + path, {
        method: "POST",
        headers: { "content-type": "application/dns-message" },
        body: buildQuery(name, { id: 0 }).slice(),
        client: http,
      });
    const a = await post("/kids", "path.example.test");
    expect(a.status).toBe(200);
    expect(aRecords(new Uint8Array(await a.arrayBuffer()))).toHaveLength(1);
    const b = await post("", "nopath.example.test");
    await b.arrayBuffer();
    const c = await post("/nobody", "unknown.example.test");
    expect(rcodeOf(new Uint8Array(await c.arrayBuffer()))).toBe(5);
    expect(reached(kids, "path.example.test")).toBe(1);
    expect(reached(home, "nopath.example.test")).toBe(1);
    expect(reached(kids, "nopath.example.test")).toBe(0);
  });

  it("labels metrics by known tenant only", () => {
    const text = bridge.metrics.registry.render();
    expect(text).toMatch(/dotbridge_queries_total\{face="dot",tenant="kids",rcode="NOERROR"\} \d+/);
    expect(text).toContain('tenant="unknown"');
    expect(text).not.toContain('tenant="nobody"');
  });
});
