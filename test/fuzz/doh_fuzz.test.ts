/**
 * Property-based fuzzing of the real DoH face over HTTPS (fast-check): random POST bodies and
 * content types, random `dns=` strings, random JSON API parameters and methods. The face may
 * answer 200 with a well-formed DNS response for the query it was sent, or 400/405/413/415 —
 * never 500, never hang — and it must keep serving good requests without unhandled errors.
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import * as fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import { aRecords, buildQuery } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";
import { MALFORMED } from "../dns/fixtures.ts";

let pki: TestPki;
let upstream: LocalDohUpstream;
let bridge: Bridge;
let base: string;
let dir: string;
let http: Deno.HttpClient;
const logs: string[] = [];
const crashes: unknown[] = [];
const onRejection = (e: PromiseRejectionEvent) => {
  crashes.push(e.reason);
  e.preventDefault();
};
const onError = (e: ErrorEvent) => {
  crashes.push(e.error ?? e.message);
  e.preventDefault();
};

beforeAll(async () => {
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-dohfuzz-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url, "--query-timeout", "2s"],
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (l) => logs.push(l) }),
    sighup: false,
  });
  base = `https://localhost:${bridge.doh!.addr.port}/dns-query`;
  http = Deno.createHttpClient({ caCerts: [pki.ca.certPem] });
});

afterAll(async () => {
  http?.close();
  await bridge?.shutdown();
  await upstream?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
  globalThis.removeEventListener("unhandledrejection", onRejection);
  globalThis.removeEventListener("error", onError);
});

async function request(url: string, init: RequestInit = {}) {
  const res = await fetch(url, { ...init, client: http, signal: AbortSignal.timeout(5_000) });
  return {
    status: res.status,
    type: res.headers.get("content-type") ?? "",
    body: new Uint8Array(await res.arrayBuffer()),
  };
}

/** A 200 must carry a well-formed DNS response with the query's ID. */
function expectDnsAnswer(res: { type: string; body: Uint8Array }, queryId: number): void {
  expect(res.type).toBe("application/dns-message");
  const decoded = dnsPacket.decode(Buffer.from(res.body));
  expect(decoded.type).toBe("response");
  expect(decoded.id).toBe(queryId);
}

async function goodRequestWorks(): Promise<void> {
  const name = "doh-still-good.example.test";
  const res = await request(base, {
    method: "POST",
    headers: { "content-type": "application/dns-message" },
    body: buildQuery(name, { id: 0 }).slice(),
  });
  expect(res.status).toBe(200);
  expect(aRecords(res.body)).toEqual([`192.0.2.${octetFor(name)}`]);
}

/** Query-like bytes for a `dns=` parameter (a URL cannot carry 64 KiB of base64url). */
const smallQueryBytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 600 }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(...MALFORMED.map((m) => m.bytes.subarray(0, 6_000))),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      id: fc.integer({ min: 0, max: 0xffff }),
      name: fc.constantFrom("fuzz.example.test", "nx.example.test", "x".repeat(63) + ".test"),
      type: fc.constantFrom("A" as const, "AAAA" as const, "TXT" as const),
      edns: fc.boolean(),
    }).map((q) => buildQuery(q.name, q)),
  },
);

const queryBytesArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ maxLength: 600 }) },
  { weight: 2, arbitrary: fc.constantFrom(...MALFORMED.map((m) => m.bytes)) },
  {
    weight: 2,
    arbitrary: fc.record({
      id: fc.integer({ min: 0, max: 0xffff }),
      name: fc.constantFrom("fuzz.example.test", "nx.example.test", "x".repeat(63) + ".test"),
      type: fc.constantFrom("A" as const, "AAAA" as const, "TXT" as const),
      edns: fc.boolean(),
    }).map((q) => buildQuery(q.name, q)),
  },
  { weight: 1, arbitrary: fc.constantFrom(new Uint8Array(65_535), new Uint8Array(65_536)) },
);

const contentTypeArb = fc.oneof(
  { weight: 4, arbitrary: fc.constant("application/dns-message") },
  { weight: 1, arbitrary: fc.constant("Application/DNS-Message; charset=utf-8") },
  { weight: 1, arbitrary: fc.stringMatching(/^[a-z0-9\/;=+. -]{0,40}$/) },
  { weight: 1, arbitrary: fc.constant(undefined) },
);

