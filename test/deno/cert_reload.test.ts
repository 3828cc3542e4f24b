/**
 * Certificate reload on a running bridge, over real TLS: new connections get the new leaf,
 * established connections keep working, bad pairs are refused. Paths: `reloadCertificate()`,
 * a file change, and SIGHUP.
 */
import { Buffer } from "node:buffer";
import { createHash, X509Certificate } from "node:crypto";
import http2 from "node:http2";
import tls from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { issueCertificate, type IssuedCertificate } from "../../src/pki/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import {
  aRecords,
  buildQuery,
  connectDot,
  type DotClient,
  idOf,
  rcodeOf,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

interface Running {
  bridge: Bridge;
  logs: string[];
  certFile: string;
  keyFile: string;
  dotPort: number;
  dohPort: number;
  close(): Promise<void>;
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let running: Running[] = [];
let cleanups: (() => void)[] = [];

function leaf(): Promise<IssuedCertificate> {
  return issueCertificate(pki.ca, { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
}

async function writePair(r: Running, cert: string, key: string): Promise<void> {
  await Deno.writeTextFile(r.certFile, cert);
  await Deno.writeTextFile(r.keyFile, key);
}

async function start(first: IssuedCertificate, sighup = false): Promise<Running> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-reload-" });
  const certFile = `${dir}/cert.pem`;
  const keyFile = `${dir}/key.pem`;
  await Deno.writeTextFile(certFile, first.chainPem);
  await Deno.writeTextFile(keyFile, first.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
      ...["--cert", certFile, "--key", keyFile],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  const logs: string[] = [];
  const bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (line) => logs.push(line) }),
    sighup,
  });
  const r: Running = {
    bridge,
    logs,
    certFile,
    keyFile,
    dotPort: bridge.dot.addr.port,
    dohPort: bridge.doh!.addr.port,
    async close() {
      await bridge.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
  running.push(r);
  return r;
}

/** The SPKI pin of the leaf a fresh TLS connection to `port` is served (RFC 7858 form). */
function servedPin(port: number, alpn: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: "127.0.0.1",
      port,
      servername: "localhost",
      ca: [pki.ca.certPem],
      ALPNProtocols: [alpn],
    }, () => {
      const raw = socket.getPeerCertificate(true).raw;
      const spki = new X509Certificate(raw).publicKey.export({ type: "spki", format: "der" });
      socket.destroy();
      resolve(createHash("sha256").update(spki).digest("base64"));
    });
    socket.setTimeout(5_000, () => socket.destroy(new Error("TLS connect timed out")));
    socket.once("error", reject);
  });
}

async function pins(r: Running): Promise<{ dot: string; doh: string }> {
  return { dot: await servedPin(r.dotPort, "dot"), doh: await servedPin(r.dohPort, "h2") };
}

async function dot(r: Running): Promise<DotClient> {
  const c = await connectDot({ port: r.dotPort, caCerts: [pki.ca.certPem] });
  cleanups.push(() => c.close());
  return c;
}

async function expectAnswers(c: DotClient, id: number, name: string): Promise<void> {
  await c.send(buildQuery(name, { id }));
  const a = await c.waitFor(id);
  expect(idOf(a)).toBe(id);
  expect(aRecords(a)).toEqual([`192.0.2.${octetFor(name)}`]);
}

/** One long-lived HTTP/2 connection to the DoH face. */
function h2Client(r: Running) {
  const session = http2.connect(`https://localhost:${r.dohPort}`, {
    ca: [pki.ca.certPem],
    host: "127.0.0.1",
  } as http2.SecureClientSessionOptions);
  session.on("error", () => {});
  cleanups.push(() => session.destroy());
  let sockets = 0;
  session.on("connect", () => sockets++);
  return {
    get connects() {
      return sockets;
    },
    get closed() {
      return session.closed || session.destroyed;
    },
    query(name: string): Promise<Uint8Array> {
      return new Promise((resolve, reject) => {
        const stream = session.request({
          ":method": "POST",
          ":path": "/dns-query",
          "content-type": "application/dns-message",
        });
        const chunks: Uint8Array[] = [];
        let status = 0;
        stream.on("response", (h) => (status = Number(h[":status"])));
        stream.on("data", (c: Uint8Array) => chunks.push(c));
        stream.on("end", () => {
          if (status !== 200) reject(new Error(`HTTP ${status}`));
          else resolve(new Uint8Array(Buffer.concat(chunks)));
        });
        stream.on("error", reject);
        stream.setTimeout(5_000, () => stream.close());
        stream.end(buildQuery(name, { id: 0 }));
      });
    },
  };
}

async function poll(what: string, cond: () => Promise<boolean> | boolean, ms = 5_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
});

afterEach(async () => {
  for (const f of cleanups) f();
  cleanups = [];
  for (const r of running) await r.close();
  running = [];
});

afterAll(async () => {
  await upstream?.close();
});

