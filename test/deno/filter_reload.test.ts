import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generatedList } from "../../scripts/bench/filter_list.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import {
  buildQuery,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";

const NAMES = 300_000;

/**
 * A 300 000-name list file is replaced while sixteen DoT clients keep asking: every query gets
 * its answer (NOERROR, or NXDOMAIN for a listed name, never SERVFAIL or silence), and the new
 * list is in force afterwards.
 */
describe("a list reload under load", () => {
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let dir: string;

  beforeAll(async () => {
    const pki = await testPki();
    upstream = await startDohUpstream(pki);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-filter-reload-" });
    await Deno.writeTextFile(`${dir}/list.txt`, generatedList(NAMES) + "old.example.test\n");
    bridge = await startTestBridge(pki, upstream, [
      "--blocklist",
      `${dir}/list.txt`,
      "--state-dir",
      `${dir}/state`,
      "--query-timeout",
      "10s",
    ]);
  });

  afterAll(async () => {
    await bridge?.close();
    await upstream?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  async function ask(name: string): Promise<number> {
    const client = await bridge.connect();
    try {
      const q = buildQuery(name, { id: 1 });
      await client.send(q);
      return rcodeOf(await client.waitFor(idOf(q)));
    } finally {
      client.close();
    }
  }

  it("answers every query while the new list is built and swapped in", async () => {
    expect(await ask("old.example.test")).toBe(3);
    let stop = false;
    const tally = { sent: 0, noerror: 0, nxdomain: 0, other: 0, failed: 0 };
    const client = async (c: number) => {
      const dot = await bridge.connect();
      try {
        for (let i = 0; !stop; i++) {
          // A few names repeat (cache hits), the rest are new (upstream); every 8th is listed.
          const name = i % 8 === 0
            ? (i % 16 === 0 ? "old.example.test" : "new.example.test")
            : `c${c}-${i % 64}.load.example.test`;
          const q = buildQuery(name, { id: (i % 60_000) + 1 });
          tally.sent++;
          try {
            await dot.send(q);
            const rcode = rcodeOf(await dot.waitFor(idOf(q), 10_000));
            if (rcode === 0) tally.noerror++;
            else if (rcode === 3) tally.nxdomain++;
            else tally.other++;
          } catch {
            tally.failed++;
          }
        }
      } finally {
        dot.close();
      }
    };
    const clients = Array.from({ length: 16 }, (_, c) => client(c));
    await new Promise((r) => setTimeout(r, 300));
    const before = tally.sent;
    await Deno.writeTextFile(
      `${dir}/list.txt`,
      generatedList(NAMES, "plain", 2) + "new.example.test\n",
    );
    expect(await bridge.bridge.filterLists.refresh(`${dir}/list.txt`)).toBe(true);
    const during = tally.sent - before;
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await Promise.all(clients);
    expect(tally.failed).toBe(0);
    expect(tally.other).toBe(0);
    expect(tally.noerror + tally.nxdomain).toBe(tally.sent);
    expect(during).toBeGreaterThan(0); // queries were answered while the list was rebuilt
    expect(await ask("new.example.test")).toBe(3);
    expect(await ask("old.example.test")).toBe(0);
  }, 60_000);
});
