import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { DenoFilterLists, listName } from "../../src/deno/filter_lists.ts";
import { type FilterList, FilterPolicy, NameHasher } from "../../src/filter/mod.ts";
import { createLogger } from "../../src/log/mod.ts";
import { type ListServer, startListServer } from "../support/list_server.ts";
import { wireName } from "../dns/fixtures.ts";

const hasher = new NameHasher([5, 6]);
const blocks = (list: FilterList, name: string) =>
  new FilterPolicy({ hasher, blocklists: [list] }).check(wireName(name), 0) !== null;

describe("DenoFilterLists", () => {
  let server: ListServer;
  let dir: string;
  const open: DenoFilterLists[] = [];
  let logs: string[];
  const events: string[] = [];

  function make(extra: Partial<ConstructorParameters<typeof DenoFilterLists>[0]> = {}) {
    const lists = new DenoFilterLists({
      stateDir: `${dir}/state`,
      refreshMs: 86_400_000,
      maxBytes: 4096,
      timeoutMs: 2000,
      hasher,
      debounceMs: 50,
      logger: createLogger({ level: "debug", sink: (l) => logs.push(l) }),
      events: {
        loaded: (list, entries) => events.push(`loaded ${list} ${entries}`),
        confirmed: (list) => events.push(`confirmed ${list}`),
        failed: (list) => events.push(`failed ${list}`),
      },
      ...extra,
    });
    open.push(lists);
    return lists;
  }

  beforeAll(async () => {
    server = await startListServer();
    dir = await Deno.makeTempDir({ prefix: "dotbridge-lists-" });
  });

  afterEach(() => {
    for (const l of open.splice(0)) l.close();
    logs = [];
    events.length = 0;
  });

  afterAll(async () => {
    await server?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("names a URL list by host and path, never its query or credentials", () => {
    expect(listName("https://user:pw@lists.example/ads.txt?token=s3cret")).toBe(
      "lists.example/ads.txt",
    );
    expect(listName("/etc/dotbridge/ads.txt")).toBe("/etc/dotbridge/ads.txt");
  });

  it("fetches a URL list, then revalidates it with its ETag and keeps it on 304", async () => {
    logs = [];
    server.lists.set("/etag.txt", { text: "||ads.example^\n" });
    const url = `${server.origin}/etag.txt`;
    const lists = make();
    const list = lists.list(url);
    await lists.ready();
    expect(blocks(list, "x.ads.example")).toBe(true);
    expect(await lists.refresh(url)).toBe(false);
    const [first, second] = server.requests.filter((r) => r.path === "/etag.txt");
    expect(first.ifNoneMatch).toBe(null);
    expect(second.ifNoneMatch).toMatch(/^"[0-9a-f]{16}"$/);
    expect(second.ifModifiedSince).toMatch(/GMT$/);
    expect(second.status).toBe(304);
    expect(blocks(list, "ads.example")).toBe(true);
    expect(events).toEqual([
      "loaded 127.0.0.1:" + new URL(url).port + "/etag.txt 1",
      `confirmed ${list.name}`,
    ]);
    server.lists.set("/etag.txt", { text: "||ads.example^\n||more.example^\n" });
    expect(await lists.refresh(url)).toBe(true);
    expect(blocks(list, "more.example")).toBe(true);
  });

  it("keeps the last good copy when a refresh fails, and logs one line without the query", async () => {
    logs = [];
    server.lists.set("/flaky.txt", { text: "flaky.example\n" });
    const url = `${server.origin}/flaky.txt?token=s3cret`;
    const lists = make();
    const list = lists.list(url);
    await lists.ready();
    server.lists.set("/flaky.txt", { text: "", mode: "fail" });
    expect(await lists.refresh(url)).toBe(false);
    expect(blocks(list, "flaky.example")).toBe(true);
    const failures = logs.filter((l) => l.includes("failed"));
    expect(failures).toHaveLength(1);
    expect(failures[0]).toContain("HTTP 500");
    expect(logs.join("\n")).not.toContain("s3cret");
    expect(events.at(-1)).toBe(`failed ${list.name}`);
  });

  it("refuses a list over the size cap, announced or not, and keeps the one in force", async () => {
    server.lists.set("/big.txt", { text: "small.example\n" });
    const url = `${server.origin}/big.txt`;
    const lists = make();
    const list = lists.list(url);
    await lists.ready();
    const big = Array.from({ length: 400 }, (_, i) => `n${i}.big.example`).join("\n");
    for (const mode of ["ok", "no-length"] as const) {
      logs = [];
      server.lists.set("/big.txt", { text: big, mode });
      expect(await lists.refresh(url)).toBe(false);
      expect(logs.join("\n")).toMatch(/over --blocklist-max-bytes|more than 4096 bytes/);
      expect(blocks(list, "small.example")).toBe(true);
      expect(blocks(list, "n1.big.example")).toBe(false);
    }
  });

  it("gives up a download at the timeout", async () => {
    server.lists.set("/slow.txt", { text: "", mode: "hang" });
    const lists = make({ timeoutMs: 300 });
    const list = lists.list(`${server.origin}/slow.txt`);
    const started = performance.now();
    await lists.ready(); // not fatal: logged and retried later
    expect(performance.now() - started).toBeLessThan(2000);
    expect(list.set).toBe(undefined);
    expect(events).toEqual([`failed ${list.name}`]);
  });

  it("starts from the saved copy when the network is gone", async () => {
    server.lists.set("/kept.txt", { text: "0.0.0.0 kept.example\n" });
    const url = `${server.origin}/kept.txt`;
    const first = make();
    first.list(url);
    await first.ready();
    first.close();
    server.lists.set("/kept.txt", { text: "", mode: "fail" });
    const before = server.requests.length;
    const second = make();
    const list = second.list(url);
    await second.ready();
    expect(blocks(list, "kept.example")).toBe(true);
    // The copy is fresh, so nothing was fetched.
    expect(server.requests.length).toBe(before);
    expect(logs.join("\n")).toContain("saved copy");
  });

  it("loads a list named by several policies once", async () => {
    server.lists.set("/shared.txt", { text: "shared.example\n" });
    const url = `${server.origin}/shared.txt`;
    const lists = make();
    expect(lists.list(url)).toBe(lists.list(url));
    await lists.ready();
    expect(server.requests.filter((r) => r.path === "/shared.txt")).toHaveLength(1);
  });

  it("reloads a file when it changes, and keeps it when the file goes bad", async () => {
    const path = `${dir}/watched.txt`;
    await Deno.writeTextFile(path, "one.example\n");
    const lists = make();
    const list = lists.list(path);
    await lists.ready();
    expect(blocks(list, "one.example")).toBe(true);
    await Deno.writeTextFile(path, "two.example\n");
    const deadline = Date.now() + 5000;
    while (!blocks(list, "two.example") && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(blocks(list, "two.example")).toBe(true);
    expect(blocks(list, "one.example")).toBe(false);
    await Deno.writeTextFile(path, "x".repeat(5000));
    expect(await lists.refresh(path)).toBe(false);
    expect(blocks(list, "two.example")).toBe(true);
  });

  it("fails ready() for a file it cannot read", async () => {
    const lists = make();
    lists.list(`${dir}/missing.txt`);
    await expect(lists.ready()).rejects.toThrow(/missing\.txt/);
  });
});
