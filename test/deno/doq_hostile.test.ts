/**
 * Hostile DoQ peers that `Deno.connectQuic` cannot play, driven by the raw QUIC client
 * (`test/support/quic_raw_client.ts`) over real UDP against a running bridge.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { aRecords, buildQuery, startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { connectDoq, lengthPrefixed, withIdZero } from "../support/doq_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { type RawQuicClient, rawQuicConnect } from "../support/quic_raw_client.ts";
import { octetFor } from "../support/zone.ts";

const DOQ_EXCESSIVE_LOAD = 0x4;
/** Slack for "closed, not hung" bounds on a loaded 2-core machine. */
const MARGIN_MS = 3_000;

let pki: TestPki;
let upstream: LocalDohUpstream;
let bridge: TestBridge;
let port: number;
let raws: RawQuicClient[] = [];

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  bridge = await startTestBridge(pki, upstream, [
    "--doq-listen",
    "127.0.0.1:0",
    "--frame-timeout",
    "1s",
    "--idle-timeout",
    "30s",
  ]);
  port = bridge.bridge.doq!.addr.port;
});

afterEach(() => {
  for (const r of raws) r.close();
  raws = [];
});

afterAll(async () => {
  await bridge?.close();
  await upstream?.close();
});

async function raw(streamWindow: number): Promise<RawQuicClient> {
  const c = await rawQuicConnect({ port, streamWindow, keepAliveMs: 200 });
  raws.push(c);
  await c.handshake;
  return c;
}

describe("DoQ answer deadline", () => {
  it(
    "a client that grants no credit for its answer, while keeping the connection alive, " +
      "is closed with DOQ_EXCESSIVE_LOAD after the answer deadline",
    async () => {
      // 8 bytes of credit per stream, never raised: the answer (~50 bytes) cannot be written.
      const stuck = await raw(8);
      const started = performance.now();
      const id = stuck.send(lengthPrefixed(withIdZero(buildQuery("stuck.doq.example.test"))));
      // Meanwhile another client is served as usual.
      const other = await connectDoq({ port, caCerts: [pki.ca.certPem] });
      try {
        const answer = await other.query(buildQuery("other.doq.example.test"));
        expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("other.doq.example.test")}`]);
      } finally {
        other.close();
      }
      let timer: ReturnType<typeof setTimeout> | undefined;
      const closed = await Promise.race([
        stuck.closed,
        new Promise<"open">((r) => (timer = setTimeout(() => r("open"), 1_000 + MARGIN_MS))),
      ]);
      clearTimeout(timer);
      expect(closed).toMatchObject({ application: true, code: DOQ_EXCESSIVE_LOAD, space: "app" });
      expect(performance.now() - started).toBeGreaterThanOrEqual(900);
      expect(stuck.streams.get(id)?.data.length).toBe(8);
      expect(bridge.bridge.metrics.registry.render()).toMatch(
        /face="doq",event="closed-answer-timeout"\} 1/,
      );
    },
    15_000,
  );

  it("the same client with credit for its answer gets it whole", async () => {
    const fine = await raw(1 << 16);
    const name = "credit.doq.example.test";
    const id = fine.send(lengthPrefixed(withIdZero(buildQuery(name))));
    const deadline = Date.now() + MARGIN_MS;
    while (!fine.streams.get(id)?.fin && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const stream = fine.streams.get(id)!;
    expect(stream.fin).toBe(true);
    const length = (stream.data[0] << 8) | stream.data[1];
    expect(stream.data.length).toBe(2 + length);
    expect(aRecords(stream.data.subarray(2))).toEqual([`192.0.2.${octetFor(name)}`]);
  });
});
