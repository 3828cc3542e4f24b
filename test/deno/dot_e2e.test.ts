import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aRecords,
  buildQuery,
  connectDot,
  type DotClient,
  ednsOptions,
  frame,
  idOf,
  Opt,
  questionName,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

let pki: TestPki;
let upstream: LocalDohUpstream;
let dot: TestBridge;
const clients: DotClient[] = [];

async function client(): Promise<DotClient> {
  const c = await dot.connect();
  clients.push(c);
  return c;
}

/** The A record the test zone gives `name`. */
function expectedA(name: string): string {
  return `192.0.2.${octetFor(name)}`;
}

function expectAnswer(answer: Uint8Array, id: number, name: string): void {
  expect(idOf(answer)).toBe(id);
  expect(rcodeOf(answer)).toBe(0);
  expect(questionName(answer)).toBe(name);
  expect(aRecords(answer)).toEqual([expectedA(name)]);
}

function requestsFor(name: string) {
  return upstream.requests.filter((r) => r.name === name);
}

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dot = await startTestBridge(pki, upstream, ["--query-timeout", "3s"]);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await dot?.close();
  await upstream?.close();
});

describe("DoT -> DoH end to end", () => {
  it("answers 500 pipelined queries on one connection, each with its own ID and record", async () => {
    const c = await client();
    const names = Array.from({ length: 500 }, (_, i) => `pipe-${i}.example.test`);
    const ids = names.map((_, i) => 1000 + i * 7);
    const queries = names.map((name, i) => buildQuery(name, { id: ids[i] }));
    // Five large writes of 100 frames each.
    for (let i = 0; i < queries.length; i += 100) await c.send(...queries.slice(i, i + 100));

    const answers = await c.collect(500, 20_000);
    const byId = new Map(answers.map((a) => [idOf(a), a]));
    expect(byId.size).toBe(500);
    names.forEach((name, i) => expectAnswer(byId.get(ids[i])!, ids[i], name));
    expect(c.isClosed).toBe(false);
  });

  it("answers out of order: a fast query overtakes a slow one sent before it", async () => {
    const c = await client();
    const slow = "delay-800.example.test";
    const fast = "fast-after-slow.example.test";
    await c.send(buildQuery(slow, { id: 0x5100 }));
    await c.send(buildQuery(fast, { id: 0x5200 }));

    const fastAnswer = await c.waitFor(0x5200);
    expect(c.arrivals).not.toContain(0x5100);
    expectAnswer(fastAnswer, 0x5200, fast);
    expectAnswer(await c.waitFor(0x5100), 0x5100, slow);
    expect(c.arrivals).toEqual([0x5200, 0x5100]);
  });

  it("reassembles a query written one byte at a time", async () => {
    const c = await client();
    const name = "byte-by-byte.example.test";
    await c.writeRaw(frame(buildQuery(name, { id: 0x0b0b })), { chunkSize: 1, pauseMs: 2 });
    expectAnswer(await c.waitFor(0x0b0b), 0x0b0b, name);
  });

  it("answers several queries written in one write, and frames split across writes", async () => {
    const c = await client();
    const names = [
      "one-write-a.example.test",
      "one-write-b.example.test",
      "one-write-c.example.test",
    ];
    await c.writeRaw(frame(...names.map((n, i) => buildQuery(n, { id: 0x0c00 + i }))));
    for (const [i, n] of names.entries()) expectAnswer(await c.waitFor(0x0c00 + i), 0x0c00 + i, n);

    // Two frames cut in the middle of the second one's length prefix and body.
    const more = frame(
      buildQuery("split-a.example.test", { id: 0x0d01 }),
      buildQuery("split-b.example.test", { id: 0x0d02 }),
    );
    const firstLen = buildQuery("split-a.example.test", { id: 0x0d01 }).length + 2;
    await c.writeRaw(more.subarray(0, firstLen + 1));
    await new Promise((r) => setTimeout(r, 20));
    await c.writeRaw(more.subarray(firstLen + 1, firstLen + 9));
    await new Promise((r) => setTimeout(r, 20));
    await c.writeRaw(more.subarray(firstLen + 9));
    expectAnswer(await c.waitFor(0x0d01), 0x0d01, "split-a.example.test");
    expectAnswer(await c.waitFor(0x0d02), 0x0d02, "split-b.example.test");
  });

  it("pads the answer to 468 when the client padded, and sends upstream padded to 128 with ID 0", async () => {
    const c = await client();
    const name = "padded.example.test";
    await c.send(buildQuery(name, { id: 0x4444, options: [Opt.padding(20)] }));
    const answer = await c.waitFor(0x4444);
    expectAnswer(answer, 0x4444, name);
    expect(answer.length % 468).toBe(0);
    expect(ednsOptions(answer)?.some((o) => o.code === 12)).toBe(true);

    const seen = requestsFor(name);
    expect(seen).toHaveLength(1);
    expect(seen[0].paddedTo128).toBe(true);
    expect(seen[0].length).toBeGreaterThan(0);
    expect(seen[0].id).toBe(0);
    expect(seen[0].options).toContain(12);
  });

  it("sends every query upstream with ID 0 and padded to 128, even without client EDNS", async () => {
    const c = await client();
    const name = "no-edns-upstream.example.test";
    await c.send(buildQuery(name, { id: 0x7777 }));
    const answer = await c.waitFor(0x7777);
    expectAnswer(answer, 0x7777, name);
    // No OPT in the query, so none in the answer, whatever went upstream.
    expect(ednsOptions(answer)).toBeUndefined();
    expect(answer[10] << 8 | answer[11]).toBe(0); // ARCOUNT
    const [seen] = requestsFor(name);
    expect(seen.id).toBe(0);
    expect(seen.paddedTo128).toBe(true);
  });

  it("announces the idle timeout in edns-tcp-keepalive when asked (100 = 10 s)", async () => {
    const c = await client();
    const name = "keepalive.example.test";
    await c.send(buildQuery(name, { id: 0x1111, options: [Opt.keepalive()] }));
    const answer = await c.waitFor(0x1111);
    expectAnswer(answer, 0x1111, name);
    const keepalive = ednsOptions(answer)?.find((o) => o.code === 11);
    expect(keepalive?.data).toEqual(new Uint8Array([0, 100]));
    // Hop-by-hop: the keepalive option does not go upstream.
    expect(requestsFor(name)[0].options).not.toContain(11);

    // With EDNS but without the option, no keepalive comes back.
    await c.send(buildQuery("no-keepalive.example.test", { id: 0x1112, edns: true }));
    const plain = await c.waitFor(0x1112);
    expect(ednsOptions(plain)).toBeDefined();
    expect(ednsOptions(plain)!.some((o) => o.code === 11)).toBe(false);
  });

  it("strips the client's ECS option before the upstream", async () => {
    const c = await client();
    const name = "ecs-stripped.example.test";
    await c.send(buildQuery(name, { id: 0x0808, options: [Opt.clientSubnet(198, 51, 100)] }));
    expectAnswer(await c.waitFor(0x0808), 0x0808, name);
    const [seen] = requestsFor(name);
    expect(seen).toBeDefined();
    expect(seen.ecs).toBe(false);
  });

  it("forwards ECS with --keep-client-subnet (the upstream does see option 8 when sent)", async () => {
    const keep = await startTestBridge(pki, upstream, ["--keep-client-subnet"]);
    const c = await keep.connect();
    try {
      const name = "ecs-kept.example.test";
      await c.send(buildQuery(name, { id: 0x0809, options: [Opt.clientSubnet(198, 51, 100)] }));
      expectAnswer(await c.waitFor(0x0809), 0x0809, name);
      expect(requestsFor(name)[0].ecs).toBe(true);
    } finally {
      c.close();
      await keep.close();
    }
  });

  it("a client sending a zero-length frame is closed without disturbing another client", async () => {
    const good = await client();
    const bad = await client();
    await good.send(buildQuery("delay-300.example.test", { id: 0x0a01 }));
    await bad.writeRaw(new Uint8Array([0, 0]));
    await bad.closed;
    expect(bad.isClosed).toBe(true);
    expect(bad.arrivals).toEqual([]);

    expectAnswer(await good.waitFor(0x0a01), 0x0a01, "delay-300.example.test");
    await good.send(buildQuery("still-good.example.test", { id: 0x0a02 }));
    expectAnswer(await good.waitFor(0x0a02), 0x0a02, "still-good.example.test");
    expect(good.isClosed).toBe(false);
  });

  it("serves a client that dials by IP address (SAN 127.0.0.1)", async () => {
    const c = await connectDot({ port: dot.port, caCerts: [dot.caPem], hostname: "127.0.0.1" });
    clients.push(c);
    await c.send(buildQuery("by-ip.example.test", { id: 3 }));
    expectAnswer(await c.waitFor(3), 3, "by-ip.example.test");
  });
});
