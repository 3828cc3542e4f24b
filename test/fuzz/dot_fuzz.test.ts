/**
 * Property-based fuzzing of the real DoT listener over TLS (fast-check). Each run writes
 * arbitrary frames — random bodies, MALFORMED fixtures, good queries, zero-length and lying
 * length prefixes, raw noise — split at random points, half-closes, and reads until the bridge
 * closes. The bridge may only answer with well-formed DNS responses to frames it was sent, or
 * close; it must never hang, never throw, and must keep serving other clients.
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import * as fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import {
  aRecords,
  buildQuery,
  connectDot,
  type DotClient,
  frame,
  idOf,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";
import { concat, MALFORMED } from "../dns/fixtures.ts";

const MAX_FRAME = 4096;
const CLOSE_BOUND_MS = 5_000;

let pki: TestPki;
let upstream: LocalDohUpstream;
let bridge: Bridge;
let port: number;
let dir: string;
let good: DotClient;
const logs: string[] = [];
const crashes: unknown[] = [];
const onRejection = (e: PromiseRejectionEvent) => {
  crashes.push(e.reason);
  e.preventDefault();
};
const onError = (e: ErrorEvent) => {
  crashes.push(e.error ?? e.message);
  e.preventDefault();
};

beforeAll(async () => {
  globalThis.addEventListener("unhandledrejection", onRejection);
  globalThis.addEventListener("error", onError);
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-fuzz-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "off"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
      ...["--max-frame-size", String(MAX_FRAME), "--max-inflight", "4"],
      ...["--frame-timeout", "1s", "--query-timeout", "2s"],
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (l) => logs.push(l) }),
    sighup: false,
  });
  port = bridge.dot.addr.port;
  good = await connectDot({ port, caCerts: [pki.ca.certPem] });
});

afterAll(async () => {
  good?.close();
  await bridge?.shutdown();
  await upstream?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
  globalThis.removeEventListener("unhandledrejection", onRejection);
  globalThis.removeEventListener("error", onError);
});

/** What one fuzz run sends: pieces of a byte stream. */
type Piece =
  | { kind: "framed"; body: Uint8Array }
  | { kind: "raw"; bytes: Uint8Array };

const names = [
  "fuzz.example.test",
  "nx.example.test",
  "a.b.c.example.test",
  "x".repeat(60) + ".test",
];

const goodQueryArb: fc.Arbitrary<Piece> = fc.record({
  id: fc.integer({ min: 0, max: 0xffff }),
  name: fc.constantFrom(...names),
  type: fc.constantFrom("A" as const, "AAAA" as const, "TXT" as const),
  edns: fc.boolean(),
}).map((q) => ({ kind: "framed" as const, body: buildQuery(q.name, q) }));

/** Frames the bridge must answer: random bodies of 12+ bytes, MALFORMED ones, good queries. */
const answerableArb: fc.Arbitrary<Piece> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.uint8Array({ minLength: 12, maxLength: 300 })
      .map((body) => ({ kind: "framed" as const, body })),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      ...MALFORMED.filter((m) => m.bytes.length >= 12 && m.bytes.length <= MAX_FRAME),
    ).map((m) => ({ kind: "framed" as const, body: m.bytes })),
  },
  { weight: 3, arbitrary: goodQueryArb },
);

/** Anything at all, including what makes the bridge close the connection. */
const hostileArb: fc.Arbitrary<Piece> = fc.oneof(
  { weight: 3, arbitrary: answerableArb },
  {
    weight: 2,
    arbitrary: fc.uint8Array({ maxLength: 300 }).map((body) => ({ kind: "framed" as const, body })),
  },
  {
    weight: 1,
    arbitrary: fc.constantFrom(...MALFORMED).map((m) => ({
      kind: "framed" as const,
      body: m.bytes,
    })),
  },
  { weight: 1, arbitrary: fc.constant<Piece>({ kind: "framed", body: new Uint8Array(0) }) },
  {
    // A length prefix that may lie (0, small, over the limit, 65535) and a short body.
    weight: 1,
    arbitrary: fc.record({
      len: fc.oneof(
        fc.constantFrom(0, 1, 11, 12, MAX_FRAME, MAX_FRAME + 1, 0xffff),
        fc.nat(0xffff),
      ),
      body: fc.uint8Array({ maxLength: 64 }),
    }).map(({ len, body }) => ({
      kind: "raw" as const,
      bytes: concat([len >> 8, len & 0xff], body),
    })),
  },
  {
    weight: 1,
    arbitrary: fc.uint8Array({ minLength: 1, maxLength: 64 })
      .map((bytes) => ({ kind: "raw" as const, bytes })),
  },
);

