/**
 * Fuzzing the DoQ face over real QUIC: random stream contents (raw bytes, length-prefixed random
 * messages, the malformed-message corpus, valid queries with random IDs and EDNS) each on a new
 * stream. Every stream ends with an answer that is a well-formed DNS response with ID 0, or the
 * connection closed with DOQ_PROTOCOL_ERROR (RFC 9250 §4.3.3: the server may not reset one
 * stream alone in Deno, see docs/platform-notes.md#quic-doq); never a crash, and a good client
 * keeps being answered.
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import * as fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { aRecords, buildQuery, startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { connectDoq, type DoqClient, lengthPrefixed } from "../support/doq_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";
import { MALFORMED } from "../dns/fixtures.ts";

const DOQ_PROTOCOL_ERROR = 0x2;

let pki: TestPki;
let upstream: LocalDohUpstream;
let bridge: TestBridge;
let port: number;
let good: DoqClient;
const crashes: unknown[] = [];
const onRejection = (e: PromiseRejectionEvent) => {
  crashes.push(e.reason);
  e.preventDefault();
};

beforeAll(async () => {
  globalThis.addEventListener("unhandledrejection", onRejection);
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  bridge = await startTestBridge(pki, upstream, [
    ...["--doq-listen", "127.0.0.1:0", "--frame-timeout", "1s", "--query-timeout", "2s"],
  ]);
  port = bridge.bridge.doq!.addr.port;
  good = await connectDoq({ port, caCerts: [pki.ca.certPem] });
});

afterAll(async () => {
  good?.close();
  await bridge?.close();
  await upstream?.close();
  globalThis.removeEventListener("unhandledrejection", onRejection);
});

/** What one stream carries, as the chunks written before the FIN. */
const streamArb: fc.Arbitrary<Uint8Array[]> = fc.oneof(
  { weight: 3, arbitrary: fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 3 }) },
  {
    weight: 3,
    arbitrary: fc.uint8Array({ maxLength: 600 }).map((m) => [lengthPrefixed(m)]),
  },
  {
    weight: 2,
    arbitrary: fc.constantFrom(...MALFORMED.map((m) => m.bytes.subarray(0, 4_000)))
      .map((m) => [lengthPrefixed(m)]),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      id: fc.integer({ min: 0, max: 0xffff }),
      edns: fc.boolean(),
      split: fc.integer({ min: 1, max: 20 }),
    }).map((q) => {
      const framed = lengthPrefixed(buildQuery("fuzz.example.test", q));
      return [framed.subarray(0, q.split), framed.subarray(q.split)];
    }),
  },
);

describe("DoQ face fuzz", () => {
  it(
    "random streams get a well-formed answer with ID 0 or a DOQ_PROTOCOL_ERROR close",
    async () => {
      let answered = 0;
      let closed = 0;
      await fc.assert(
        fc.asyncProperty(streamArb, async (chunks) => {
          const c = await connectDoq({ port, caCerts: [pki.ca.certPem] });
          try {
            const outcome = await c.raw(chunks, { waitMs: 4_000 });
            if (outcome.kind === "answer") {
              const wire = outcome.wire;
              expect((wire[0] << 8) | wire[1]).toBe(0);
              const decoded = dnsPacket.decode(Buffer.from(wire));
              expect(decoded.type).toBe("response");
              answered++;
            } else {
              expect(outcome).toMatchObject({ kind: "closed", code: DOQ_PROTOCOL_ERROR });
              closed++;
            }
          } finally {
            c.close();
          }
        }),
        { numRuns: 60, seed: Number(Deno.env.get("FUZZ_SEED") ?? Date.now() % 2 ** 31) },
      );
      expect(answered + closed).toBe(60);
      const name = "after-fuzz.example.test";
      expect(aRecords(await good.query(buildQuery(name)))).toEqual([`192.0.2.${octetFor(name)}`]);
      expect(crashes).toEqual([]);
    },
    120_000,
  );
});
