/**
 * `--bootstrap HOST=IP`: upstreams named by a host that plain DNS cannot resolve are dialled at
 * the given address, and their certificate is still checked against HOST. Real local DoH and
 * DoT upstreams with leaves issued for `*.bootstrap.test` by the test CA.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { issueCertificate, type IssuedCertificate } from "../../src/pki/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { aRecords, buildQuery, connectDot, edeCode, idOf, rcodeOf } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type LocalDotUpstream, startDotUpstream } from "../support/dot_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const DOH_HOST = "dns.bootstrap.test";
const DOT_HOST = "dot.bootstrap.test";

let pki: TestPki;
let dir: string;
let dohLeaf: IssuedCertificate;
let dotLeaf: IssuedCertificate;
let doh: LocalDohUpstream;
let dot: LocalDotUpstream;
/** Same names, but serving the `localhost` leaf: the name check must fail. */
let dohWrongCert: LocalDohUpstream;
let dotWrongCert: LocalDotUpstream;
let bridges: Bridge[] = [];

beforeAll(async () => {
  pki = await testPki();
  dohLeaf = await issueCertificate(pki.ca, { dnsNames: [DOH_HOST] });
  dotLeaf = await issueCertificate(pki.ca, { dnsNames: [DOT_HOST] });
  doh = await startDohUpstream({ ca: pki.ca, server: dohLeaf });
  dot = await startDotUpstream({ cert: { chainPem: dotLeaf.chainPem, keyPem: dotLeaf.keyPem } });
  dohWrongCert = await startDohUpstream(pki);
  dotWrongCert = await startDotUpstream({ cert: pki.server });
  dir = await Deno.makeTempDir({ prefix: "dotbridge-bootstrap-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
});

afterEach(async () => {
  for (const b of bridges) await b.shutdown();
  bridges = [];
});

afterAll(async () => {
  await doh?.close();
  await dot?.close();
  await dohWrongCert?.close();
  await dotWrongCert?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
});

async function start(upstream: string, args: string[]): Promise<{ port: number; logs: string[] }> {
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "off"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`, "--upstream-ca", `${dir}/ca.pem`],
      ...["--upstream", upstream, "--query-timeout", "3s"],
      ...args,
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  const logs: string[] = [];
  const bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (l) => logs.push(l) }),
    sighup: false,
  });
  bridges.push(bridge);
  return { port: bridge.dot.addr.port, logs };
}

/** One query through the bridge; returns the answer. */
async function ask(port: number, name: string, id: number): Promise<Uint8Array> {
  const c = await connectDot({ port, caCerts: [pki.ca.certPem] });
  try {
    await c.send(buildQuery(name, { id, edns: true }));
    const a = await c.waitFor(id, 8_000);
    expect(idOf(a)).toBe(id);
    return a;
  } finally {
    c.close();
  }
}

function expectResolved(a: Uint8Array, name: string): void {
  expect(rcodeOf(a)).toBe(0);
  expect(aRecords(a)).toEqual([`192.0.2.${octetFor(name)}`]);
}

describe("--bootstrap for a DoH upstream", () => {
  it("dials the bootstrap address and verifies the URL's host name", async () => {
    const url = `https://${DOH_HOST}:${doh.port}/dns-query`;
    const { port } = await start(url, [
      "--upstream-transport",
      "http2",
      "--bootstrap",
      `${DOH_HOST}=127.0.0.1`,
    ]);
    const before = doh.requests.length;
    expectResolved(await ask(port, "boot-doh.example.test", 0x0101), "boot-doh.example.test");
    expectResolved(await ask(port, "boot-doh-2.example.test", 0x0102), "boot-doh-2.example.test");
    expect(doh.requests.slice(before).map((r) => r.name))
      .toEqual(["boot-doh.example.test", "boot-doh-2.example.test"]);
  });

  it("matches the bootstrap host name case-insensitively", async () => {
    const url = `https://${DOH_HOST.toUpperCase()}:${doh.port}/dns-query`;
    const { port } = await start(url, [
      "--upstream-transport",
      "http2",
      "--bootstrap",
      `${DOH_HOST}=127.0.0.1`,
    ]);
    expectResolved(await ask(port, "boot-case.example.test", 0x0103), "boot-case.example.test");
  });

  it("SERVFAILs without --bootstrap: the name does not resolve", async () => {
    const url = `https://${DOH_HOST}:${doh.port}/dns-query`;
    const { port, logs } = await start(url, []);
    const before = doh.requests.length;
    const a = await ask(port, "no-boot-doh.example.test", 0x0201);
    expect(rcodeOf(a)).toBe(2);
    expect(edeCode(a)).toBeDefined();
    expect(doh.requests.length).toBe(before);
    expect(logs.some((l) => l.includes("query failed"))).toBe(true);
  });

  it("SERVFAILs when the server at the bootstrap address has no certificate for the name", async () => {
    const url = `https://${DOH_HOST}:${dohWrongCert.port}/dns-query`;
    const { port } = await start(url, [
      "--upstream-transport",
      "http2",
      "--bootstrap",
      `${DOH_HOST}=127.0.0.1`,
    ]);
    const a = await ask(port, "wrong-cert-doh.example.test", 0x0202);
    expect(rcodeOf(a)).toBe(2);
    expect(dohWrongCert.requests.map((r) => r.name)).not.toContain("wrong-cert-doh.example.test");
  });
});

describe("--bootstrap for a DoT upstream", () => {
  it("dials the bootstrap address, sends the host name as SNI and verifies it", async () => {
    const { port } = await start(`tls://${DOT_HOST}:${dot.port}`, [
      "--bootstrap",
      `${DOT_HOST}=127.0.0.1`,
    ]);
    const before = dot.queries;
    expectResolved(await ask(port, "boot-dot.example.test", 0x0301), "boot-dot.example.test");
    expect(dot.queries).toBe(before + 1);
    expect(dot.handshakes.at(-1)?.servername).toBe(DOT_HOST);
  });

  it("SERVFAILs without --bootstrap: the name does not resolve", async () => {
    const { port } = await start(`tls://${DOT_HOST}:${dot.port}`, []);
    const before = dot.connections;
    const a = await ask(port, "no-boot-dot.example.test", 0x0401);
    expect(rcodeOf(a)).toBe(2);
    expect(dot.connections).toBe(before);
  });

  it("SERVFAILs when the server at the bootstrap address has no certificate for the name", async () => {
    const { port } = await start(`tls://${DOT_HOST}:${dotWrongCert.port}`, [
      "--bootstrap",
      `${DOT_HOST}=127.0.0.1`,
    ]);
    const a = await ask(port, "wrong-cert-dot.example.test", 0x0402);
    expect(rcodeOf(a)).toBe(2);
    expect(dotWrongCert.queries).toBe(0);
  });
});
