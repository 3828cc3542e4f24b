import { afterEach, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import net from "node:net";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { createTlsConnector } from "../../src/deno/tls_connector.ts";
import { issueCertificate, spkiPinFromPem } from "../../src/pki/mod.ts";
import type { LogFields, Logger } from "../../src/log/mod.ts";
import { DotUpstream, type DotUpstreamOptions } from "../../src/upstream/dot.ts";
import { parseDotUrl } from "../../src/upstream/dot_url.ts";
import { UpstreamError } from "../../src/upstream/types.ts";
import { type LocalDotUpstream, startDotUpstream } from "../support/dot_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";
import { rejection } from "../support/rejection.ts";

/** A logger that keeps what it is told. */
function recordingLogger() {
  const lines: { level: string; msg: string; fields?: LogFields }[] = [];
  const at = (level: string) => (msg: string, fields?: LogFields) =>
    lines.push({ level, msg, fields });
  const logger: Logger = {
    debug: at("debug"),
    info: at("info"),
    warn: at("warn"),
    error: at("error"),
  };
  return { logger, lines };
}

function makeQuery(name: string, id: number, type: "A" | "AAAA" = "A"): Query {
  const wire = new Uint8Array(dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
  }));
  const c = classifyQuery(wire);
  if (c.kind !== "query") throw new Error(`bad test query for ${name}`);
  return c.query;
}

/** The answer's ID and its first A record. */
function readAnswer(answer: Uint8Array): { id: number; name: string; a?: string } {
  const p = dnsPacket.decode(Buffer.from(answer));
  const a = p.answers?.find((r) => r.type === "A");
  return { id: p.id!, name: p.questions![0].name, a: a?.type === "A" ? a.data : undefined };
}

function expectZoneAnswer(answer: Uint8Array, name: string, id: number) {
  const got = readAnswer(answer);
  expect(got.id).toBe(id);
  expect(got.name).toBe(name);
  expect(got.a).toBe(`192.0.2.${octetFor(name)}`);
}

