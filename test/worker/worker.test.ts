/**
 * The Worker in workerd: `wrangler dev --local` with the repo's wrangler.toml, real DoH requests
 * over loopback, a plain-HTTP DoH upstream and a DoT upstream (over cloudflare:sockets, the test
 * CA trusted through NODE_EXTRA_CA_CERTS) started by the test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aRecords, buildQuery, decode, idOf, rcodeOf } from "../support/dot_client.ts";
import { type LocalDotUpstream, startDotUpstream } from "../support/dot_upstream.ts";
import { testPki } from "../support/pki.ts";
import {
  type PlainDohUpstream,
  startPlainDohUpstream,
  startWorkerDev,
  type WorkerDev,
} from "../support/worker.ts";
import { octetFor } from "../support/zone.ts";

const DNS_MESSAGE = "application/dns-message";
const STARTUP_MS = 60_000;

let doh: PlainDohUpstream;
let dot: LocalDotUpstream;
let good: WorkerDev | undefined;
let bad: WorkerDev | undefined;
let tmp: string;

beforeAll(async () => {
  const pki = await testPki();
  tmp = await Deno.makeTempDir({ prefix: "dotbridge-worker-test-" });
  const caFile = `${tmp}/ca.pem`;
  await Deno.writeTextFile(caFile, pki.ca.certPem);
  doh = startPlainDohUpstream();
  dot = await startDotUpstream({ cert: pki.server });
  // Both Workers start at once: startup dominates this file's run time.
  const started = await Promise.allSettled([
    startWorkerDev({
      caFile,
      startupMs: STARTUP_MS,
      vars: {
        // Failover: the plain DoH upstream first, the DoT upstream when it fails. No cool-down,
        // so every query tries DoH first whatever the previous test did.
        DOTBRIDGE_UPSTREAM: `${doh.url},tls://localhost:${dot.port}`,
        DOTBRIDGE_UPSTREAM_COOLDOWN: "0",
        DOTBRIDGE_QUERY_TIMEOUT: "4s",
        // Debug shows DoT connections closing, and why.
        DOTBRIDGE_LOG_LEVEL: "debug",
      },
    }),
    startWorkerDev({ startupMs: STARTUP_MS, vars: { DOTBRIDGE_UPSTREAM: "ftp://x" } }),
  ]);
  if (started[0].status === "fulfilled") good = started[0].value;
  if (started[1].status === "fulfilled") bad = started[1].value;
  for (const s of started) if (s.status === "rejected") throw s.reason;
}, STARTUP_MS + 30_000);

afterAll(async () => {
  await Promise.all([good?.stop(), bad?.stop()]);
  await Promise.all([doh?.close(), dot?.close()]);
  if (tmp) await Deno.remove(tmp, { recursive: true });
}, 30_000);

function worker(): WorkerDev {
  if (!good) throw new Error("the Worker did not start");
  return good;
}

async function post(query: Uint8Array): Promise<Response> {
  return await fetch(`${worker().url}/dns-query`, {
    method: "POST",
    headers: { "content-type": DNS_MESSAGE, accept: DNS_MESSAGE },
    body: query.slice(),
  });
}

async function wire(response: Response): Promise<Uint8Array> {
  expect(response.status).toBe(200);
  expect(response.headers.get("content-type")).toBe(DNS_MESSAGE);
  return new Uint8Array(await response.arrayBuffer());
}

describe("the Worker in workerd (wrangler dev)", () => {
  it("answers a DoH POST through the DoH upstream, with the client's ID and the TTL as max-age", async () => {
    const before = doh.requests.length;
    const response = await post(buildQuery("post.example.test", { id: 0x1234 }));
    expect(response.headers.get("cache-control")).toBe("max-age=300");
    const answer = await wire(response);
    expect(idOf(answer)).toBe(0x1234);
    expect(rcodeOf(answer)).toBe(0);
    expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("post.example.test")}`]);
    expect(doh.requests.length).toBe(before + 1);
    expect(doh.requests.at(-1)).toEqual({ method: "POST", id: 0 }); // RFC 8484 §4.1: ID 0 upstream
  });

  it("answers a DoH GET (?dns= base64url)", async () => {
    const query = buildQuery("get.example.test", { id: 0xbeef });
    const dns = query.toBase64({ alphabet: "base64url", omitPadding: true });
    const response = await fetch(`${worker().url}/dns-query?dns=${dns}`, {
      headers: { accept: DNS_MESSAGE },
    });
    expect(response.headers.get("cache-control")).toBe("max-age=300");
    const answer = await wire(response);
    expect(idOf(answer)).toBe(0xbeef);
    expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("get.example.test")}`]);
  });

  it("answers the JSON API", async () => {
    const response = await fetch(`${worker().url}/dns-query?name=json.example.test&type=A`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("application/dns-json");
    const body = await response.json();
    expect(body.Status).toBe(0);
    expect(body.Answer).toEqual([
      {
        name: "json.example.test.",
        type: 1,
        TTL: 300,
        data: `192.0.2.${octetFor("json.example.test")}`,
      },
    ]);
  });

  it("serves /health and a landing page that says there is no DoT face", async () => {
    const health = await fetch(`${worker().url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok", edge: "cloudflare-workers" });
    const landing = await fetch(`${worker().url}/`);
    expect(landing.status).toBe(200);
    const text = await landing.text();
    expect(text).toContain(`DNS over HTTPS:  ${worker().url}/dns-query`);
    expect(text).toMatch(/DNS over TLS: +not available here: Workers cannot accept inbound TCP/);
    expect(text).not.toContain("kdig");
  });

  it("fails over to the DoT upstream over cloudflare:sockets (TLS verified for its name)", async () => {
    doh.mode = "http-500";
    try {
      const queriesBefore = dot.queries;
      const connectionsBefore = dot.connections;
      const answer = await wire(await post(buildQuery("dot.example.test", { id: 77 })));
      expect(idOf(answer)).toBe(77);
      expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("dot.example.test")}`]);
      expect(dot.queries).toBe(queriesBefore + 1);
      expect(dot.connections).toBe(connectionsBefore + 1);
      expect(dot.handshakes.at(-1)?.servername).toBe("localhost");

      // A second request opens its own connection: a socket belongs to one Worker request.
      const again = await wire(await post(buildQuery("dot2.example.test", { id: 78 })));
      expect(aRecords(again)).toEqual([`192.0.2.${octetFor("dot2.example.test")}`]);
      expect(dot.connections).toBe(connectionsBefore + 2);
      // Reusing the first request's socket would fail like this (and be retried on a new one).
      const out = await worker().waitForOutput(/POST \/dns-query 200[^]*POST \/dns-query 200/);
      expect(out).not.toContain("Cannot perform I/O on behalf of a different request");
    } finally {
      doh.mode = "ok";
    }
  });

  it("answers SERVFAIL, with the client's ID, when every upstream fails", async () => {
    doh.mode = "http-500";
    dot.mode = "wrong-question";
    try {
      const started = performance.now();
      const answer = await wire(await post(buildQuery("fail.example.test", { id: 4242 })));
      expect(idOf(answer)).toBe(4242);
      expect(rcodeOf(answer)).toBe(2);
      expect(decode(answer).questions?.[0]?.name).toBe("fail.example.test");
      expect(performance.now() - started).toBeLessThan(1_500); // failed fast, not by a timeout
    } finally {
      doh.mode = "ok";
      dot.mode = "ok";
    }
  });

  it("builds its config once per isolate and keeps query names out of the log", async () => {
    for (let i = 0; i < 3; i++) await (await fetch(`${worker().url}/landing-${i}`)).body?.cancel();
    const out = await worker().waitForOutput(/GET \/landing-2 404/);
    const configured = out.match(/msg="worker configured"/g)?.length ?? 0;
    const reloads = out.match(/Reloading local server/g)?.length ?? 0;
    expect(configured).toBeGreaterThanOrEqual(1);
    expect(configured).toBeLessThanOrEqual(1 + reloads); // a source edit during the run reloads
    expect(out).toContain('msg="upstream down"'); // the failover above was logged...
    expect(out).not.toMatch(/(post|get|json|dot|fail)\.example\.test/); // ...without names
  });
});

describe("the Worker with a bad config (DOTBRIDGE_UPSTREAM=ftp://x)", () => {
  function badWorker(): WorkerDev {
    if (!bad) throw new Error("the Worker did not start");
    return bad;
  }

  it("answers every request 500 with one line naming the key, and logs it once", async () => {
    for (const path of ["/health", "/dns-query?name=a.example.test", "/"]) {
      const response = await fetch(`${badWorker().url}${path}`);
      expect(response.status).toBe(500);
      const body = await response.text();
      expect(body).toMatch(/^configuration error: DOTBRIDGE_UPSTREAM: .*ftp:/);
      expect(body.trimEnd().split("\n")).toHaveLength(1);
    }
    const post = await fetch(`${badWorker().url}/dns-query`, {
      method: "POST",
      headers: { "content-type": DNS_MESSAGE },
      body: buildQuery("a.example.test").slice(),
    });
    expect(post.status).toBe(500);
    await post.body?.cancel();
    const out = await badWorker().waitForOutput(/POST \/dns-query 500/);
    const logged = out.match(/dotbridge: configuration error: DOTBRIDGE_UPSTREAM/g)?.length ?? 0;
    const reloads = out.match(/Reloading local server/g)?.length ?? 0;
    expect(logged).toBeGreaterThanOrEqual(1);
    expect(logged).toBeLessThanOrEqual(1 + reloads);
    expect(badWorker().running()).toBe(true);
    expect(out).not.toMatch(/Uncaught|exception thrown/i);
  });
});
