/**
 * Blocklists in the Worker (in-process under Deno): lists in variables, URL lists fetched on the
 * first request and kept in a Cache API (a Map-backed stand-in here), refreshed on a request once
 * due, with the metrics; the workerd run is in `filter_workerd.test.ts`.
 */
import { describe, expect, it } from "vitest";
import type { WorkersCacheLike } from "../../src/cache/workers.ts";
import type { FetchLike } from "../../src/upstream/doh_transport.ts";
import { createWorker } from "../../src/worker/worker.ts";
import { buildQuery, edeCode, rcodeOf } from "../support/dot_client.ts";
import { answerFromZone } from "../support/zone.ts";

const BASE = "https://dotbridge.example.workers.dev";
const UPSTREAM = "https://global.example/dns-query";
const LIST_URL = "https://lists.example/ads.txt?key=s3cret";

/** The Cache API as a Map of responses (bodies kept as bytes). */
class MapCache implements WorkersCacheLike {
  readonly entries = new Map<string, { body: Uint8Array; headers: Headers }>();
  match(request: Request | string) {
    const e = this.entries.get(String(request));
    return Promise.resolve(e ? new Response(e.body.slice(), { headers: e.headers }) : undefined);
  }
  async put(request: Request | string, response: Response) {
    const body = new Uint8Array(await response.arrayBuffer());
    this.entries.set(String(request), { body, headers: response.headers });
  }
  delete(request: Request | string) {
    return Promise.resolve(this.entries.delete(String(request)));
  }
}

function setup(env: Record<string, string>, cache = new MapCache()) {
  const asked: string[] = [];
  const lines: string[] = [];
  const listRequests: { etag: string | null }[] = [];
  const list = { text: "||ads.example.test^\n", status: 200 };
  let clock = 1_000_000;
  const upstreamFetch: FetchLike = async (_input, init) => {
    const query = new Uint8Array(await new Response(init?.body).arrayBuffer());
    const answer = answerFromZone(query);
    asked.push(new TextDecoder().decode(query.subarray(13, 20)));
    return new Response(answer.slice(), { headers: { "content-type": "application/dns-message" } });
  };
  const pending: Promise<unknown>[] = [];
  const worker = createWorker({
    fetch: upstreamFetch,
    listCache: cache,
    listFetch: (url, init) => {
      expect(url).toBe(LIST_URL);
      const etag = new Headers(init.headers).get("if-none-match");
      listRequests.push({ etag });
      if (list.status !== 200) return Promise.resolve(new Response("no", { status: list.status }));
      const tag = `"${list.text.length}"`;
      if (etag === tag) return Promise.resolve(new Response(null, { status: 304 }));
      return Promise.resolve(new Response(list.text, { headers: { etag: tag } }));
    },
    now: () => clock,
    log: (_level, line) => lines.push(line),
  });
  const ask = async (name: string, path = "") => {
    const response = await worker.fetch(
      new Request(`${BASE}/dns-query${path}`, {
        method: "POST",
        headers: { "content-type": "application/dns-message" },
        body: buildQuery(name, { id: 0, edns: true }).slice(),
      }),
      env,
      { waitUntil: (p) => pending.push(p) },
    );
    expect(response.status).toBe(200);
    return new Uint8Array(await response.arrayBuffer());
  };
  const settle = async () => {
    await Promise.all(pending.splice(0));
  };
  return {
    worker,
    ask,
    settle,
    lines,
    listRequests,
    list,
    cache,
    advance: (ms: number) => (clock += ms),
  };
}

describe("the Worker's blocklists", () => {
  it("takes a list from a variable named as a source, per tenant too", async () => {
    const w = setup({
      DOTBRIDGE_UPSTREAM: UPSTREAM,
      DOTBRIDGE_BLOCKLIST: "MY_LIST",
      MY_LIST: "0.0.0.0 pixel.example.test\n",
      KIDS_LIST: "games.example.test\n",
      DOTBRIDGE_TENANTS_JSON: JSON.stringify({
        tenants: {
          kids: { upstream: [UPSTREAM], blocklist: ["KIDS_LIST"], "block-response": "null" },
        },
      }),
    });
    const blocked = await w.ask("pixel.example.test");
    expect([rcodeOf(blocked), edeCode(blocked)]).toEqual([3, 15]);
    expect(rcodeOf(await w.ask("games.example.test"))).toBe(0);
    const kids = await w.ask("games.example.test", "/kids");
    expect([rcodeOf(kids), edeCode(kids)]).toEqual([0, 15]);
  });

  it("answers 500 naming a source that is no variable", async () => {
    const w = setup({ DOTBRIDGE_UPSTREAM: UPSTREAM, DOTBRIDGE_BLOCKLIST: "NOPE" });
    const response = await w.worker.fetch(new Request(`${BASE}/health`), {
      DOTBRIDGE_UPSTREAM: UPSTREAM,
      DOTBRIDGE_BLOCKLIST: "NOPE",
    });
    expect(response.status).toBe(500);
    expect(await response.text()).toMatch(/NOPE: names no Worker variable/);
  });

  it("fetches a URL list before the first answer, keeps it in the Cache API, refreshes it", async () => {
    const env = { DOTBRIDGE_UPSTREAM: UPSTREAM, DOTBRIDGE_BLOCKLIST: LIST_URL };
    const w = setup(env);
    expect(rcodeOf(await w.ask("ads.example.test"))).toBe(3);
    expect(w.listRequests).toEqual([{ etag: null }]);
    expect(w.cache.entries.size).toBe(1);
    // Not due: no refresh.
    await w.ask("ads.example.test");
    expect(w.listRequests).toHaveLength(1);
    // Due: refreshed in the background of a request, with the ETag; 304 keeps the list.
    w.advance(86_400_000);
    await w.ask("x.example.test");
    await w.settle();
    expect(w.listRequests.at(-1)).toEqual({ etag: '"20"' });
    expect(rcodeOf(await w.ask("ads.example.test"))).toBe(3);
    // A failed refresh keeps the list too, and its log line has no query string.
    w.list.status = 503;
    w.advance(86_400_000);
    await w.ask("y.example.test");
    await w.settle();
    expect(rcodeOf(await w.ask("ads.example.test"))).toBe(3);
    expect(w.lines.join("\n")).toMatch(/download failed.*HTTP 503/);
    expect(w.lines.join("\n")).not.toContain("s3cret");
  });

  it("starts a new isolate from the Cache API's copy without fetching", async () => {
    const env = { DOTBRIDGE_UPSTREAM: UPSTREAM, DOTBRIDGE_BLOCKLIST: LIST_URL };
    const first = setup(env);
    await first.ask("ads.example.test");
    const second = setup(env, first.cache);
    expect(rcodeOf(await second.ask("ads.example.test"))).toBe(3);
    expect(second.listRequests).toEqual([]);
  });

  it("counts blocked queries in its metrics", async () => {
    const env = {
      DOTBRIDGE_UPSTREAM: UPSTREAM,
      DOTBRIDGE_BLOCKLIST: "MY_LIST",
      MY_LIST: "ads.example.test\n",
      DOTBRIDGE_DOH_METRICS: "true",
    };
    const w = setup(env);
    await w.ask("ads.example.test");
    const text = await (await w.worker.fetch(new Request(`${BASE}/metrics`), env)).text();
    expect(text).toContain('dotbridge_blocked_total{tenant="",list="MY_LIST"} 1');
    expect(text).toContain('dotbridge_filter_list_entries{list="MY_LIST"} 1');
  });
});