describe.each(["HTTP/2", "HTTP/1.1"] as const)("DoH face fuzz over %s", (version) => {
  beforeAll(() => {
    http?.close();
    http = Deno.createHttpClient({
      caCerts: [pki.ca.certPem],
      http1: version === "HTTP/1.1",
      http2: version === "HTTP/2",
    });
  });

  it("POST: random bodies and content types get 200 with a valid answer, or 400/413/415", async () => {
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(queryBytesArb, contentTypeArb, async (body, type) => {
        const headers: Record<string, string> = {};
        if (type !== undefined) headers["content-type"] = type;
        const res = await request(base, { method: "POST", headers, body: body.slice() });
        seen.add(res.status);
        expect([200, 400, 413, 415]).toContain(res.status);
        const isDns = type !== undefined && type.split(";")[0].trim().toLowerCase() ===
            "application/dns-message";
        // An oversize body is refused: 413, or 415 when its content type is wrong as well.
        if (body.length > 65_535) expect([413, 415]).toContain(res.status);
        else if (!isDns) expect(res.status).toBe(415);
        else if (body.length < 12) expect(res.status).toBe(400);
        else expect(res.status).toBe(200);
        if (res.status === 200) expectDnsAnswer(res, (body[0] << 8) | body[1]);
      }),
      { numRuns: 80, seed: Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 2 ** 31) },
    );
    expect(seen.has(200)).toBe(true);
    await goodRequestWorks();
  });

  it("GET: random dns= strings get 200 with a valid answer, or 400/413", async () => {
    const dnsArb = fc.oneof(
      { weight: 3, arbitrary: fc.string({ unit: "binary", maxLength: 200 }) },
      { weight: 2, arbitrary: fc.stringMatching(/^[A-Za-z0-9_=+\/-]{0,120}$/) },
      {
        weight: 3,
        arbitrary: smallQueryBytesArb.map((b) =>
          b.toBase64({ alphabet: "base64url", omitPadding: true })
        ),
      },
      {
        weight: 1,
        arbitrary: smallQueryBytesArb.map((b) => b.toBase64({ alphabet: "base64url" })),
      },
    );
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(dnsArb, async (dns) => {
        const url = `${base}?${new URLSearchParams({ dns })}`;
        const res = await request(url);
        seen.add(res.status);
        expect([200, 400, 413]).toContain(res.status);
        if (res.status === 200) {
          const q = Uint8Array.fromBase64(dns, { alphabet: "base64url" });
          expect(q.length).toBeGreaterThanOrEqual(12);
          expectDnsAnswer(res, (q[0] << 8) | q[1]);
        }
      }),
      { numRuns: 80, seed: Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 2 ** 31) },
    );
    expect(seen.has(200)).toBe(true);
    expect(seen.has(400)).toBe(true);
    await goodRequestWorks();
  });

  it("JSON API and other methods: random parameters never get a 500", async () => {
    const arb = fc.record({
      method: fc.constantFrom("GET", "GET", "HEAD", "PUT", "DELETE", "PATCH", "OPTIONS"),
      name: fc.oneof(
        fc.string({ unit: "binary", maxLength: 300 }),
        fc.constantFrom("example.test", "nx.example.test", ".", "", "a..b", "x".repeat(64)),
      ),
      type: fc.oneof(
        fc.constantFrom("A", "AAAA", "TXT", "1", "65535", "65536", "-1", "ANY", "bogus", ""),
        fc.string({ maxLength: 12 }),
      ),
      extra: fc.dictionary(
        fc.constantFrom("do", "cd", "ct", "edns_client_subnet"),
        fc.string({ maxLength: 8 }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(arb, async ({ method, name, type, extra }) => {
        const url = `${base}?${new URLSearchParams({ name, type, ...extra })}`;
        const res = await request(url, { method, headers: { accept: "application/dns-json" } });
        expect(res.status).not.toBe(500);
        if (method === "GET" || method === "HEAD") expect([200, 400]).toContain(res.status);
        else expect(res.status).toBe(405);
        if (method === "GET" && res.status === 200) {
          const json = JSON.parse(new TextDecoder().decode(res.body));
          expect(typeof json.Status).toBe("number");
        }
      }),
      { numRuns: 60, seed: Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 2 ** 31) },
    );
    await goodRequestWorks();
    expect(crashes).toEqual([]);
    const errors = logs.filter((l) => l.includes("level=error"));
    expect(errors).toEqual([]);
  });
});