const runArb = fc.record({
  pieces: fc.oneof(
    fc.array(answerableArb, { minLength: 1, maxLength: 12 }),
    fc.array(hostileArb, { minLength: 1, maxLength: 8 }),
  ),
  splits: fc.array(fc.nat(), { maxLength: 6 }),
  pauseMs: fc.constantFrom(0, 0, 5),
});

function streamOf(pieces: Piece[]): Uint8Array {
  return concat(...pieces.map((p) => (p.kind === "framed" ? frame(p.body) : p.bytes)));
}

/**
 * How the bridge frames the stream (it does not depend on how the bytes were split): the frames
 * it can dispatch, and whether every frame is an answerable message (12..MAX_FRAME bytes) with
 * no leftover, in which case each must get exactly one answer.
 */
function expectedFrames(stream: Uint8Array): { ids: number[]; clean: boolean } {
  const ids: number[] = [];
  let pos = 0;
  while (stream.length - pos >= 2) {
    const len = (stream[pos] << 8) | stream[pos + 1];
    if (len === 0 || len > MAX_FRAME) return { ids, clean: false }; // frame error: closed
    if (stream.length - pos - 2 < len) return { ids, clean: false }; // partial at the end
    if (len < 12) return { ids, clean: false }; // not a DNS header: dropped
    ids.push((stream[pos + 2] << 8) | stream[pos + 3]);
    pos += 2 + len;
  }
  return { ids, clean: pos === stream.length };
}

interface Outcome {
  answers: Uint8Array[];
  /** Bytes after the last complete frame when the bridge closed. */
  leftover: number;
  closed: boolean;
}

/** Sends the stream over a fresh TLS connection in chunks, half-closes, reads until EOF. */
async function exchange(stream: Uint8Array, splits: number[], pauseMs: number): Promise<Outcome> {
  const conn = await Deno.connectTls({ hostname: "localhost", port, caCerts: [pki.ca.certPem] });
  await conn.handshake();
  const received: Uint8Array[] = [];
  let closed = false;
  const reading = (async () => {
    const buf = new Uint8Array(70_000);
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        received.push(buf.slice(0, n));
      }
    } catch { /* reset counts as closed */ }
    closed = true;
  })();
  const cuts = [...new Set(splits.map((s) => s % (stream.length + 1)))].sort((a, b) => a - b);
  let from = 0;
  try {
    for (const cut of [...cuts, stream.length]) {
      if (cut <= from) continue;
      let pos = from;
      while (pos < cut) pos += await conn.write(stream.subarray(pos, cut));
      from = cut;
      if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
    }
    await conn.closeWrite();
  } catch { /* the bridge may close while we write: allowed */ }
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    reading,
    new Promise((r) => (timer = setTimeout(r, CLOSE_BOUND_MS))),
  ]);
  clearTimeout(timer);
  try {
    conn.close();
  } catch { /* closed */ }
  await reading;
  const all = concat(...received);
  const answers: Uint8Array[] = [];
  let pos = 0;
  while (all.length - pos >= 2) {
    const len = (all[pos] << 8) | all[pos + 1];
    if (all.length - pos - 2 < len) break;
    answers.push(all.slice(pos + 2, pos + 2 + len));
    pos += 2 + len;
  }
  return { answers, leftover: all.length - pos, closed: closed && timer !== undefined };
}

function sortNum(a: number[]): number[] {
  return [...a].sort((x, y) => x - y);
}

let goodId = 0;
async function goodClientWorks(): Promise<void> {
  const id = (goodId = (goodId + 1) & 0xffff);
  const name = "still-good.example.test";
  await good.send(buildQuery(name, { id }));
  const a = await good.waitFor(id);
  expect(aRecords(a)).toEqual([`192.0.2.${octetFor(name)}`]);
}

