/**
 * The query log end to end, on a bridge over real DoT and DoH: the lines and what they say of the
 * client at each privacy level, a tenant that opted out, size rotation, reopening on SIGHUP (as
 * after logrotate), and a log that cannot keep up (a FIFO nobody reads): answers do not wait,
 * lines are dropped and counted.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import {
  buildQuery,
  type DotClient,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type TestPki, testPki } from "../support/pki.ts";

async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = "condition") {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function readLines(path: string): Record<string, unknown>[] {
  let text = "";
  try {
    text = Deno.readTextFileSync(path);
  } catch {
    return [];
  }
  return text.split("\n").filter(Boolean).map((l) => JSON.parse(l));
}

async function ask(client: DotClient, name: string, id: number): Promise<void> {
  const q = buildQuery(name, { id });
  await client.send(q);
  expect(rcodeOf(await client.waitFor(idOf(q)))).toBe(0);
}

async function metric(bridge: TestBridge, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${bridge.bridge.metricsAddr!.port}/metrics`))
    .text();
  const line = text.split("\n").find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(" ")[1]) : NaN;
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let dir: string;

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-qlog-" });
});

afterAll(async () => {
  await upstream?.close();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
});

describe("query log lines", () => {
  it("logs each answer with its source, the client's network by default, the address only when full", async () => {
    for (const privacy of ["truncated", "full", "hashed", "none"] as const) {
      const path = `${dir}/lines-${privacy}.log`;
      const bridge = await startTestBridge(pki, upstream, [
        "--query-log",
        path,
        "--query-log-client",
        privacy,
      ]);
      try {
        const client = await bridge.connect();
        await ask(client, "one.example.test", 1);
        await ask(client, "one.example.test", 2);
        client.close();
        await until(() => readLines(path).length === 2, 5_000, "two lines");
      } finally {
        await bridge.close();
      }
      const [first, second] = readLines(path);
      expect(first).toMatchObject({
        face: "dot",
        tenant: "",
        name: "one.example.test",
        type: "A",
        rcode: "NOERROR",
        source: "upstream",
        upstream: new URL(upstream.url).origin,
      });
      expect(second.source).toBe("cache");
      expect(typeof first.ms).toBe("number");
      expect(Date.parse(first.time as string)).toBeGreaterThan(Date.now() - 60_000);
      const text = Deno.readTextFileSync(path);
      if (privacy === "full") expect(first.client).toBe("127.0.0.1");
      else expect(text).not.toContain("127.0.0.1");
      if (privacy === "truncated") expect(first.client).toBe("127.0.0.0/24");
      if (privacy === "hashed") expect(first.client).toMatch(/^[0-9a-f]{16}$/);
      if (privacy === "none") expect(first).not.toHaveProperty("client");
    }
  });

  it("leaves out a tenant that opted out, and names the others", async () => {
    const tenants = `${dir}/tenants.json`;
    Deno.writeTextFileSync(
      tenants,
      JSON.stringify({
        tenants: {
          secret: { upstream: upstream.url, "query-log": false, id: "secret0001" },
          kids: { upstream: upstream.url, id: "kids000001" },
        },
      }),
    );
    const path = `${dir}/tenants.log`;
    const bridge = await startTestBridge(pki, upstream, [
      "--query-log",
      path,
      "--tenants",
      tenants,
      "--http-listen",
      "127.0.0.1:0",
    ]);
    const http = Deno.createHttpClient({ caCerts: [bridge.caPem] });
    try {
      for (const [selector, name] of [["secret0001", "s"], ["kids000001", "k"], ["", "g"]]) {
        const suffix = selector ? `/${selector}` : "";
        const res = await fetch(
          `https://localhost:${bridge.bridge.doh!.addr.port}/dns-query${suffix}`,
          {
            method: "POST",
            headers: { "content-type": "application/dns-message" },
            body: buildQuery(`${name}.example.test`, { id: 0 }).slice(),
            client: http,
          },
        );
        expect(res.status).toBe(200);
        await res.arrayBuffer();
      }
      await until(() => readLines(path).length === 2, 5_000, "two lines");
    } finally {
      http.close();
      await bridge.close();
    }
    const lines = readLines(path);
    expect(lines.map((l) => [l.name, l.tenant, l.face])).toEqual([
      ["k.example.test", "kids", "doh"],
      ["g.example.test", "", "doh"],
    ]);
    expect(Deno.readTextFileSync(path)).not.toContain("secret");
  });
});

describe("query log files", () => {
  it("rotates by size, keeping --query-log-files files", async () => {
    const path = `${dir}/rotate.log`;
    const bridge = await startTestBridge(pki, upstream, [
      "--query-log",
      path,
      "--query-log-max-size",
      "2000",
      "--query-log-files",
      "2",
    ]);
    try {
      const client = await bridge.connect();
      for (let i = 0; i < 60; i++) {
        await ask(client, "rot.example.test", i + 1);
        // Separate batches, so several writes (and rotations) happen.
        if (i % 6 === 5) await new Promise((r) => setTimeout(r, 30));
      }
      client.close();
      await until(
        () => {
          const all = [path, `${path}.1`, `${path}.2`].flatMap(readLines);
          return all.length > 0 && Deno.statSync(`${path}.2`).isFile;
        },
        5_000,
        "two rotations",
      );
    } finally {
      await bridge.close();
    }
    for (const p of [path, `${path}.1`, `${path}.2`]) {
      expect(Deno.statSync(p).size).toBeLessThanOrEqual(2000);
    }
    expect(() => Deno.statSync(`${path}.3`)).toThrow();
    // The newest lines are in PATH, older ones in PATH.1 and PATH.2.
    const newest = readLines(path).at(-1)!;
    const older = readLines(`${path}.1`)[0];
    expect(Date.parse(newest.time as string)).toBeGreaterThanOrEqual(
      Date.parse(older.time as string),
    );
  });

  it("reopens the file on SIGHUP, after logrotate moved it", async () => {
    const path = `${dir}/hup.log`;
    const bridge = await startTestBridge(pki, upstream, ["--query-log", path]);
    try {
      const client = await bridge.connect();
      await ask(client, "before.example.test", 1);
      await until(() => readLines(path).length === 1, 5_000, "the first line");
      Deno.renameSync(path, `${path}.moved`);
      Deno.kill(Deno.pid, "SIGHUP");
      await until(() => Deno.stat(path).then(() => true, () => false), 5_000, "a new file");
      await ask(client, "after.example.test", 2);
      await until(() => readLines(path).length === 1, 5_000, "the line after reopening");
      client.close();
    } finally {
      await bridge.close();
    }
    expect(readLines(`${path}.moved`).map((l) => l.name)).toEqual(["before.example.test"]);
    expect(readLines(path).map((l) => l.name)).toEqual(["after.example.test"]);
  });
});

describe("a query log that cannot keep up", () => {
  let bridge: TestBridge;
  let fifo: string;
  let reader: Deno.FsFile | undefined;

  beforeAll(async () => {
    fifo = `${dir}/stuck.fifo`;
    const made = await new Deno.Command("mkfifo", { args: [fifo] }).output();
    expect(made.code).toBe(0);
    bridge = await startTestBridge(pki, upstream, [
      "--query-log",
      fifo,
      "--metrics-listen",
      "127.0.0.1:0",
    ]);
    // A reader that opens the pipe and never reads: writes stop once the pipe's 64 KiB is full.
    reader = await Deno.open(fifo, { read: true });
  });

  afterAll(async () => {
    // Drain the pipe so the bridge's blocked write can finish, then stop.
    const drain = (async () => {
      const buf = new Uint8Array(1 << 16);
      try {
        while ((await reader!.read(buf)) !== null) { /* discard */ }
      } catch {
        // Closed.
      }
    })();
    await bridge?.close();
    await Promise.race([drain, new Promise((r) => setTimeout(r, 2_000))]);
    try {
      reader?.close();
    } catch {
      // Closed.
    }
  });

  /** Median latency (ms) of `n` one-at-a-time cached queries. */
  async function medianLatency(client: DotClient, n: number, from: number): Promise<number> {
    const times: number[] = [];
    for (let i = 0; i < n; i++) {
      const started = performance.now();
      await ask(client, "stuck.example.test", from + i);
      times.push(performance.now() - started);
    }
    times.sort((a, b) => a - b);
    return times[Math.floor(n / 2)];
  }

  it("drops and counts lines while answers keep their latency", async () => {
    const client = await bridge.connect();
    await ask(client, "stuck.example.test", 1); // cached from here on
    const before = await medianLatency(client, 200, 10);
    expect(await metric(bridge, "dotbridge_query_log_dropped_total")).toBe(0);
    // Far more lines than the pipe (64 KiB) and the queue (1 Mi characters) can hold.
    for (let batch = 0; batch < 40; batch++) {
      const queries = Array.from(
        { length: 250 },
        (_, i) => buildQuery("stuck.example.test", { id: 1000 + ((batch * 250 + i) % 60_000) }),
      );
      await client.send(...queries);
      await client.collect(queries.length, 10_000);
    }
    const dropped = await metric(bridge, "dotbridge_query_log_dropped_total");
    expect(dropped).toBeGreaterThan(0);
    const after = await medianLatency(client, 200, 20_000);
    client.close();
    // Generous (a shared 2-core machine): a blocked writer would add its whole stall instead.
    expect(after).toBeLessThan(Math.max(before * 3, before + 2));
    // Still dropping, not queueing without bound.
    expect(await metric(bridge, "dotbridge_query_log_dropped_total")).toBeGreaterThan(dropped);
  });
});
