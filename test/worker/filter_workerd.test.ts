/**
 * The Worker's blocklists in workerd (`wrangler dev --local`): a list in a variable, a URL list
 * fetched from a local server into the Cache API, and a tenant with its own list and response.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { buildQuery, edeCode, rcodeOf } from "../support/dot_client.ts";
import { type ListServer, startListServer } from "../support/list_server.ts";
import {
  type PlainDohUpstream,
  startPlainDohUpstream,
  startWorkerDev,
  type WorkerDev,
} from "../support/worker.ts";

const DNS_MESSAGE = "application/dns-message";
const STARTUP_MS = 60_000;

let doh: PlainDohUpstream;
let lists: ListServer;
let dev: WorkerDev | undefined;

beforeAll(async () => {
  doh = startPlainDohUpstream();
  lists = await startListServer();
  lists.lists.set("/ads.txt", { text: "! Adblock\n||ads.example.test^\n" });
  dev = await startWorkerDev({
    startupMs: STARTUP_MS,
    vars: {
      DOTBRIDGE_UPSTREAM: doh.url,
      DOTBRIDGE_BLOCKLIST: `FAMILY_LIST,${lists.origin}/ads.txt`,
      FAMILY_LIST: "# hosts\n0.0.0.0 pixel.example.test\n0.0.0.0 telemetry.example.test\n",
      KIDS_LIST: "games.example.test\n",
      DOTBRIDGE_TENANTS_JSON: JSON.stringify({
        tenants: {
          kids: { upstream: [doh.url], blocklist: ["KIDS_LIST"], "block-response": "null" },
        },
      }),
      DOTBRIDGE_DOH_METRICS: "true",
    },
  });
}, STARTUP_MS + 30_000);

afterAll(async () => {
  await dev?.stop();
  await doh?.close();
  await lists?.close();
}, 30_000);

async function post(name: string, path = ""): Promise<Uint8Array> {
  if (!dev) throw new Error("the Worker did not start");
  const response = await fetch(`${dev.url}/dns-query${path}`, {
    method: "POST",
    headers: { "content-type": DNS_MESSAGE, accept: DNS_MESSAGE },
    body: buildQuery(name, { id: 0, edns: true }).slice(),
  });
  expect(response.status).toBe(200);
  return new Uint8Array(await response.arrayBuffer());
}

describe("blocklists in workerd (wrangler dev)", () => {
  it("blocks the names of a list given as text in a variable, with EDE 15", async () => {
    const before = doh.requests.length;
    for (const name of ["pixel.example.test", "a.telemetry.example.test"]) {
      const answer = await post(name);
      expect([rcodeOf(answer), edeCode(answer)], name).toEqual([3, 15]);
    }
    expect(doh.requests.length).toBe(before);
    expect(rcodeOf(await post("fine.example.test"))).toBe(0);
  });

  it("fetches a URL list once and blocks its names", async () => {
    expect(rcodeOf(await post("x.ads.example.test"))).toBe(3);
    expect(rcodeOf(await post("ads.example.test"))).toBe(3);
    expect(lists.requests.filter((r) => r.path === "/ads.txt").length).toBeGreaterThanOrEqual(1);
  });

  it("gives a tenant its own list and block response", async () => {
    const answer = await post("games.example.test", "/kids");
    const records = dnsPacket.decode(Buffer.from(answer)).answers as { data?: unknown }[];
    expect(records.map((r) => r.data)).toEqual(["0.0.0.0"]);
    expect(edeCode(answer)).toBe(15);
    expect(rcodeOf(await post("games.example.test"))).toBe(0);
  });

  it("counts what it blocked", async () => {
    const text = await (await fetch(`${dev!.url}/metrics`)).text();
    expect(text).toMatch(/dotbridge_blocked_total\{tenant="",list="FAMILY_LIST"\} 2/);
    expect(text).toMatch(/dotbridge_blocked_total\{tenant="kids",list="KIDS_LIST"\} 1/);
  });
});
