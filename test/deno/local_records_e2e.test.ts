import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import {
  aRecords,
  buildQuery,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";

describe("local records through the running bridge", () => {
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let dir: string;

  beforeAll(async () => {
    const pki = await testPki();
    upstream = await startDohUpstream(pki);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-local-" });
    await Deno.writeTextFile(`${dir}/home.hosts`, "192.168.1.10 nas.home.arpa nas\n");
    bridge = await startTestBridge(pki, upstream, ["--local-records", `${dir}/home.hosts`]);
  });

  afterAll(async () => {
    await bridge?.close();
    await upstream?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  async function ask(name: string, id: number): Promise<Uint8Array> {
    const client = await bridge.connect();
    try {
      const q = buildQuery(name, { id });
      await client.send(q);
      return await client.waitFor(idOf(q));
    } finally {
      client.close();
    }
  }

  it("answers a local name without asking the upstream, and forwards the rest", async () => {
    expect(aRecords(await ask("nas.home.arpa", 1))).toEqual(["192.168.1.10"]);
    expect(upstream.requests.some((r) => r.name === "nas.home.arpa")).toBe(false);
    const other = await ask("www.example.test", 2);
    expect(rcodeOf(other)).toBe(0);
    expect(upstream.requests.some((r) => r.name === "www.example.test")).toBe(true);
  });

  it("picks up an edited file without a restart", async () => {
    await Deno.writeTextFile(`${dir}/home.hosts`, "192.168.1.11 nas.home.arpa\n");
    const deadline = Date.now() + 5_000;
    let seen: string[] = [];
    while (Date.now() < deadline) {
      seen = aRecords(await ask("nas.home.arpa", 3));
      if (seen[0] === "192.168.1.11") break;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(seen).toEqual(["192.168.1.11"]);
  });
});