async function until(what: string, check: () => boolean, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

let pki: TestPki;
let server: LocalDotUpstream;
const cleanups: (() => Promise<void>)[] = [];

function upstream(options: Partial<DotUpstreamOptions> = {}, target = server): DotUpstream {
  const up = new DotUpstream({
    hostname: "127.0.0.1",
    port: target.port,
    servername: "localhost",
    connect: createTlsConnector({ caCerts: [pki.ca.certPem] }),
    ...options,
  });
  cleanups.push(() => up.close());
  return up;
}

beforeAll(async () => {
  pki = await testPki();
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
  await server?.close();
});

describe("DotUpstream over real TLS", () => {
  it("answers 200 concurrent queries over at most maxConnections connections", async () => {
    server = await startDotUpstream({ cert: pki.server });
    // 40 per connection: 200 queries fill both connections and the rest wait for slots.
    const up = upstream({ maxConnections: 2, maxInFlightPerConnection: 40 });
    expect(up.name).toBe(`tls://127.0.0.1:${server.port}#localhost`);
    const queries = Array.from({ length: 200 }, (_, i) => makeQuery(`q${i}.example.test`, i + 1));
    const before = queries.map((q) => q.wire.slice());
    const answers = await Promise.all(
      queries.map((q) => up.exchange(q, AbortSignal.timeout(10_000))),
    );
    answers.forEach((answer, i) => expectZoneAnswer(answer.wire, `q${i}.example.test`, i + 1));
    expect(queries.map((q) => q.wire)).toEqual(before); // the client's wire is never modified
    expect(server.queries).toBe(200);
    expect(server.connections).toBeGreaterThanOrEqual(1);
    expect(server.connections).toBeLessThanOrEqual(2);
    expect(up.connections).toBeLessThanOrEqual(2);
  });

  it("matches answers that come back out of order on one connection", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const up = upstream({ maxConnections: 1 });
    const names = ["delay-300.example.test", "delay-5.example.test", "delay-150.example.test"];
    const order: string[] = [];
    const answers = await Promise.all(
      names.map((name, i) =>
        up.exchange(makeQuery(name, 100 + i), AbortSignal.timeout(10_000)).then((a) => {
          order.push(name);
          return a;
        })
      ),
    );
    names.forEach((name, i) => expectZoneAnswer(answers[i].wire, name, 100 + i));
    expect(order).toEqual([names[1], names[2], names[0]]);

    server.reverseBatches = true;
    const batch = Array.from({ length: 30 }, (_, i) => `r${i}.example.test`);
    const reversed = await Promise.all(
      batch.map((name, i) => up.exchange(makeQuery(name, i), AbortSignal.timeout(10_000))),
    );
    batch.forEach((name, i) => expectZoneAnswer(reversed[i].wire, name, i));
    expect(server.connections).toBe(1);
  });

  it("retries queries in flight on a fresh connection when the server drops it", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const up = upstream({ maxConnections: 1 });
    expectZoneAnswer(
      (await up.exchange(makeQuery("warm.example.test", 7), AbortSignal.timeout(5000))).wire,
      "warm.example.test",
      7,
    );
    server.dropAfter(40); // the connection dies on its 40th query, with dozens in flight
    const names = Array.from({ length: 100 }, (_, i) => `m${i}.example.test`);
    const answers = await Promise.all(
      names.map((name, i) => up.exchange(makeQuery(name, i), AbortSignal.timeout(10_000))),
    );
    names.forEach((name, i) => expectZoneAnswer(answers[i].wire, name, i));
    expect(server.dropped).toBe(1);
    expect(server.connections).toBe(2);
  });

  it("fails with a network error when the retry's connection is lost too", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const up = upstream({ maxConnections: 1 });
    server.dropAfter(1, 2);
    const error = await rejection(
      up.exchange(makeQuery("lost.example.test", 1), AbortSignal.timeout(10_000)),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("network");
    expect((error as Error).message).toMatch(
      new RegExp(`^upstream tls://127\\.0\\.0\\.1:${server.port}#localhost: connection lost`),
    );
    expect(server.dropped).toBe(2);
    // The upstream recovers on the next connection.
    expectZoneAnswer(
      (await up.exchange(makeQuery("after.example.test", 2), AbortSignal.timeout(5000))).wire,
      "after.example.test",
      2,
    );
    expect(server.connections).toBe(3);
  });

  it("refuses a server whose certificate is for another name", async () => {
    const wrong = await issueCertificate(pki.ca, { dnsNames: ["wrong.example"] });
    server = await startDotUpstream({ cert: wrong });
    const up = upstream();
    const error = await rejection(
      up.exchange(makeQuery("a.example.test", 1), AbortSignal.timeout(5000)),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("network");
    expect((error as Error).message).toMatch(/connect failed: .*localhost.*wrong\.example/);
    expect(server.queries).toBe(0);
  });

  it("accepts a correct SPKI pin and refuses a wrong one", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const rightPin = await spkiPinFromPem(pki.server.certPem);
    const other = await issueCertificate(pki.ca, { dnsNames: ["localhost"] });
    const wrongPin = await spkiPinFromPem(other.certPem);
    expect(wrongPin).not.toBe(rightPin);

    const url = parseDotUrl(`tls://127.0.0.1:${server.port}?pin=${rightPin}#localhost`);
    const pinned = upstream({
      ...url,
      name: url.display,
      connect: createTlsConnector({ caCerts: [pki.ca.certPem], pins: url.pins }),
    });
    expectZoneAnswer(
      (await pinned.exchange(makeQuery("p.example.test", 3), AbortSignal.timeout(5000))).wire,
      "p.example.test",
      3,
    );

    const caPinned = upstream({
      connect: createTlsConnector({
        caCerts: [pki.ca.certPem],
        pins: [await spkiPinFromPem(pki.ca.certPem)], // a pin on the chain's CA also holds
      }),
    });
    expectZoneAnswer(
      (await caPinned.exchange(makeQuery("c.example.test", 4), AbortSignal.timeout(5000))).wire,
      "c.example.test",
      4,
    );

    const badUrl = parseDotUrl(`tls://127.0.0.1:${server.port}?pin=${wrongPin}#localhost`);
    const bad = upstream({
      ...badUrl,
      connect: createTlsConnector({ caCerts: [pki.ca.certPem], pins: badUrl.pins }),
    });
    const error = await rejection(
      bad.exchange(makeQuery("p.example.test", 5), AbortSignal.timeout(5000)),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("network");
    expect((error as Error).message).toContain(`SPKI pin mismatch: the server's key ${rightPin}`);
    expect(server.queries).toBe(2);
  });

  it("rejects with the signal's reason on a stalled server and keeps the connection", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const up = upstream({ maxConnections: 1 });
    server.mode = "stall";
    const started = Date.now();
    const error = await rejection(
      up.exchange(makeQuery("s.example.test", 9), AbortSignal.timeout(200)),
    );
    expect((error as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(5_000); // answered within bounds, not hung
    expect(server.queries).toBe(1);

    server.mode = "ok";
    expectZoneAnswer(
      (await up.exchange(makeQuery("s2.example.test", 10), AbortSignal.timeout(5000))).wire,
      "s2.example.test",
      10,
    );
    expect(server.connections).toBe(1);
    expect(up.connections).toBe(1);
  });

  it("makes a query wait for a slot when every connection is full, bounded by its signal", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const up = upstream({ maxConnections: 1, maxInFlightPerConnection: 2 });
    server.mode = "stall";
    const stalled = [1, 2].map((i) =>
      up.exchange(makeQuery(`w${i}.example.test`, i), AbortSignal.timeout(10_000))
    );
    for (const p of stalled) p.catch(() => {});
    await until("two queries at the server", () => server.queries === 2);
    const third = await rejection(
      up.exchange(makeQuery("w3.example.test", 3), AbortSignal.timeout(100)),
    );
    expect((third as Error).name).toBe("TimeoutError");
    expect(server.queries).toBe(2); // it never got a slot, so it never went out
    expect(server.connections).toBe(1);
    await up.close();
    for (const p of stalled) {
      const error = await rejection(p);
      expect(error).toBeInstanceOf(UpstreamError);
      expect((error as UpstreamError).kind).toBe("unavailable");
    }
  });

  it("ignores an answer with an unknown ID", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const { logger, lines } = recordingLogger();
    const up = upstream({ logger, maxConnections: 1, random: () => 0.25 }); // upstream ID 0x4000
    server.mode = "unknown-id-first";
    expectZoneAnswer(
      (await up.exchange(makeQuery("u.example.test", 77), AbortSignal.timeout(5000))).wire,
      "u.example.test",
      77,
    );
    expect(lines).toContainEqual(expect.objectContaining({
      level: "debug",
      msg: "dot answer dropped",
      fields: expect.objectContaining({ reason: "unknown id" }),
    }));

    server.mode = "wrong-id"; // only a wrong ID: the query gets no answer, the connection stays
    const error = await rejection(
      up.exchange(makeQuery("u2.example.test", 78), AbortSignal.timeout(200)),
    );
    expect((error as Error).name).toBe("TimeoutError");
    server.mode = "ok";
    expectZoneAnswer(
      (await up.exchange(makeQuery("u3.example.test", 79), AbortSignal.timeout(5000))).wire,
      "u3.example.test",
      79,
    );
    expect(server.connections).toBe(1);
  });

  it("fails with bad-answer when a known ID answers another question", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const up = upstream({ maxConnections: 1 });
    server.mode = "wrong-question";
    const error = await rejection(
      up.exchange(makeQuery("b.example.test", 5), AbortSignal.timeout(5000)),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("bad-answer");
    expect((error as Error).message).toMatch(/another question/);
  });

  it("closes idle connections after idleTimeoutMs and reconnects on demand", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const up = upstream({ idleTimeoutMs: 100 });
    expectZoneAnswer(
      (await up.exchange(makeQuery("i.example.test", 1), AbortSignal.timeout(5000))).wire,
      "i.example.test",
      1,
    );
    expect(server.open).toBe(1);
    await until("the idle connection to close", () => server.open === 0 && up.connections === 0);
    expectZoneAnswer(
      (await up.exchange(makeQuery("i2.example.test", 2), AbortSignal.timeout(5000))).wire,
      "i2.example.test",
      2,
    );
    expect(server.connections).toBe(2);
  });

  it("opportunistic mode connects to a wrong-name server and warns once", async () => {
    const wrong = await issueCertificate(pki.ca, { dnsNames: ["wrong.example"] });
    server = await startDotUpstream({ cert: wrong });
    const { logger, lines } = recordingLogger();
    const url = parseDotUrl(`tls://127.0.0.1:${server.port}?opportunistic=1#localhost`);
    expect(url.opportunistic).toBe(true);
    const up = upstream({
      ...url,
      idleTimeoutMs: 50,
      connect: createTlsConnector({ opportunistic: url.opportunistic, logger }), // no CA either
    });
    expectZoneAnswer(
      (await up.exchange(makeQuery("o.example.test", 1), AbortSignal.timeout(5000))).wire,
      "o.example.test",
      1,
    );
    await until("the idle connection to close", () => up.connections === 0);
    expectZoneAnswer(
      (await up.exchange(makeQuery("o2.example.test", 2), AbortSignal.timeout(5000))).wire,
      "o2.example.test",
      2,
    );
    expect(server.connections).toBe(2);
    const warnings = lines.filter((l) => l.level === "warn");
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/NOT authenticated/);
  });

  it("times out a connect whose TLS handshake never completes", async () => {
    const silent = net.createServer(() => {}); // accepts TCP, never speaks TLS
    const sockets = new Set<net.Socket>();
    silent.on("connection", (s) => {
      sockets.add(s);
      s.on("error", () => {});
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    cleanups.push(async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    });
    const port = (silent.address() as net.AddressInfo).port;
    const up = new DotUpstream({
      hostname: "127.0.0.1",
      port,
      connect: createTlsConnector({ caCerts: [pki.ca.certPem] }),
      connectTimeoutMs: 150,
    });
    cleanups.push(() => up.close());
    const started = Date.now();
    const error = await rejection(
      up.exchange(makeQuery("t.example.test", 1), AbortSignal.timeout(10_000)),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("timeout");
    expect((error as Error).message).toBe(
      `upstream tls://127.0.0.1:${port}: connect timed out after 150 ms`,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(up.connections).toBe(0);
  });

  it("fails with a network error when nothing listens, and rejects after close", async () => {
    const probe = net.createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const up = new DotUpstream({
      hostname: "127.0.0.1",
      port,
      connect: createTlsConnector(),
    });
    const error = await rejection(
      up.exchange(makeQuery("r.example.test", 1), AbortSignal.timeout(5000)),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("network");
    expect((error as Error).message).toMatch(/connect failed/);
    await up.close();
    const after = await rejection(
      up.exchange(makeQuery("r.example.test", 2), AbortSignal.timeout(5000)),
    );
    expect((after as UpstreamError).kind).toBe("unavailable");
  });
});

describe("DotUpstream options", () => {
  it("rejects out-of-range limits", () => {
    const connect = createTlsConnector();
    expect(() => new DotUpstream({ hostname: "x", connect, maxConnections: 0 })).toThrow(
      RangeError,
    );
    expect(() => new DotUpstream({ hostname: "x", connect, maxInFlightPerConnection: 5000 }))
      .toThrow(/maxInFlightPerConnection must be an integer from 1 to 4096/);
    expect(() => new DotUpstream({ hostname: "x", connect, port: 70000 })).toThrow(RangeError);
    expect(new DotUpstream({ hostname: "::1", connect }).name).toBe("tls://[::1]:853");
  });
});
