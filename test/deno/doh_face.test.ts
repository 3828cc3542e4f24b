import dnsPacket from "dns-packet";
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import { issueCertificate } from "../../src/pki/mod.ts";
import { Buffer } from "node:buffer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import type { DnsJsonResponse } from "../../src/http/json.ts";
import { createLogger, silentLogger } from "../../src/log/mod.ts";
import type { FetchLike } from "../../src/upstream/doh.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const decoder = new TextDecoder();

function query(name: string, id: number, type: dnsPacket.RecordType = "A"): Uint8Array {
  return new Uint8Array(dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: "IN" }],
  }));
}

function aRecords(wire: ArrayBuffer): string[] {
  const packet = dnsPacket.decode(Buffer.from(wire));
  return (packet.answers ?? []).flatMap((a) => (a.type === "A" ? [a.data] : []));
}

function idOf(wire: ArrayBuffer): number {
  const b = new Uint8Array(wire);
  return (b[0] << 8) | b[1];
}

/** Whether a client binary can be run; when it cannot, CI fails and a workstation skips. */
async function available(bin: string, versionFlag: string): Promise<boolean> {
  try {
    await new Deno.Command(bin, { args: [versionFlag], stdout: "null", stderr: "null" }).output();
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

function requireClient(ok: boolean, bin: string, skip: () => void): void {
  if (ok) return;
  if (Deno.env.get("CI") === "true") throw new Error(`${bin} is not installed (required in CI)`);
  skip();
}

async function runClient(bin: string, args: string[]) {
  const out = await new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let upstreamClient: Deno.HttpClient;
let fetchTrustingTestCA: FetchLike;
const tmpDirs: string[] = [];

async function startWith(args: string[], logger = silentLogger): Promise<Bridge> {
  const stateDir = await Deno.makeTempDir({ prefix: "dotbridge-doh-" });
  tmpDirs.push(stateDir);
  const parsed = parseConfig({
    args: [
      "--listen",
      "127.0.0.1:0",
      "--http-listen",
      "127.0.0.1:0",
      "--upstream",
      upstream.url,
      "--state-dir",
      stateDir,
      ...args,
    ],
  });
  if (parsed.help) throw new Error("unexpected --help");
  return await startBridge(parsed.config, { fetch: fetchTrustingTestCA, logger });
}

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  upstreamClient = Deno.createHttpClient({ caCerts: [pki.ca.certPem] });
  fetchTrustingTestCA = (input, init) => fetch(input, { ...init, client: upstreamClient });
});

afterAll(async () => {
  await upstream?.close();
  upstreamClient?.close();
  for (const dir of tmpDirs) await Deno.remove(dir, { recursive: true });
});

describe("DoH face over HTTPS", () => {
  let bridge: Bridge;
  let caPath: string;
  let client: Deno.HttpClient;
  let base: string;

  beforeAll(async () => {
    bridge = await startWith([]);
    caPath = bridge.certificate.trustPath;
    client = Deno.createHttpClient({
      caCerts: [await Deno.readTextFile(caPath)],
      http1: false,
      http2: true,
    });
    base = `https://127.0.0.1:${bridge.doh!.addr.port}`;
  });

  afterAll(async () => {
    client?.close();
    await bridge?.shutdown();
  });

  const h2fetch = (path: string, init: RequestInit = {}) =>
    fetch(`${base}${path}`, { ...init, client });

  it("serves TLS on its own port and agrees to h2 or http/1.1 by ALPN (h2 first)", async () => {
    expect(bridge.doh!.tls).toBe(true);
    expect(bridge.doh!.addr.port).not.toBe(bridge.dot.addr.port);
    const ca = await Deno.readTextFile(caPath);
    for (const offer of [["h2"], ["http/1.1"], ["http/1.1", "h2"]]) {
      const conn = await Deno.connectTls({
        hostname: "127.0.0.1",
        port: bridge.doh!.addr.port,
        caCerts: [ca],
        alpnProtocols: offer,
      });
      try {
        expect((await conn.handshake()).alpnProtocol).toBe(offer.includes("h2") ? "h2" : offer[0]);
      } finally {
        conn.close();
      }
    }
  });

  it("answers GET and POST over HTTP/2 with the right record, ID and max-age", async () => {
    const name = "get.example.test";
    const get = await h2fetch(
      `/dns-query?dns=${query(name, 0).toBase64({ alphabet: "base64url", omitPadding: true })}`,
    );
    expect(get.status).toBe(200);
    expect(get.headers.get("content-type")).toBe("application/dns-message");
    expect(get.headers.get("cache-control")).toBe("max-age=300");
    const getBody = await get.arrayBuffer();
    expect(idOf(getBody)).toBe(0);
    expect(aRecords(getBody)).toEqual([`192.0.2.${octetFor(name)}`]);

    const post = await h2fetch("/dns-query", {
      method: "POST",
      headers: { "content-type": "application/dns-message" },
      body: query("post.example.test", 4242).slice(),
    });
    expect(post.status).toBe(200);
    const postBody = await post.arrayBuffer();
    expect(idOf(postBody)).toBe(4242);
    expect(aRecords(postBody)).toEqual([`192.0.2.${octetFor("post.example.test")}`]);
  });

  it("answers 50 concurrent queries, each with its own record", async () => {
    const names = Array.from({ length: 50 }, (_, i) => `c${i}.concurrent.example.test`);
    const answers = await Promise.all(names.map(async (name, i) => {
      const res = i % 2 === 0
        ? await h2fetch("/dns-query", {
          method: "POST",
          headers: { "content-type": "application/dns-message" },
          body: query(name, i + 1).slice(),
        })
        : await h2fetch(
          `/dns-query?dns=${
            query(name, i + 1).toBase64({ alphabet: "base64url", omitPadding: true })
          }`,
        );
      expect(res.status).toBe(200);
      const body = await res.arrayBuffer();
      return { id: idOf(body), a: aRecords(body) };
    }));
    answers.forEach((answer, i) => {
      expect(answer.id).toBe(i + 1);
      expect(answer.a).toEqual([`192.0.2.${octetFor(names[i])}`]);
    });
  });

  it("answers the JSON API", async () => {
    const res = await h2fetch("/dns-query?name=json.example.test&type=A", {
      headers: { accept: "application/dns-json" },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/dns-json");
    const body = await res.json() as DnsJsonResponse;
    expect(body.Status).toBe(0);
    expect(body.Answer).toEqual([{
      name: "json.example.test.",
      type: 1,
      TTL: 300,
      data: `192.0.2.${octetFor("json.example.test")}`,
    }]);
    const nx = await (await h2fetch("/dns-query?name=nx.example.test", {
      headers: { accept: "application/dns-json" },
    })).json() as DnsJsonResponse;
    expect(nx.Status).toBe(3);
    expect(nx.Authority?.[0].type).toBe(6);
  });

  it("answers a client error with its status, and the health and landing pages", async () => {
    const bad = await h2fetch("/dns-query", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "hello",
    });
    expect(bad.status).toBe(415);
    await bad.body?.cancel();
    const put = await h2fetch("/dns-query", { method: "PUT" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, POST");
    await put.body?.cancel();

    const health = await h2fetch("/health");
    expect(health.status).toBe(200);
    expect((await health.json()).status).toBe("ok");

    const landing = await (await h2fetch("/")).text();
    expect(landing).toContain(`${base}/dns-query`);
    expect(landing).toContain(`port ${bridge.dot.addr.port}`);
    expect(landing).toContain(bridge.certificate.spkiPin);
  });

  it("answers kdig +https", async (ctx) => {
    requireClient(await available("kdig", "--version"), "kdig", () => ctx.skip());
    const name = "kdig-doh.example.test";
    const r = await runClient("kdig", [
      "@127.0.0.1",
      "-p",
      String(bridge.doh!.addr.port),
      "+https",
      `+tls-ca=${caPath}`,
      "+tls-hostname=localhost",
      "+timeout=3",
      "+retry=0",
      name,
    ]);
    expect(r.stdout + r.stderr).toMatch(/status: NOERROR/);
    expect(r.stdout).toContain(`192.0.2.${octetFor(name)}`);
    expect(r.stdout).toContain("HTTP session (HTTP/2-POST)");
  });

  it("answers kdig +https-get", async (ctx) => {
    requireClient(await available("kdig", "--version"), "kdig", () => ctx.skip());
    const name = "kdig-get.example.test";
    const r = await runClient("kdig", [
      "@127.0.0.1",
      "-p",
      String(bridge.doh!.addr.port),
      "+https-get",
      `+tls-ca=${caPath}`,
      "+tls-hostname=localhost",
      "+timeout=3",
      "+retry=0",
      name,
    ]);
    expect(r.stdout).toContain(`192.0.2.${octetFor(name)}`);
    expect(r.stdout).toContain("HTTP session (HTTP/2-GET)");
  });

  it.for([["+https", "dig-doh"], ["+https-get", "dig-get"]] as const)(
    "answers dig %s",
    async ([mode, label], ctx) => {
      requireClient(await available("dig", "-v"), "dig", () => ctx.skip());
      const name = `${label}.example.test`;
      const r = await runClient("dig", [
        `${mode}=/dns-query`,
        `+tls-ca=${caPath}`,
        "+tls-hostname=localhost",
        "+time=3",
        "+tries=1",
        "@127.0.0.1",
        "-p",
        String(bridge.doh!.addr.port),
        name,
      ]);
      expect(r.stdout, r.stderr).toMatch(/status: NOERROR/);
      expect(r.stdout).toContain(`192.0.2.${octetFor(name)}`);
    },
  );

  it("gives curl --http1.1 and curl --http2 the same answers (GET, POST, JSON API, errors)", async (ctx) => {
    requireClient(await available("curl", "--version"), "curl", () => ctx.skip());
    const port = bridge.doh!.addr.port;
    const dir = await Deno.makeTempDir({ prefix: "dotbridge-curl-" });
    tmpDirs.push(dir);
    const body = `${dir}/query.bin`;
    await Deno.writeFile(body, query("curl-post.example.test", 0));
    const b64 = query("curl-get.example.test", 0).toBase64({
      alphabet: "base64url",
      omitPadding: true,
    });
    const requests: [string, string[]][] = [
      ["GET ?dns=", [`https://localhost:${port}/dns-query?dns=${b64}`]],
      ["POST", [
        "-H",
        "content-type: application/dns-message",
        "--data-binary",
        `@${body}`,
        `https://localhost:${port}/dns-query`,
      ]],
      ["JSON API", [`https://localhost:${port}/dns-query?name=curl-json.example.test&type=A`]],
      ["bad dns=", [`https://localhost:${port}/dns-query?dns=%%%`]],
      ["unknown path", [`https://localhost:${port}/nowhere`]],
      ["wrong method", ["-X", "PUT", `https://localhost:${port}/dns-query`]],
    ];
    for (const [what, args] of requests) {
      const replies = [];
      for (const version of ["--http1.1", "--http2"]) {
        const out = `${dir}/out${version}`;
        const r = await runClient("curl", [
          "-sS",
          version,
          "--cacert",
          caPath,
          "-o",
          out,
          "-w",
          "%{http_version} %{http_code} %{content_type}",
          ...args,
        ]);
        expect(r.code, `${what} ${version}: ${r.stderr}`).toBe(0);
        const [httpVersion, status, type] = r.stdout.split(" ");
        expect(httpVersion, `${what} ${version}`).toBe(version === "--http2" ? "2" : "1.1");
        replies.push({ status, type, body: await Deno.readFile(out) });
      }
      expect(replies[1], what).toEqual(replies[0]);
      if (what === "GET ?dns=") {
        expect(replies[0].status).toBe("200");
        expect(aRecords(replies[0].body.slice().buffer)).toEqual([
          `192.0.2.${octetFor("curl-get.example.test")}`,
        ]);
      }
      if (what === "bad dns=") expect(replies[0].status).toBe("400");
      if (what === "unknown path") expect(replies[0].status).toBe("404");
      if (what === "wrong method") expect(replies[0].status).toBe("405");
    }
  });
});

describe("DoH face over plain HTTP behind a trusted proxy", () => {
  it("answers over http://, takes the client address from the proxy header", async () => {
    const logs: string[] = [];
    const bridge = await startWith(
      ["--http-tls=false", "--trusted-proxy-header", "X-Forwarded-For", "--log-queries"],
      createLogger({ level: "info", format: "json", sink: (line) => logs.push(line) }),
    );
    try {
      expect(bridge.doh!.tls).toBe(false);
      const name = "proxied.example.test";
      const res = await fetch(`http://127.0.0.1:${bridge.doh!.addr.port}/dns-query`, {
        method: "POST",
        headers: {
          "content-type": "application/dns-message",
          "x-forwarded-for": "203.0.113.1, 198.51.100.23",
        },
        body: query(name, 31).slice(),
      });
      expect(res.status).toBe(200);
      const body = await res.arrayBuffer();
      expect(idOf(body)).toBe(31);
      expect(aRecords(body)).toEqual([`192.0.2.${octetFor(name)}`]);

      const direct = await fetch(
        `http://127.0.0.1:${bridge.doh!.addr.port}/dns-query?dns=${
          query("direct.example.test", 32).toBase64({ alphabet: "base64url", omitPadding: true })
        }`,
      );
      expect(direct.status).toBe(200);
      await direct.body?.cancel();

      const events = logs.map((l) => JSON.parse(l)).filter((e) => e.msg === "query");
      expect(events.find((e) => e.name === name)).toMatchObject({
        face: "doh",
        client: "198.51.100.23",
      });
      expect(events.find((e) => e.name === "direct.example.test")).toMatchObject({
        face: "doh",
        client: "127.0.0.1",
      });
    } finally {
      await bridge.shutdown();
    }
  });

  it("stops serving after shutdown", async () => {
    const bridge = await startWith(["--http-tls=false"]);
    const port = bridge.doh!.addr.port;
    const ok = await fetch(`http://127.0.0.1:${port}/health`);
    expect(ok.status).toBe(200);
    await ok.body?.cancel();
    await bridge.shutdown();
    await expect(Deno.connect({ hostname: "127.0.0.1", port })).rejects.toThrow();
  });

  it("is not started with --http-listen off", async () => {
    const bridge = await startWith(["--http-listen", "off"]);
    try {
      expect(bridge.doh).toBeUndefined();
    } finally {
      await bridge.shutdown();
    }
  });
});

describe("DoH face: connection-level limits", () => {
  it("caps connections per address, closes non-HTTP/2 bytes, and keeps serving others", async () => {
    const bridge = await startWith(["--max-connections-per-ip", "2"]);
    try {
      const ca = await Deno.readTextFile(bridge.certificate.trustPath);
      const port = bridge.doh!.addr.port;
      const dial = async () => {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port,
          caCerts: [ca],
          alpnProtocols: ["h2"],
        });
        await conn.handshake();
        return conn;
      };
      const held = [await dial(), await dial()];
      // The third from the same address is closed at accept: its handshake cannot complete.
      const third = await dial().then((c) => c.read(new Uint8Array(64)).finally(() => c.close()))
        .then((n) => (n === null ? "closed" : "open"), () => "closed");
      expect(third).toBe("closed");
      // Bytes that are not the HTTP/2 preface: the server closes that connection.
      await held[0].write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
      const buf = new Uint8Array(1024);
      let n: number | null = 0;
      while (n !== null) n = await held[0].read(buf).catch(() => null);
      held[0].close();
      held[1].close();
      // The server frees a slot once it has seen the close.
      for (let i = 0; i < 50 && bridge.doh!.connections > 0; i++) {
        await new Promise((r) => setTimeout(r, 20));
      }
      // Slots are free again: a real client gets answers.
      const client = Deno.createHttpClient({ caCerts: [ca], http1: false, http2: true });
      try {
        const name = "after.example.test";
        const res = await fetch(
          `https://127.0.0.1:${port}/dns-query?dns=${
            query(name, 0).toBase64({ alphabet: "base64url", omitPadding: true })
          }`,
          { client },
        );
        expect(res.status).toBe(200);
        expect(aRecords(await res.arrayBuffer())).toEqual([`192.0.2.${octetFor(name)}`]);
      } finally {
        client.close();
      }
    } finally {
      await bridge.shutdown();
    }
  });

  it("swaps the certificate for new connections on setCertificate()", async () => {
    const bridge = await startWith([]);
    try {
      const port = bridge.doh!.addr.port;
      const fingerprint = () =>
        new Promise<string>((resolve, reject) => {
          const socket = tls.connect({
            host: "127.0.0.1",
            port,
            servername: "localhost",
            rejectUnauthorized: false,
            ALPNProtocols: ["h2"],
          }, () => {
            resolve(socket.getPeerCertificate().fingerprint256);
            socket.destroy();
          });
          socket.once("error", reject);
        });
      const before = await fingerprint();
      const leaf = await issueCertificate(pki.ca, { dnsNames: ["localhost"] });
      await bridge.doh!.setCertificate(leaf.chainPem, leaf.keyPem);
      // A connection that lands on the old listener in the instant it closes is reset (unless
      // net.ipv4.tcp_migrate_req=1; see docs/platform-notes.md#tls-servers): give the swap
      // that instant.
      await new Promise((r) => setTimeout(r, 100));
      const after = await fingerprint();
      expect(after).not.toBe(before);
      expect(after).toBe(new X509Certificate(leaf.certPem).fingerprint256);
      const client = Deno.createHttpClient({ caCerts: [pki.ca.certPem], http1: false });
      try {
        const res = await fetch(`https://localhost:${port}/health`, { client });
        expect(res.status).toBe(200);
        await res.body?.cancel();
      } finally {
        client.close();
      }
    } finally {
      await bridge.shutdown();
    }
  });
});
