import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { issueCertificate } from "../../src/pki/mod.ts";
import { createLogger, silentLogger } from "../../src/log/mod.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { aRecords, buildQuery, connectDot, edeCode, idOf, rcodeOf } from "../support/dot_client.ts";
import { connectDoq } from "../support/doq_client.ts";
import { addressesIn, installed, runClient } from "../support/clients.ts";
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

/** Whether kdig runs; when it does not, CI fails and a workstation skips. */
async function requireKdig(skip: () => void): Promise<void> {
  if (await installed("kdig", "--version")) return;
  if (Deno.env.get("CI") === "true") throw new Error("kdig is not installed (required in CI)");
  skip();
}

const hex = (text: string) => new TextEncoder().encode(text).toHex();

/**
 * Issue #19, tenant selection is no authentication: `work` (local records with an internal
 * address, its own upstream) may be used from 192.0.2.0/24 only, so not from the loopback
 * clients here; `kids` has an id and is chosen by it alone; `lab` is allowed from loopback;
 * `open` has neither id nor allow list, so start-up warns about it. Each selector is tried: the
 * EDNS option and SNI with kdig over DoT, the DoH path over HTTPS.
 */
describe("tenant trust boundaries over real sockets", () => {
  const WORK_ADDRESS = "10.0.0.5";
  const KIDS_ID = "9y65g5srsm";
  let home: LocalDohUpstream;
  let work: LocalDohUpstream;
  let kids: LocalDohUpstream;
  let bridge: Bridge;
  let dir: string;
  let caPem: string;
  let http: Deno.HttpClient;
  const logLines: string[] = [];

  const reached = (up: LocalDohUpstream, name: string) =>
    up.requests.filter((r) => r.name === name).length;

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    home = await startDohUpstream(pki);
    work = await startDohUpstream(pki);
    kids = await startDohUpstream(pki);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-tenant-trust-" });
    const leaf = await issueCertificate(pki.ca, {
      dnsNames: ["localhost", "dot.example.test", "*.dot.example.test"],
      ipAddresses: ["127.0.0.1"],
    });
    await Deno.writeTextFile(`${dir}/cert.pem`, leaf.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, leaf.keyPem);
    await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
    await Deno.writeTextFile(`${dir}/work.hosts`, `${WORK_ADDRESS} intranet.work.test\n`);
    await Deno.writeTextFile(
      `${dir}/tenants.json`,
      JSON.stringify({
        tenants: {
          work: {
            upstream: [work.url],
            cache: false,
            "local-records": `${dir}/work.hosts`,
            allow: ["192.0.2.0/24"],
          },
          kids: { upstream: [kids.url], cache: false, id: KIDS_ID },
          lab: { upstream: [kids.url], cache: false, allow: ["127.0.0.0/8", "::1"] },
          open: { upstream: [kids.url], cache: false },
        },
      }),
    );
    const parsed = parseConfig({
      args: [
        "--listen=127.0.0.1:0",
        "--http-listen=127.0.0.1:0",
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
    const logger = createLogger({ sink: (line) => logLines.push(line) });
    bridge = await startBridge(parsed.config, { logger, sighup: false });
    http = Deno.createHttpClient({ caCerts: [caPem] });
  });

  afterAll(async () => {
    http?.close();
    await bridge?.shutdown();
    await home?.close();
    await work?.close();
    await kids?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  /** kdig over DoT to the bridge, with an SNI and an EDNS option if given. */
  function kdig(name: string, options: { sni?: string; edns?: string } = {}) {
    return runClient("kdig", [
      "@127.0.0.1",
      "-p",
      String(bridge.dot.addr.port),
      `+tls-ca=${dir}/ca.pem`,
      `+tls-hostname=${options.sni ?? "dot.example.test"}`,
      ...(options.sni ? [`+tls-sni=${options.sni}`] : []),
      ...(options.edns ? [`+ednsopt=65011:${hex(options.edns)}`] : []),
      "+timeout=3",
      "+retry=0",
      name,
    ]);
  }

  /** kdig over DoH to `/dns-query/<selector>`. */
  function kdigDoh(name: string, selector: string) {
    return runClient("kdig", [
      "@127.0.0.1",
      "-p",
      String(bridge.doh!.addr.port),
      `+https=/dns-query/${selector}`,
      `+tls-ca=${dir}/ca.pem`,
      "+tls-hostname=localhost",
      "+timeout=3",
      "+retry=0",
      name,
    ]);
  }

  /** One query's answer bytes over DoT, choosing a tenant by SNI or EDNS option. */
  async function dotWire(name: string, by: { sni?: string; edns?: string }): Promise<Uint8Array> {
    const client = await connectDot({
      port: bridge.dot.addr.port,
      caCerts: [caPem],
      servername: by.sni ?? "dot.example.test",
    });
    try {
      const options = by.edns ? [{ code: 65011, data: new TextEncoder().encode(by.edns) }] : [];
      const q = buildQuery(name, { id: 4242, options });
      await client.send(q);
      return await client.waitFor(idOf(q));
    } finally {
      client.close();
    }
  }

  /** One DoH POST to `/dns-query/<selector>`: what the client sees of the HTTP answer. */
  async function dohAnswer(name: string, selector: string) {
    const r = await fetch(`https://localhost:${bridge.doh!.addr.port}/dns-query/${selector}`, {
      method: "POST",
      headers: { "content-type": "application/dns-message" },
      body: buildQuery(name, { id: 0 }).slice(),
      client: http,
    });
    return {
      status: r.status,
      type: r.headers.get("content-type"),
      cacheControl: r.headers.get("cache-control"),
      wire: new Uint8Array(await r.arrayBuffer()),
    };
  }

  it("keeps a client outside a tenant's allow list out by EDNS option, SNI and DoH path", async (ctx) => {
    await requireKdig(() => ctx.skip());
    const name = "intranet.work.test";
    const answers = [
      await kdig(name, { edns: "work" }),
      await kdig(name, { sni: "work.dot.example.test" }),
      await kdigDoh(name, "work"),
    ];
    for (const r of answers) {
      expect(r.stdout).toMatch(/status: REFUSED/);
      expect(r.stdout).toContain("EDE: 18 (Prohibited): 'tenant not available'");
      expect(r.stdout).not.toContain(WORK_ADDRESS);
    }
    expect(reached(work, name)).toBe(0);
    const upstreamName = "outside.work.test";
    expect(rcodeOf(await dotWire(upstreamName, { edns: "work" }))).toBe(5);
    expect(rcodeOf(await dotWire(upstreamName, { sni: "work.dot.example.test" }))).toBe(5);
    expect(rcodeOf((await dohAnswer(upstreamName, "work")).wire)).toBe(5);
    expect(reached(work, upstreamName) + reached(home, upstreamName)).toBe(0);
  });

  it("lets a client inside a tenant's allow list in by each selector", async (ctx) => {
    await requireKdig(() => ctx.skip());
    const byEdns = await kdig("lab-edns.example.test", { edns: "lab" });
    const bySni = await kdig("lab-sni.example.test", { sni: "lab.dot.example.test" });
    const byPath = await kdigDoh("lab-path.example.test", "lab");
    for (const [r, name] of [[byEdns, "lab-edns"], [bySni, "lab-sni"], [byPath, "lab-path"]]) {
      const full = `${name}.example.test`;
      expect(addressesIn((r as { stdout: string }).stdout, full)).toEqual([
        `192.0.2.${octetFor(full)}`,
      ]);
      expect(reached(kids, full)).toBe(1);
      expect(reached(home, full)).toBe(0);
    }
  });

  it("answers a not-allowed tenant exactly as an unknown one, by each selector", async () => {
    const name = "same.example.test";
    const byEdns = [await dotWire(name, { edns: "work" }), await dotWire(name, { edns: "nosuch" })];
    const bySni = [
      await dotWire(name, { sni: "work.dot.example.test" }),
      await dotWire(name, { sni: "nosuch.dot.example.test" }),
    ];
    const byPath = [await dohAnswer(name, "work"), await dohAnswer(name, "nosuch")];
    for (const [notAllowed, unknown] of [byEdns, bySni, [byPath[0].wire, byPath[1].wire]]) {
      expect(rcodeOf(notAllowed)).toBe(5);
      expect(notAllowed).toEqual(unknown);
      const text = new TextDecoder().decode(notAllowed);
      expect(text).not.toMatch(/work|nosuch|unknown/);
    }
    expect({ ...byPath[0], wire: undefined }).toEqual({ ...byPath[1], wire: undefined });
    expect(edeCode(byEdns[0])).toBe(18);
  });

  it("selects a tenant with an id by the id, by each selector", async (ctx) => {
    await requireKdig(() => ctx.skip());
    const byEdns = await kdig("id-edns.example.test", { edns: KIDS_ID });
    const bySni = await kdig("id-sni.example.test", { sni: `${KIDS_ID}.dot.example.test` });
    const byPath = await kdigDoh("id-path.example.test", KIDS_ID);
    for (const [r, name] of [[byEdns, "id-edns"], [bySni, "id-sni"], [byPath, "id-path"]]) {
      const full = `${name}.example.test`;
      expect(addressesIn((r as { stdout: string }).stdout, full)).toEqual([
        `192.0.2.${octetFor(full)}`,
      ]);
      expect(reached(kids, full)).toBe(1);
    }
    // By SNI and by the EDNS option alike: the tenant's name, never its id.
    expect(bridge.metrics.registry.render()).toMatch(
      /dotbridge_queries_total\{face="dot",tenant="kids",rcode="NOERROR"\} 2/,
    );
    expect(bridge.metrics.registry.render()).not.toContain(KIDS_ID);
  });

  it("does not select a tenant with an id by its name, by any selector", async (ctx) => {
    await requireKdig(() => ctx.skip());
    const answers = [
      await kdig("name-edns.example.test", { edns: "kids" }),
      await kdig("name-sni.example.test", { sni: "kids.dot.example.test" }),
      await kdigDoh("name-path.example.test", "kids"),
    ];
    for (const r of answers) expect(r.stdout).toMatch(/status: REFUSED/);
    for (const n of ["name-edns", "name-sni", "name-path"]) {
      expect(reached(kids, `${n}.example.test`) + reached(home, `${n}.example.test`)).toBe(0);
    }
    const unknown = await dotWire("by-name.example.test", { edns: "nosuch" });
    expect(await dotWire("by-name.example.test", { edns: "kids" })).toEqual(unknown);
  });

  it("warns at start-up about the tenant any client can choose by name, and only that one", () => {
    const warnings = logLines.filter((l) => l.includes("can be selected by name by any client"));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain("level=warn");
    expect(warnings[0]).toMatch(/tenants: open can be selected/);
    expect(warnings[0]).toContain("EDNS option 65011");
    expect(warnings[0]).toContain("DoH path /dns-query/<name>");
    expect(warnings[0]).toContain("SNI <name>.dot.example.test");
  });

  it("does not warn when every tenant has an id or an allow list", async () => {
    await Deno.writeTextFile(
      `${dir}/safe.json`,
      JSON.stringify({
        tenants: {
          kids: { upstream: [kids.url], id: KIDS_ID },
          lab: { upstream: [kids.url], allow: ["127.0.0.0/8"] },
        },
      }),
    );
    const lines: string[] = [];
    const parsed = parseConfig({
      args: [
        "--listen=127.0.0.1:0",
        "--http-listen=127.0.0.1:0",
        `--cert=${dir}/cert.pem`,
        `--key=${dir}/key.pem`,
        `--upstream-ca=${dir}/ca.pem`,
        `--upstream=${home.url}`,
        `--tenants=${dir}/safe.json`,
      ],
    });
    if (parsed.help) throw new Error("help");
    const safe = await startBridge(parsed.config, {
      logger: createLogger({ sink: (line) => lines.push(line) }),
      sighup: false,
    });
    try {
      const answer = await fetch(`https://localhost:${safe.doh!.addr.port}/dns-query/${KIDS_ID}`, {
        method: "POST",
        headers: { "content-type": "application/dns-message" },
        body: buildQuery("safe.example.test", { id: 0 }).slice(),
        client: http,
      });
      expect(aRecords(new Uint8Array(await answer.arrayBuffer()))).toHaveLength(1);
    } finally {
      await safe.shutdown();
    }
    expect(lines.join("\n")).not.toContain("can be selected by name");
  });
});
