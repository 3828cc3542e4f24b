import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aRecords,
  buildQuery,
  decode,
  ednsOptions,
  idOf,
  Opt,
  questionName,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import {
  connectDoq,
  type DoqClient,
  lengthPrefixed,
  type StreamOutcome,
  withIdZero,
} from "../support/doq_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const DOQ_PROTOCOL_ERROR = 0x2;

let pki: TestPki;
let upstream: LocalDohUpstream;
let bridge: TestBridge;
let port: number;
const clients: DoqClient[] = [];

async function client(options: { maxIdleTimeout?: number } = {}): Promise<DoqClient> {
  const c = await connectDoq({ port, caCerts: [pki.ca.certPem], ...options });
  clients.push(c);
  return c;
}

function expectAnswer(answer: Uint8Array, name: string): void {
  expect(idOf(answer)).toBe(0);
  expect(rcodeOf(answer)).toBe(0);
  expect(questionName(answer)).toBe(name);
  expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(name)}`]);
}

function expectProtocolError(outcome: StreamOutcome): void {
  expect(outcome).toMatchObject({ kind: "closed", code: DOQ_PROTOCOL_ERROR });
}

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  bridge = await startTestBridge(pki, upstream, [
    "--doq-listen",
    "127.0.0.1:0",
    "--query-timeout",
    "3s",
    "--idle-timeout",
    "1500ms",
    "--max-inflight",
    "50",
    "--frame-timeout",
    "1s",
  ]);
  port = bridge.bridge.doq!.addr.port;
});

afterAll(async () => {
  for (const c of clients) c.close();
  await bridge?.close();
  await upstream?.close();
});

describe("DoQ face (RFC 9250)", () => {
  it("answers 500 queries over concurrent streams of one connection, each with its record", async () => {
    const c = await client();
    const names = Array.from({ length: 500 }, (_, i) => `q${i}.doq.example.test`);
    const answers = await Promise.all(names.map((n) => c.query(buildQuery(n))));
    answers.forEach((a, i) => expectAnswer(a, names[i]));
    expect(decode(answers[7]).answers?.[0]?.type).toBe("A");
  });

  it("serves many connections at once", async () => {
    const conns = await Promise.all(Array.from({ length: 20 }, () => client()));
    const results = await Promise.all(
      conns.map((c, i) =>
        Promise.all(
          Array.from({ length: 10 }, (_, j) => {
            const name = `c${i}-${j}.many.example.test`;
            return c.query(buildQuery(name)).then((a) => expectAnswer(a, name));
          }),
        )
      ),
    );
    expect(results.flat()).toHaveLength(200);
    expect(bridge.bridge.metrics.registry.render()).toMatch(
      /dotbridge_connections\{face="doq"\} \d+/,
    );
  });

  it("pads the answer when the query was padded, as on DoT", async () => {
    const c = await client();
    const answer = await c.query(buildQuery("pad.doq.example.test", { options: [Opt.padding()] }));
    expect(answer.byteLength % 468).toBe(0);
    expect(ednsOptions(answer)?.some((o) => o.code === 12)).toBe(true);
  });

  // RFC 9250 §4.3.3: a fatal error, the connection is closed with DOQ_PROTOCOL_ERROR.
  describe("a malformed stream closes its connection with DOQ_PROTOCOL_ERROR, and only that", () => {
    const query = () => withIdZero(buildQuery("ok.malformed.example.test"));
    const cases: [string, () => Uint8Array[]][] = [
      ["an empty stream", () => []],
      ["a zero length", () => [new Uint8Array([0, 0])]],
      ["a one-byte stream", () => [new Uint8Array([0])]],
      ["a truncated message", () => [lengthPrefixed(query()).subarray(0, 20)]],
      ["a second message on the stream", () => [lengthPrefixed(query()), lengthPrefixed(query())]],
      ["a trailing byte after the message", () => [lengthPrefixed(query()), new Uint8Array([1])]],
      ["a non-zero message ID", () => [lengthPrefixed(buildQuery("id.example.test", { id: 77 }))]],
      ["more than 65 537 bytes", () => [new Uint8Array([0xff, 0xff]), new Uint8Array(70_000)]],
      ["a message that is not DNS", () => [lengthPrefixed(new Uint8Array([0, 0, 1, 2, 3]))]],
    ];
    for (const [what, bytes] of cases) {
      it(`${what}`, async () => {
        const c = await client();
        const other = await client();
        // Another client's query stays in flight meanwhile and is answered.
        const elsewhere = other.query(buildQuery("delay-300.other.example.test"));
        expectAnswer(await c.query(buildQuery("before.example.test")), "before.example.test");
        expectProtocolError(await c.raw(bytes()));
        expectAnswer(await elsewhere, "delay-300.other.example.test");
        expectAnswer(await other.query(buildQuery("after.example.test")), "after.example.test");
        const again = await client();
        expectAnswer(await again.query(buildQuery("again.example.test")), "again.example.test");
      });
    }

    it(
      "a stream whose query never ends (no FIN) is ended unanswered after the stream timeout",
      async () => {
        const c = await client();
        const started = Date.now();
        const outcome = await c.raw([lengthPrefixed(query())], { fin: false, waitMs: 10_000 });
        expect(outcome).toMatchObject({ kind: "malformed", bytes: new Uint8Array(0) });
        expect(Date.now() - started).toBeGreaterThanOrEqual(900);
        expectAnswer(
          await c.query(buildQuery("after-nofin.example.test")),
          "after-nofin.example.test",
        );
      },
      15_000,
    );
  });

  it("allows no unidirectional stream", async () => {
    const c = await client();
    // The server grants no credit: the stream cannot even be opened.
    const opened = await Promise.race([
      c.conn.createUnidirectionalStream().then(() => "opened", (e) => `refused: ${e}`),
      new Promise((r) => setTimeout(() => r("waiting"), 500)),
    ]);
    expect(opened).not.toBe("opened");
    expectAnswer(await c.query(buildQuery("uni.example.test")), "uni.example.test");
  });

  it("caps concurrent streams per connection (--max-inflight)", async () => {
    const c = await client();
    const streams = [];
    for (let i = 0; i < 50; i++) streams.push(await c.conn.createBidirectionalStream());
    await expect(c.conn.createBidirectionalStream()).rejects.toThrow(RangeError);
    for (const s of streams) await s.writable.abort(0).catch(() => {});
  });

  it("closes an idle connection after the idle timeout", async () => {
    const c = await client();
    expectAnswer(await c.query(buildQuery("idle.example.test")), "idle.example.test");
    const started = Date.now();
    const closed = await Promise.race([
      c.conn.closed.then(() => "closed", () => "closed"),
      new Promise((r) => setTimeout(() => r("open"), 5_000)),
    ]);
    expect(closed).toBe("closed");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_000);
  });

  it("refuses a client that does not offer ALPN doq", async () => {
    await expect(
      connectDoq({ port, caCerts: [pki.ca.certPem], alpn: ["dot"] }).then((c) => c.close()),
    ).rejects.toThrow();
    const c = await client();
    expectAnswer(await c.query(buildQuery("alpn.example.test")), "alpn.example.test");
  });
});

describe("DoQ face shutdown", () => {
  let limited: TestBridge;
  let limitedPort: number;

  beforeAll(async () => {
    limited = await startTestBridge(pki, upstream, [
      "--doq-listen",
      "127.0.0.1:0",
      "--max-connections-per-ip",
      "2",
      "--shutdown-grace",
      "3s",
    ]);
    limitedPort = limited.bridge.doq!.addr.port;
  });

  afterAll(async () => {
    await limited?.close();
  });

  it("answers the queries it has before shutting down, then closes with DOQ_NO_ERROR", async () => {
    const c = await connectDoq({ port: limitedPort, caCerts: [pki.ca.certPem] });
    clients.push(c);
    const slow = c.query(buildQuery("delay-500.drain.example.test"));
    await new Promise((r) => setTimeout(r, 100));
    const stopped = limited.close();
    expectAnswer(await slow, "delay-500.drain.example.test");
    const info = await c.conn.closed;
    expect(info.closeCode).toBe(0);
    await stopped;
    limited = undefined as unknown as TestBridge;
  });
});

describe("DoQ face start-up", () => {
  it("names --doq-listen when its UDP port is taken", async () => {
    const taken = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
    try {
      await expect(
        startTestBridge(pki, upstream, ["--doq-listen", `127.0.0.1:${taken.addr.port}`]),
      ).rejects.toThrow(/--doq-listen.*address already in use/);
    } finally {
      taken.close();
    }
  });
});
