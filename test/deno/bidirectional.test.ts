import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { silentLogger } from "../../src/log/mod.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type LocalDotUpstream, startDotUpstream } from "../support/dot_upstream.ts";
import { aRecords, buildQuery, connectDot, idOf } from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

/**
 * One process, both directions at once: DoT and DoH clients together, through one resolver, to
 * a DoT upstream and a DoH upstream (round-robin), and a DoH client whose queries can only be
 * answered through the DoT upstream.
 */
describe("both faces to both upstream kinds, at once", () => {
  let dotUp: LocalDotUpstream;
  let dohUp: LocalDohUpstream;
  let mixed: Bridge;
  let dotOnly: Bridge;
  let dir: string;
  let caPem: string;
  let http: Deno.HttpClient;

  async function start(upstreams: string[]): Promise<Bridge> {
    const parsed = parseConfig({
      args: [
        "--listen=127.0.0.1:0",
        "--http-listen=127.0.0.1:0",
        `--cert=${dir}/cert.pem`,
        `--key=${dir}/key.pem`,
        `--upstream-ca=${dir}/ca.pem`,
        "--upstream-strategy=round-robin",
        "--no-cache",
        ...upstreams.map((u) => `--upstream=${u}`),
      ],
    });
    if (parsed.help) throw new Error("help");
    return await startBridge(parsed.config, { logger: silentLogger, sighup: false });
  }

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    dir = await Deno.makeTempDir({ prefix: "dotbridge-both-" });
    await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
    await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
    dotUp = await startDotUpstream({ cert: pki.server });
    dohUp = await startDohUpstream(pki);
    const dotUrl = `tls://127.0.0.1:${dotUp.port}#localhost`;
    mixed = await start([dotUrl, dohUp.url]);
    dotOnly = await start([dotUrl]);
    http = Deno.createHttpClient({ caCerts: [caPem] });
  });

  afterAll(async () => {
    http?.close();
    await mixed?.shutdown();
    await dotOnly?.shutdown();
    await dotUp?.close();
    await dohUp?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  async function viaDoh(bridge: Bridge, name: string): Promise<string[]> {
    const res = await fetch(`https://localhost:${bridge.doh!.addr.port}/dns-query`, {
      method: "POST",
      headers: { "content-type": "application/dns-message" },
      body: buildQuery(name, { id: 0 }).slice(),
      client: http,
    });
    expect(res.status).toBe(200);
    return aRecords(new Uint8Array(await res.arrayBuffer()));
  }

  it("answers a DoT client and a DoH client at the same time, over both upstream kinds", async () => {
    const dotBefore = dotUp.queries;
    const dohBefore = dohUp.requests.length;
    const client = await connectDot({ port: mixed.dot.addr.port, caCerts: [caPem] });
    try {
      const dotNames = Array.from({ length: 20 }, (_, i) => `dot-${i}.example.test`);
      const dohNames = Array.from({ length: 20 }, (_, i) => `doh-${i}.example.test`);
      const queries = dotNames.map((n, i) => buildQuery(n, { id: 100 + i }));
      const [dotAnswers, dohAnswers] = await Promise.all([
        (async () => {
          await client.send(...queries);
          return await Promise.all(queries.map((q) => client.waitFor(idOf(q))));
        })(),
        Promise.all(dohNames.map((n) => viaDoh(mixed, n))),
      ]);
      dotAnswers.forEach((a, i) =>
        expect(aRecords(a)).toEqual([`192.0.2.${octetFor(dotNames[i])}`])
      );
      dohAnswers.forEach((a, i) => expect(a).toEqual([`192.0.2.${octetFor(dohNames[i])}`]));
    } finally {
      client.close();
    }
    // Round-robin spread the 40 queries over both upstream kinds.
    expect(dotUp.queries - dotBefore).toBeGreaterThan(5);
    expect(dohUp.requests.length - dohBefore).toBeGreaterThan(5);
  });

  it("answers DoH clients through a DoT upstream alone (the DoH -> DoT direction)", async () => {
    const before = dotUp.queries;
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => viaDoh(dotOnly, `only-dot-${i}.example.test`)),
    );
    answers.forEach((a, i) =>
      expect(a).toEqual([`192.0.2.${octetFor(`only-dot-${i}.example.test`)}`])
    );
    expect(dotUp.queries - before).toBe(30);
  });

  it("loses none of the DoH queries in flight when the DoT upstream drops its connection", async () => {
    dotUp.dropAfter(5, 1);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => viaDoh(dotOnly, `drop-${i}.example.test`)),
    );
    answers.forEach((a, i) => expect(a).toEqual([`192.0.2.${octetFor(`drop-${i}.example.test`)}`]));
    expect(dotUp.dropped).toBeGreaterThanOrEqual(1);
  });

  const hasKdig = (() => {
    try {
      return new Deno.Command("kdig", { args: ["--version"], stdout: "null", stderr: "null" })
        .outputSync().success;
    } catch {
      return false;
    }
  })();
  const inCi = Deno.env.get("CI") === "true";

  it.skipIf(!hasKdig && !inCi)(
    "kdig +https reaches the DoT upstream through the DoH face",
    async () => {
      if (!hasKdig) throw new Error("kdig (knot-dnsutils) is required in CI");
      const out = await new Deno.Command("kdig", {
        args: [
          "@127.0.0.1",
          "-p",
          String(dotOnly.doh!.addr.port),
          "+https",
          `+tls-ca=${dir}/ca.pem`,
          "+tls-hostname=localhost",
          "+timeout=3",
          "+retry=0",
          "+short",
          "kdig-https.example.test",
        ],
        stdout: "piped",
        stderr: "piped",
      }).output();
      expect(new TextDecoder().decode(out.stdout).trim()).toBe(
        `192.0.2.${octetFor("kdig-https.example.test")}`,
      );
    },
  );
});
