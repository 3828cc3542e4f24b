/**
 * The Worker's fetch handler in-process under Deno (no workerd): config caching, the bad-config
 * answer, logging, and the landing page. `worker.test.ts` runs the same Worker in workerd.
 */
import { describe, expect, it } from "vitest";
import type { FetchLike } from "../../src/upstream/doh_transport.ts";
import { createWorker, type WorkerDeps } from "../../src/worker/worker.ts";
import { aRecords, buildQuery, idOf, rcodeOf } from "../support/dot_client.ts";
import { answerFromZone, octetFor } from "../support/zone.ts";

const BASE = "https://dotbridge.example.workers.dev";
const UPSTREAM = "https://doh.example/dns-query";

/** A fetch that answers DoH POSTs from the test zone, and counts them. */
function zoneFetch() {
  const seen: string[] = [];
  const fetchFn: FetchLike = async (input, init) => {
    seen.push(String(input));
    const query = new Uint8Array(await new Response(init?.body).arrayBuffer());
    return new Response(answerFromZone(query).slice(), {
      headers: { "content-type": "application/dns-message" },
    });
  };
  return { fetchFn, seen };
}

function setup(deps: Partial<WorkerDeps> = {}) {
  const lines: { level: string; line: string }[] = [];
  const upstream = zoneFetch();
  const worker = createWorker({
    fetch: upstream.fetchFn,
    log: (level, line) => lines.push({ level, line }),
    ...deps,
  });
  return { worker, lines, upstream };
}

function post(name: string, id: number, headers: Record<string, string> = {}): Request {
  return new Request(`${BASE}/dns-query`, {
    method: "POST",
    headers: { "content-type": "application/dns-message", ...headers },
    body: buildQuery(name, { id }).slice(),
  });
}

describe("createWorker (in-process)", () => {
  it("answers DoH through the configured upstream", async () => {
    const { worker, upstream } = setup();
    const response = await worker.fetch(post("w.example.test", 321), {
      DOTBRIDGE_UPSTREAM: UPSTREAM,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("max-age=300");
    const answer = new Uint8Array(await response.arrayBuffer());
    expect(idOf(answer)).toBe(321);
    expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("w.example.test")}`]);
    expect(upstream.seen).toEqual([UPSTREAM]);
  });

  it("builds once per env object and again when the env object changes", async () => {
    const { worker, lines } = setup();
    const env = { DOTBRIDGE_UPSTREAM: UPSTREAM };
    for (let i = 0; i < 3; i++) {
      await (await worker.fetch(new Request(`${BASE}/health`), env)).text();
    }
    const configured = () => lines.filter((l) => l.line.includes('msg="worker configured"'));
    expect(configured()).toHaveLength(1);
    expect(configured()[0].level).toBe("info");
    await (await worker.fetch(new Request(`${BASE}/health`), { ...env })).text();
    expect(configured()).toHaveLength(2);
  });

  it("answers every request 500 naming the key for a bad config, and logs it once", async () => {
    const { worker, lines } = setup();
    const env = { DOTBRIDGE_UPSTREAM: "ftp://x" };
    for (const request of [new Request(`${BASE}/health`), post("a.example.test", 1)]) {
      const response = await worker.fetch(request, env);
      expect(response.status).toBe(500);
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(await response.text()).toMatch(/^configuration error: DOTBRIDGE_UPSTREAM: [^\n]*\n$/);
    }
    expect(lines).toHaveLength(1);
    expect(lines[0].level).toBe("error");
    expect(lines[0].line).toMatch(/^dotbridge: configuration error: DOTBRIDGE_UPSTREAM: /);
  });

  it("refuses a DoT upstream with a pin at config time", async () => {
    const { worker } = setup();
    const response = await worker.fetch(new Request(`${BASE}/health`), {
      DOTBRIDGE_UPSTREAM: "tls://dns.example?pin=n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=",
    });
    expect(response.status).toBe(500);
    expect(await response.text()).toContain(
      "DOTBRIDGE_UPSTREAM: DoT upstream tls://dns.example:853",
    );
  });

  it("logs query names and the CF-Connecting-IP only with DOTBRIDGE_LOG_QUERIES", async () => {
    for (const logQueries of [false, true]) {
      const { worker, lines } = setup();
      const env = { DOTBRIDGE_UPSTREAM: UPSTREAM, DOTBRIDGE_LOG_QUERIES: String(logQueries) };
      const response = await worker.fetch(
        post("private.example.test", 5, { "cf-connecting-ip": "203.0.113.9" }),
        env,
      );
      expect(response.status).toBe(200);
      const text = lines.map((l) => l.line).join("\n");
      expect(text.includes("private.example.test")).toBe(logQueries);
      expect(text.includes("203.0.113.9")).toBe(logQueries);
    }
  });

  it("warns about keys it ignores and keys it does not know", async () => {
    const { worker, lines } = setup();
    await worker.fetch(new Request(`${BASE}/health`), {
      DOTBRIDGE_UPSTREAM: UPSTREAM,
      DOTBRIDGE_LISTEN: "0.0.0.0:853",
      DOTBRIDGE_UPSTEAM: "typo",
    });
    const warnings = lines.filter((l) => l.level === "warn").map((l) => l.line);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toContain("keys=DOTBRIDGE_LISTEN");
    expect(warnings[1]).toContain("keys=DOTBRIDGE_UPSTEAM");
  });

  it("applies DOTBRIDGE_ALLOW/DENY to the CF-Connecting-IP, and refuses DoH without one", async () => {
    const { worker, upstream } = setup();
    const env = { DOTBRIDGE_UPSTREAM: UPSTREAM, DOTBRIDGE_ALLOW: "203.0.113.0/24" };
    const allowed = await worker.fetch(
      post("a.example.test", 1, { "cf-connecting-ip": "203.0.113.7" }),
      env,
    );
    expect(rcodeOf(new Uint8Array(await allowed.arrayBuffer()))).toBe(0);
    const denied = await worker.fetch(
      post("a.example.test", 2, { "cf-connecting-ip": "198.51.100.7" }),
      env,
    );
    expect(denied.status).toBe(200);
    expect(rcodeOf(new Uint8Array(await denied.arrayBuffer()))).toBe(5); // REFUSED
    const anonymous = await worker.fetch(post("a.example.test", 3), env);
    expect(anonymous.status).toBe(403);
    await anonymous.body?.cancel();
    expect(upstream.seen).toHaveLength(1);
    const health = await worker.fetch(new Request(`${BASE}/health`), env);
    expect(health.status).toBe(200);
    await health.body?.cancel();
  });

  it("serves a landing page with the DoH URL of the request and no DoT face", async () => {
    const { worker } = setup();
    const env = { DOTBRIDGE_UPSTREAM: UPSTREAM, DOTBRIDGE_JSON_API: "false" };
    const page = await worker.fetch(new Request(`${BASE}/`), env);
    expect(page.status).toBe(200);
    const text = await page.text();
    expect(text).toContain(`DNS over HTTPS:  ${BASE}/dns-query`);
    expect(text).toContain("Workers cannot accept inbound TCP");
    expect(text).not.toContain("JSON:");
    const head = await worker.fetch(new Request(`${BASE}/`, { method: "HEAD" }), env);
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });
});