describe("certificate reload", () => {
  it("reloadCertificate(): new connections get the new leaf, established DoT ones keep working", async () => {
    const [first, second] = [await leaf(), await leaf()];
    expect(first.spkiPin).not.toBe(second.spkiPin);
    const r = await start(first);
    expect(await pins(r)).toEqual({ dot: first.spkiPin, doh: first.spkiPin });
    expect(r.bridge.certificate.spkiPin).toBe(first.spkiPin);

    const a = await dot(r);
    await expectAnswers(a, 0x0101, "before-reload.example.test");
    await writePair(r, second.chainPem, second.keyPem);
    expect(await r.bridge.reloadCertificate("test")).toBe(true);
    expect(r.bridge.certificate.spkiPin).toBe(second.spkiPin);
    expect(await pins(r)).toEqual({ dot: second.spkiPin, doh: second.spkiPin });
    expect(r.logs.some((l) => l.includes("certificate reloaded") && l.includes("reason=test")))
      .toBe(true);

    // Connection A (DoT) was opened under the first leaf and keeps going.
    await expectAnswers(a, 0x0102, "after-reload.example.test");
    expect(a.isClosed).toBe(false);
    // The DoH face swapped its certificate in place: a new HTTP/2 connection answers under the
    // new leaf.
    const h = h2Client(r);
    expect(aRecords(await h.query("h2-after.example.test")))
      .toEqual([`192.0.2.${octetFor("h2-after.example.test")}`]);

    // A fresh DoT client trusting the CA works end to end with the new leaf.
    const b = await dot(r);
    await expectAnswers(b, 0x0103, "new-conn.example.test");

    // Nothing changed since: a second reload has nothing to do.
    expect(await r.bridge.reloadCertificate("again")).toBe(false);
  });

  it("picks up a file change without a reload call", async () => {
    const [first, second, third] = [await leaf(), await leaf(), await leaf()];
    const r = await start(first);
    const a = await dot(r);
    await writePair(r, second.chainPem, second.keyPem);
    expect(await r.bridge.reloadCertificate()).toBe(true);
    expect((await pins(r)).dot).toBe(second.spkiPin);

    await writePair(r, third.chainPem, third.keyPem);
    await poll("new connections to see the third leaf", async () => {
      // The DoH face swaps servers on the port (docs/platform-notes.md#tls-servers: a
      // connection arriving in that instant can be reset); such a probe is a "not yet", any other failure fails the test.
      const p = await pins(r).catch((e) => {
        if ((e as { code?: string }).code === "ECONNRESET") return undefined;
        throw e;
      });
      return p?.dot === third.spkiPin && p?.doh === third.spkiPin;
    });
    expect(r.logs.some((l) => l.includes("certificate reloaded") && l.includes("file change")))
      .toBe(true);
    await expectAnswers(a, 0x0201, "after-file-change.example.test");
  });

  const badPairs: [
    string,
    (other: IssuedCertificate, fresh: IssuedCertificate) => [string, string],
  ][] = [
    ["the key of another certificate", (other, fresh) => [fresh.chainPem, other.keyPem]],
    ["garbage in both files", () => ["not a certificate\n", "not a key\n"]],
    ["a truncated certificate", (_o, fresh) => [fresh.chainPem.slice(0, 200), fresh.keyPem]],
    [
      "a garbage key",
      (
        _o,
        fresh,
      ) => [fresh.chainPem, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"],
    ],
  ];
  for (const [what, make] of badPairs) {
    it(`refuses ${what} and keeps serving the old certificate`, async () => {
      const [first, other, fresh] = [await leaf(), await leaf(), await leaf()];
      const r = await start(first);
      const a = await dot(r);
      const [cert, key] = make(other, fresh);
      await writePair(r, cert, key);
      expect(await r.bridge.reloadCertificate("bad")).toBe(false);
      expect(
        r.logs.some((l) => l.includes("certificate reload refused") && l.includes("reason=bad")),
      )
        .toBe(true);
      expect(r.logs.some((l) => l.includes("certificate reloaded"))).toBe(false);
      expect(await pins(r)).toEqual({ dot: first.spkiPin, doh: first.spkiPin });
      expect(r.bridge.certificate.spkiPin).toBe(first.spkiPin);
      await expectAnswers(a, 0x0301, "still-served.example.test");
      const b = await dot(r);
      await expectAnswers(b, 0x0302, "new-after-refusal.example.test");

      // A good pair afterwards is taken.
      await writePair(r, fresh.chainPem, fresh.keyPem);
      expect(await r.bridge.reloadCertificate("fixed")).toBe(true);
      expect((await pins(r)).dot).toBe(fresh.spkiPin);
    });
  }

  it("refuses an expired certificate", async () => {
    const first = await leaf();
    const expired = await issueCertificate(pki.ca, {
      dnsNames: ["localhost"],
      notBefore: new Date(Date.now() - 3 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    const r = await start(first);
    await writePair(r, expired.chainPem, expired.keyPem);
    expect(await r.bridge.reloadCertificate("expired")).toBe(false);
    expect(r.logs.some((l) => l.includes("certificate reload refused") && l.includes("expired")))
      .toBe(true);
    expect((await pins(r)).dot).toBe(first.spkiPin);
  });

  it("reloads on SIGHUP", async () => {
    const [first, second] = [await leaf(), await leaf()];
    const r = await start(first, true); // the only bridge with SIGHUP on in this file
    const a = await dot(r);
    await writePair(r, second.chainPem, second.keyPem);
    Deno.kill(Deno.pid, "SIGHUP");
    await poll(
      "the SIGHUP reload",
      () => r.logs.some((l) => l.includes("certificate reloaded") && l.includes("reason=SIGHUP")),
    );
    expect(await pins(r)).toEqual({ dot: second.spkiPin, doh: second.spkiPin });
    await expectAnswers(a, 0x0401, "after-sighup.example.test");
    expect(rcodeOf(
      await (async () => {
        const b = await dot(r);
        await b.send(buildQuery("sighup-new.example.test", { id: 0x0402 }));
        return b.waitFor(0x0402);
      })(),
    )).toBe(0);
  });
});
