import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { silentLogger } from "../../src/log/mod.ts";
import { type LocalDoqUpstream, startDoqUpstream } from "../support/doq_upstream.ts";
import { aRecords, buildQuery, connectDot, edeCode, idOf, rcodeOf } from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

/** A bridge whose only upstream is DoQ: DoT and DoH clients reach it through either face. */
describe("DoT and DoH faces to a DoQ upstream", () => {
  let doqUp: LocalDoqUpstream;
  let bridge: Bridge;
  let dir: string;
  let caPem: string;
  let http: Deno.HttpClient;

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    dir = await Deno.makeTempDir({ prefix: "dotbridge-doq-up-" });
    await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
    await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
    doqUp = startDoqUpstream({ cert: pki.server });
    const parsed = parseConfig({
      args: [
        "--listen=127.0.0.1:0",
        "--http-listen=127.0.0.1:0",
        `--cert=${dir}/cert.pem`,
        `--key=${dir}/key.pem`,
        `--upstream-ca=${dir}/ca.pem`,
        "--no-cache",
        "--query-timeout=600ms",
        `--upstream=quic://localhost:${doqUp.port}`,
      ],
    });
    if (parsed.help) throw new Error("help");
    bridge = await startBridge(parsed.config, { logger: silentLogger, sighup: false });
    http = Deno.createHttpClient({ caCerts: [caPem] });
  });

  afterAll(async () => {
    http?.close();
    await bridge?.shutdown();
    await doqUp?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("answers a DoT client through the DoQ upstream (DoT -> DoQ)", async () => {
    const before = doqUp.queries;
    const client = await connectDot({ port: bridge.dot.addr.port, caCerts: [caPem] });
    try {
      const names = Array.from({ length: 30 }, (_, i) => `dot-doq-${i}.example.test`);
      const queries = names.map((n, i) => buildQuery(n, { id: 500 + i }));
      await client.send(...queries);
      const answers = await Promise.all(queries.map((q) => client.waitFor(idOf(q))));
      answers.forEach((a, i) => {
        expect(idOf(a)).toBe(500 + i);
        expect(aRecords(a)).toEqual([`192.0.2.${octetFor(names[i])}`]);
      });
    } finally {
      client.close();
    }
    expect(doqUp.queries - before).toBe(30);
    expect([...doqUp.ids]).toEqual([0]);
    expect(doqUp.connections).toBe(1);
  });

  it("answers a DoH client through the DoQ upstream (DoH -> DoQ)", async () => {
    const before = doqUp.queries;
    const names = Array.from({ length: 20 }, (_, i) => `doh-doq-${i}.example.test`);
    const answers = await Promise.all(names.map(async (name) => {
      const res = await fetch(`https://localhost:${bridge.doh!.addr.port}/dns-query`, {
        method: "POST",
        headers: { "content-type": "application/dns-message" },
        body: buildQuery(name, { id: 0 }).slice(),
        client: http,
      });
      expect(res.status).toBe(200);
      return aRecords(new Uint8Array(await res.arrayBuffer()));
    }));
    answers.forEach((a, i) => expect(a).toEqual([`192.0.2.${octetFor(names[i])}`]));
    expect(doqUp.queries - before).toBe(20);
  });

  it("answers SERVFAIL (EDE 22) when the DoQ upstream hangs, then answers again", async () => {
    const client = await connectDot({ port: bridge.dot.addr.port, caCerts: [caPem] });
    try {
      doqUp.mode = "stall";
      const hung = buildQuery("hung.example.test", { id: 77, edns: true });
      const started = Date.now();
      await client.send(hung);
      const servfail = await client.waitFor(77);
      expect(rcodeOf(servfail)).toBe(2);
      expect(edeCode(servfail)).toBe(22);
      expect(Date.now() - started).toBeLessThan(3000);
      doqUp.mode = "ok";
      const fine = buildQuery("fine.example.test", { id: 78 });
      await client.send(fine);
      expect(aRecords(await client.waitFor(78))).toEqual([
        `192.0.2.${octetFor("fine.example.test")}`,
      ]);
    } finally {
      doqUp.mode = "ok";
      client.close();
    }
  });

  it("refuses ?pin= on quic:// at configuration time, saying why", () => {
    const pin = "n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=";
    expect(() => parseConfig({ args: [`--upstream=quic://localhost:853?pin=${pin}`] }))
      .toThrow(/--upstream.*pins are not supported on quic:\/\//);
  });
});
