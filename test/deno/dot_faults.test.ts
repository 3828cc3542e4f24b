import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aRecords,
  buildQuery,
  type DotClient,
  edeCode,
  ednsOptions,
  frame,
  idOf,
  Opt,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import {
  type LocalDohUpstream,
  startDohUpstream,
  type UpstreamMode,
} from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";
import { MALFORMED } from "../dns/fixtures.ts";

const QUERY_TIMEOUT_MS = 1_000;
/** Slack for "answered within the timeout, not hung" bounds on a loaded 2-core machine. */
const MARGIN_MS = 2_000;
const SERVFAIL = 2;
const FORMERR = 1;
const EDE_NO_REACHABLE_AUTHORITY = 22;
const EDE_NETWORK_ERROR = 23;

let pki: TestPki;
let upstream: LocalDohUpstream;
let dot: TestBridge;
const clients: DotClient[] = [];
const bridges: TestBridge[] = [];

async function track(c: Promise<DotClient>): Promise<DotClient> {
  const client = await c;
  clients.push(client);
  return client;
}

async function extraBridge(args: string[], up: LocalDohUpstream | string = upstream) {
  const b = await startTestBridge(pki, up, args);
  bridges.push(b);
  return b;
}

async function expectGoodAnswer(c: DotClient, id: number, name: string): Promise<void> {
  const answer = await c.waitFor(id);
  expect(idOf(answer)).toBe(id);
  expect(rcodeOf(answer)).toBe(0);
  expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(name)}`]);
}

/** Resolves with the milliseconds until `c` is closed by the server, or rejects after `ms`. */
async function closedWithin(c: DotClient, ms: number): Promise<number> {
  const started = performance.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`connection still open after ${ms} ms`)), ms);
  });
  try {
    await Promise.race([c.closed, timeout]);
  } finally {
    clearTimeout(timer);
  }
  return performance.now() - started;
}

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dot = await startTestBridge(pki, upstream, ["--query-timeout", `${QUERY_TIMEOUT_MS}ms`]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  upstream.mode = "ok";
  for (const b of bridges) await b.close();
  await dot?.close();
  await upstream?.close();
});

describe("upstream faults become SERVFAIL for that query alone", () => {
  const cases: { mode: UpstreamMode; ede: number }[] = [
    { mode: "http-500", ede: EDE_NETWORK_ERROR },
    { mode: "wrong-content-type", ede: EDE_NETWORK_ERROR },
    { mode: "wrong-id", ede: EDE_NETWORK_ERROR },
    { mode: "truncated", ede: EDE_NETWORK_ERROR },
    { mode: "oversize", ede: EDE_NETWORK_ERROR },
    { mode: "hang", ede: EDE_NO_REACHABLE_AUTHORITY },
  ];

  it.each(cases)(
    "$mode: SERVFAIL with EDE $ede within the query timeout, then the connection works",
    async ({ mode, ede }) => {
      const c = await track(dot.connect());
      const name = `fault-${mode}.example.test`;
      upstream.mode = mode;
      try {
        const started = performance.now();
        await c.send(buildQuery(name, { id: 0x2000, edns: true }));
        const answer = await c.waitFor(0x2000, QUERY_TIMEOUT_MS + MARGIN_MS);
        expect(performance.now() - started).toBeLessThan(QUERY_TIMEOUT_MS + MARGIN_MS);
        expect(rcodeOf(answer)).toBe(SERVFAIL);
        expect(aRecords(answer)).toEqual([]);
        expect(edeCode(answer)).toBe(ede);
      } finally {
        upstream.mode = "ok";
      }
      const good = `after-${mode}.example.test`;
      await c.send(buildQuery(good, { id: 0x2001 }));
      await expectGoodAnswer(c, 0x2001, good);
      expect(c.isClosed).toBe(false);
    },
  );

  it("a SERVFAIL without client EDNS carries no OPT record", async () => {
    const c = await track(dot.connect());
    upstream.mode = "http-500";
    try {
      await c.send(buildQuery("fault-no-edns.example.test", { id: 0x2100 }));
      const answer = await c.waitFor(0x2100);
      expect(rcodeOf(answer)).toBe(SERVFAIL);
      expect(answer[10] << 8 | answer[11]).toBe(0); // ARCOUNT
    } finally {
      upstream.mode = "ok";
    }
  });

  it("a failing query does not hold up good ones pipelined behind it", async () => {
    const c = await track(dot.connect());
    upstream.mode = "hang";
    await c.send(buildQuery("hangs.example.test", { id: 0x2200, edns: true }));
    // Wait until the hanging request reached the upstream, then switch back.
    for (
      let i = 0;
      i < 100 && !upstream.requests.some((r) => r.name === "hangs.example.test");
      i++
    ) {
      await new Promise((r) => setTimeout(r, 10));
    }
    upstream.mode = "ok";
    await c.send(buildQuery("behind-hang.example.test", { id: 0x2201 }));
    await expectGoodAnswer(c, 0x2201, "behind-hang.example.test");
    expect(c.arrivals).not.toContain(0x2200);
    const failed = await c.waitFor(0x2200, QUERY_TIMEOUT_MS + MARGIN_MS);
    expect(rcodeOf(failed)).toBe(SERVFAIL);
    expect(edeCode(failed)).toBe(EDE_NO_REACHABLE_AUTHORITY);
  });

  it("upstream down (closed port): SERVFAIL with EDE 23, then answers once it is back", async () => {
    const flaky = await startDohUpstream(pki);
    const port = flaky.port;
    const b = await extraBridge(["--query-timeout", `${QUERY_TIMEOUT_MS}ms`], flaky);
    const c = await track(b.connect());
    await c.send(buildQuery("before-down.example.test", { id: 0x2300 }));
    await expectGoodAnswer(c, 0x2300, "before-down.example.test");

    await flaky.close();
    const started = performance.now();
    await c.send(buildQuery("while-down.example.test", { id: 0x2301, edns: true }));
    const answer = await c.waitFor(0x2301, QUERY_TIMEOUT_MS + MARGIN_MS);
    expect(performance.now() - started).toBeLessThan(QUERY_TIMEOUT_MS + MARGIN_MS);
    expect(rcodeOf(answer)).toBe(SERVFAIL);
    expect(edeCode(answer)).toBe(EDE_NETWORK_ERROR);

    const back = await startDohUpstream(pki, "/dns-query", { port });
    try {
      await c.send(buildQuery("after-down.example.test", { id: 0x2302 }));
      await expectGoodAnswer(c, 0x2302, "after-down.example.test");
      expect(back.requests.map((r) => r.name)).toContain("after-down.example.test");
    } finally {
      c.close();
      await back.close();
    }
  });
});

describe("malformed client messages", () => {
  const drops = MALFORMED.filter((m) => m.expect === "drop");
  const formerrs = MALFORMED.filter((m) => m.expect === "formerr");

  it.each(drops)("$name: the connection is closed without an answer", async ({ bytes }) => {
    const c = await track(dot.connect());
    await c.writeRaw(frame(bytes));
    await closedWithin(c, MARGIN_MS);
    expect(c.arrivals).toEqual([]);
  });

  it.each(formerrs)("$name: FORMERR with its ID, and the connection goes on", async ({ bytes }) => {
    const c = await track(dot.connect());
    const id = idOf(bytes);
    const goodId = id ^ 0x8001;
    await c.send(bytes, buildQuery("after-formerr.example.test", { id: goodId }));
    const answer = await c.waitFor(id);
    expect(idOf(answer)).toBe(id);
    expect(answer[2] & 0x80).toBe(0x80); // QR
    expect(rcodeOf(answer)).toBe(FORMERR);
    await expectGoodAnswer(c, goodId, "after-formerr.example.test");
    expect(c.isClosed).toBe(false);
  });
});

describe("connection limits", () => {
  let limits: TestBridge;

  beforeAll(async () => {
    limits = await extraBridge([
      "--max-frame-size",
      "512",
      "--frame-timeout",
      "500ms",
      "--handshake-timeout",
      "500ms",
    ]);
  });

  it("accepts a frame of exactly --max-frame-size and closes on one byte more", async () => {
    const c = await track(limits.connect());
    const base = buildQuery("frame-512.example.test", { id: 0x5120, options: [Opt.padding(0)] });
    const exact = buildQuery("frame-512.example.test", {
      id: 0x5120,
      options: [Opt.padding(512 - base.length)],
    });
    expect(exact.length).toBe(512);
    await c.send(exact);
    await expectGoodAnswer(c, 0x5120, "frame-512.example.test");

    const over = buildQuery("frame-513.example.test", {
      id: 0x5130,
      options: [Opt.padding(513 - base.length)],
    });
    expect(over.length).toBe(513);
    await c.send(over);
    await closedWithin(c, MARGIN_MS);
    expect(c.arrivals).toEqual([0x5120]);
  });

  it("closes a connection whose frame stalls half way after --frame-timeout", async () => {
    const c = await track(limits.connect());
    await c.writeRaw(frame(buildQuery("stalled.example.test", { id: 0x5a5a })).subarray(0, 12));
    const ms = await closedWithin(c, 500 + MARGIN_MS);
    expect(ms).toBeGreaterThanOrEqual(400);
    expect(c.arrivals).toEqual([]);
  });

  it("closes a TCP connection that never starts TLS after --handshake-timeout", async () => {
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: limits.port });
    const started = performance.now();
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const read = (async () => {
        try {
          return await tcp.read(new Uint8Array(16));
        } catch {
          return null; // reset counts as closed
        }
      })();
      const result = await Promise.race([
        read,
        new Promise<"open">((r) => timer = setTimeout(() => r("open"), 500 + MARGIN_MS)),
      ]);
      expect(result).toBeNull();
      expect(performance.now() - started).toBeGreaterThanOrEqual(400);
    } finally {
      clearTimeout(timer);
      tcp.close();
    }
  });

  it("closes an idle connection after --idle-timeout and announces it in keepalive", async () => {
    const idle = await extraBridge(["--idle-timeout", "300ms"]);
    const c = await track(idle.connect());
    await c.send(buildQuery("idle.example.test", { id: 0x1d1e, options: [Opt.keepalive()] }));
    const answer = await c.waitFor(0x1d1e);
    expect(rcodeOf(answer)).toBe(0);
    expect(ednsOptions(answer)?.find((o) => o.code === 11)?.data).toEqual(
      new Uint8Array([0, 3]),
    );
    const ms = await closedWithin(c, 300 + MARGIN_MS);
    expect(ms).toBeGreaterThanOrEqual(200);

    // A connection that never sends anything is closed too.
    const silent = await track(idle.connect());
    await closedWithin(silent, 300 + MARGIN_MS);
  });

  it("refuses connections over --max-connections and keeps the first ones working", async () => {
    const capped = await extraBridge(["--max-connections", "2"]);
    const a = await track(capped.connect());
    const b = await track(capped.connect());
    await a.send(buildQuery("cap-a.example.test", { id: 1 }));
    await b.send(buildQuery("cap-b.example.test", { id: 2 }));
    await expectGoodAnswer(a, 1, "cap-a.example.test");
    await expectGoodAnswer(b, 2, "cap-b.example.test");

    await expect(capped.connect().then((c) => clients.push(c))).rejects.toThrow();

    await a.send(buildQuery("cap-a2.example.test", { id: 3 }));
    await b.send(buildQuery("cap-b2.example.test", { id: 4 }));
    await expectGoodAnswer(a, 3, "cap-a2.example.test");
    await expectGoodAnswer(b, 4, "cap-b2.example.test");

    // Once one closes, a new connection is accepted again.
    a.close();
    for (let i = 0; i < 200 && capped.bridge.dot.connections >= 2; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const c = await track(capped.connect());
    await c.send(buildQuery("cap-c.example.test", { id: 5 }));
    await expectGoodAnswer(c, 5, "cap-c.example.test");
  });
});