describe("DoT listener fuzz", () => {
  it("answers arbitrary streams only with well-formed responses to what was sent, or closes", async () => {
    let runs = 0;
    let answered = 0;
    await fc.assert(
      fc.asyncProperty(runArb, async ({ pieces, splits, pauseMs }) => {
        runs++;
        const stream = streamOf(pieces);
        const expected = expectedFrames(stream);
        const out = await exchange(stream, splits, pauseMs);
        // The bridge closed the connection (we half-closed): never hung.
        expect(out.closed).toBe(true);
        // Nothing but whole frames came back.
        expect(out.leftover).toBe(0);
        const ids = out.answers.map(idOf);
        for (const a of out.answers) {
          const decoded = dnsPacket.decode(Buffer.from(a));
          expect(decoded.type).toBe("response");
          expect(expected.ids).toContain(decoded.id);
        }
        // Every answer is for a distinct frame that was sent (no duplicates, no strays).
        const pool = [...expected.ids];
        for (const id of ids) {
          const at = pool.indexOf(id);
          expect(at).toBeGreaterThanOrEqual(0);
          pool.splice(at, 1);
        }
        // A clean stream of answerable frames gets exactly one answer per frame.
        if (expected.clean) expect(sortNum(ids)).toEqual(sortNum(expected.ids));
        answered += out.answers.length;
        await goodClientWorks();
      }),
      { numRuns: 60, seed: Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 2 ** 31) },
    );
    expect(runs).toBe(60);
    expect(answered).toBeGreaterThan(0); // the runs were not all refused outright
    // A fresh good client works too, and nothing escaped as an unhandled error.
    const fresh = await connectDot({ port, caCerts: [pki.ca.certPem] });
    try {
      await fresh.send(buildQuery("after-fuzz.example.test", { id: 7 }));
      expect(aRecords(await fresh.waitFor(7))).toEqual([
        `192.0.2.${octetFor("after-fuzz.example.test")}`,
      ]);
    } finally {
      fresh.close();
    }
    expect(crashes).toEqual([]);
    expect(logs.filter((l) => l.includes("level=error"))).toEqual([]);
  });

  // Regression, found by this fuzz: a Node Buffer's slice() is a view, so answers shared by
  // coalesced queries or the cache once got each other's IDs and re-aged TTLs.
  it("gives identical questions in flight together their own IDs (cache on)", async () => {
    const dir2 = await Deno.makeTempDir({ prefix: "dotbridge-fuzz-cache-" });
    await Deno.writeTextFile(`${dir2}/cert.pem`, pki.server.chainPem);
    await Deno.writeTextFile(`${dir2}/key.pem`, pki.server.keyPem);
    await Deno.writeTextFile(`${dir2}/ca.pem`, pki.ca.certPem);
    const parsed = parseConfig({
      args: [
        ...["--listen", "127.0.0.1:0", "--http-listen", "off"],
        ...["--cert", `${dir2}/cert.pem`, "--key", `${dir2}/key.pem`],
        ...["--upstream-ca", `${dir2}/ca.pem`, "--upstream", upstream.url],
      ],
      env: {},
    });
    if (parsed.help) throw new Error("unexpected --help");
    const cached = await startBridge(parsed.config, { sighup: false });
    const c = await connectDot({ port: cached.dot.addr.port, caCerts: [pki.ca.certPem] });
    try {
      for (const ids of [[0, 1], [5, 6], [7, 0]]) {
        await c.send(...ids.map((id) => buildQuery("same.example.test", { id, type: "TXT" })));
        const answers = await c.collect(2);
        expect(sortNum(answers.map(idOf))).toEqual(sortNum(ids));
      }
    } finally {
      c.close();
      await cached.shutdown();
      await Deno.remove(dir2, { recursive: true });
    }
  });

  it("closes a connection that speaks plaintext HTTP to the TLS port", async () => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"));
    const got: number[] = [];
    const closed = (async () => {
      const buf = new Uint8Array(1024);
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) return true;
          got.push(...buf.subarray(0, n));
        }
      } catch {
        return true; // reset
      }
    })();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      closed,
      new Promise<false>((r) => (timer = setTimeout(() => r(false), CLOSE_BOUND_MS))),
    ]);
    clearTimeout(timer);
    conn.close();
    expect(result).toBe(true);
    // At most a TLS alert record came back (content type 21), never an HTTP or DNS answer.
    if (got.length > 0) expect(got[0]).toBe(21);
    await goodClientWorks();
    expect(crashes).toEqual([]);
  });
});
