/**
 * Tenants in the Worker (in-process under Deno): the same rules as on Deno, the allow list
 * matched against `CF-Connecting-IP`, an id selecting instead of the name, unknown and
 * not-allowed answered alike, and the warning about tenants anyone can choose by name.
 */
import { describe, expect, it } from "vitest";
import type { FetchLike } from "../../src/upstream/doh_transport.ts";
import { parseWorkerConfig } from "../../src/worker/config.ts";
import { createWorker } from "../../src/worker/worker.ts";
import { aRecords, buildQuery, rcodeOf } from "../support/dot_client.ts";
import { answerFromZone } from "../support/zone.ts";

const BASE = "https://dotbridge.example.workers.dev";
const GLOBAL = "https://global.example/dns-query";
const KIDS = "https://kids.example/dns-query";
const WORK = "https://work.example/dns-query";
const KIDS_ID = "9y65g5srsm";

const ENV = {
  DOTBRIDGE_UPSTREAM: GLOBAL,
  DOTBRIDGE_CACHE: "false",
  DOTBRIDGE_TENANTS_JSON: JSON.stringify({
    tenants: {
      kids: { upstream: [KIDS], id: KIDS_ID },
      work: { upstream: [WORK], allow: ["192.0.2.0/24"] },
    },
  }),
};

/** A Worker whose upstream fetch answers from the test zone and records the URLs it was sent. */
function setup() {
  const seen: string[] = [];
  const lines: { level: string; line: string }[] = [];
  const fetchFn: FetchLike = async (input, init) => {
    seen.push(String(input));
    const query = new Uint8Array(await new Response(init?.body).arrayBuffer());
    return new Response(answerFromZone(query).slice(), {
      headers: { "content-type": "application/dns-message" },
    });
  };
  const worker = createWorker({
    fetch: fetchFn,
    log: (level, line) => lines.push({ level, line }),
  });
  return { worker, seen, lines };
}

/** A DoH POST to `/dns-query<path>` from `ip`, with the tenant option if given. */
function post(path: string, ip: string, edns?: string): Request {
  const options = edns ? [{ code: 65011, data: new TextEncoder().encode(edns) }] : [];
  return new Request(`${BASE}/dns-query${path}`, {
    method: "POST",
    headers: { "content-type": "application/dns-message", "cf-connecting-ip": ip },
    body: buildQuery("t.example.test", { id: 0, options }).slice(),
  });
}

async function wire(response: Response): Promise<Uint8Array> {
  expect(response.status).toBe(200);
  return new Uint8Array(await response.arrayBuffer());
}

describe("tenants in the Worker", () => {
  it("selects a tenant with an id by the id, by path and EDNS option, and not by its name", async () => {
    const { worker, seen } = setup();
    expect(aRecords(await wire(await worker.fetch(post(`/${KIDS_ID}`, "198.51.100.1"), ENV))))
      .toHaveLength(1);
    await wire(await worker.fetch(post("", "198.51.100.1", KIDS_ID), ENV));
    expect(seen).toEqual([KIDS, KIDS]);
    const byPath = await wire(await worker.fetch(post("/kids", "198.51.100.1"), ENV));
    const byOption = await wire(await worker.fetch(post("", "198.51.100.1", "kids"), ENV));
    expect([rcodeOf(byPath), rcodeOf(byOption)]).toEqual([5, 5]);
    expect(seen).toEqual([KIDS, KIDS]);
  });

  it("matches a tenant's allow list against CF-Connecting-IP", async () => {
    const { worker, seen } = setup();
    await wire(await worker.fetch(post("/work", "192.0.2.9"), ENV));
    expect(seen).toEqual([WORK]);
    const byPath = await wire(await worker.fetch(post("/work", "198.51.100.1"), ENV));
    const byOption = await wire(await worker.fetch(post("", "198.51.100.1", "work"), ENV));
    expect([rcodeOf(byPath), rcodeOf(byOption)]).toEqual([5, 5]);
    expect(seen).toEqual([WORK]);
  });

  it("answers a not-allowed tenant exactly as an unknown one", async () => {
    const { worker } = setup();
    const notAllowed = await worker.fetch(post("/work", "198.51.100.1"), ENV);
    const unknown = await worker.fetch(post("/nosuch", "198.51.100.1"), ENV);
    expect([...notAllowed.headers]).toEqual([...unknown.headers]);
    expect(await wire(notAllowed)).toEqual(await wire(unknown));
  });

  it("warns about tenants any client can choose by name, and not about the others", async () => {
    const guessable = setup();
    await guessable.worker.fetch(new Request(`${BASE}/health`), {
      ...ENV,
      DOTBRIDGE_TENANTS_JSON: JSON.stringify({ tenants: { open: { upstream: [KIDS] } } }),
    });
    const warnings = guessable.lines.filter((l) => l.level === "warn").map((l) => l.line);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toContain(
      "worker: tenants: open can be selected by name by any client " +
        "(EDNS option 65011, DoH path /dns-query/<name>)",
    );
    const safe = setup();
    await safe.worker.fetch(new Request(`${BASE}/health`), ENV);
    expect(safe.lines.filter((l) => l.level === "warn")).toEqual([]);
  });

  it.each([
    [{ kids: { upstream: [KIDS], id: "short" } }, 'DOTBRIDGE_TENANTS_JSON: "kids"."id": must be'],
    [
      { a: { upstream: [KIDS], id: KIDS_ID }, b: { upstream: [KIDS], id: KIDS_ID } },
      `DOTBRIDGE_TENANTS_JSON: "b"."id": "${KIDS_ID}" is also the id of "a"`,
    ],
    [
      { a: { upstream: [KIDS], allow: ["nope"] } },
      'DOTBRIDGE_TENANTS_JSON: "a"."allow": "nope" is not an address',
    ],
  ])("refuses a bad tenant %#, naming the variable and the key", (tenants, says) => {
    expect(() => parseWorkerConfig({ ...ENV, DOTBRIDGE_TENANTS_JSON: JSON.stringify({ tenants }) }))
      .toThrow(says);
  });
});
