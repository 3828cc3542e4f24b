import { afterEach, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { createQuicConnector } from "../../src/deno/quic_connector.ts";
import { DoqUpstream, type DoqUpstreamOptions } from "../../src/upstream/doq.ts";
import { parseDoqUrl } from "../../src/upstream/dot_url.ts";
import { UpstreamError } from "../../src/upstream/types.ts";
import { type LocalDoqUpstream, startDoqUpstream } from "../support/doq_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

function makeQuery(name: string, id: number): Query {
  const wire = new Uint8Array(dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "A", name }],
  }));
  const c = classifyQuery(wire);
  if (c.kind !== "query") throw new Error(`bad test query for ${name}`);
  return c.query;
}

function expectZoneAnswer(answer: Uint8Array, name: string, id: number) {
  const p = dnsPacket.decode(Buffer.from(answer));
  expect(p.id).toBe(id);
  expect(p.questions![0].name).toBe(name);
  const a = p.answers?.find((r) => r.type === "A");
  expect((a as { data?: unknown } | undefined)?.data).toBe(`192.0.2.${octetFor(name)}`);
}

describe("DoqUpstream against a local DoQ server", () => {
  let pki: TestPki;
  const servers: LocalDoqUpstream[] = [];
  const upstreams: DoqUpstream[] = [];

  beforeAll(async () => {
    pki = await testPki();
  });

  afterEach(async () => {
    for (const u of upstreams.splice(0)) await u.close();
    for (const s of servers.splice(0)) await s.close();
  });

  function server(options: { maxStreams?: number } = {}): LocalDoqUpstream {
    const s = startDoqUpstream({ cert: pki.server, ...options });
    servers.push(s);
    return s;
  }

  function upstream(
    s: LocalDoqUpstream,
    extra: Partial<DoqUpstreamOptions> = {},
  ): DoqUpstream {
    const target = parseDoqUrl(`quic://127.0.0.1:${s.port}#localhost`);
    const u = new DoqUpstream({
      ...target,
      name: target.display,
      connect: createQuicConnector({ caCerts: [pki.ca.certPem] }),
      ...extra,
    });
    upstreams.push(u);
    return u;
  }

  it("answers with the client's ID while the wire carries ID 0", async () => {
    const s = server();
    const u = upstream(s);
    expect(u.name).toBe(`quic://127.0.0.1:${s.port}#localhost`);
    const answer = await u.exchange(makeQuery("one.example.test", 4321), AbortSignal.timeout(5000));
    expectZoneAnswer(answer.wire, "one.example.test", 4321);
    expect(answer.info.id).toBe(4321);
    expect([...s.ids]).toEqual([0]);
  });

  it("serves 200 concurrent queries over one connection, waiting for stream credit", async () => {
    const s = server({ maxStreams: 50 }); // fewer streams than queries: credit must be awaited
    const inner = createQuicConnector({ caCerts: [pki.ca.certPem] });
    let atLimit = 0;
    const u = upstream(s, {
      connect: async (target) => {
        const conn = await inner(target);
        return {
          closed: conn.closed,
          close: () => conn.close(),
          createBidirectionalStream: () =>
            conn.createBidirectionalStream().catch((e) => {
              if (e instanceof RangeError) atLimit++;
              throw e;
            }),
        };
      },
    });
    const names = Array.from({ length: 200 }, (_, i) => `c-${i}.example.test`);
    const answers = await Promise.all(
      names.map((n, i) => u.exchange(makeQuery(n, 1000 + i), AbortSignal.timeout(10_000))),
    );
    answers.forEach((a, i) => expectZoneAnswer(a.wire, names[i], 1000 + i));
    expect(s.connections).toBe(1);
    expect(u.connectionsOpened).toBe(1);
    expect(s.queries).toBe(200);
    expect(s.peakConcurrent).toBeGreaterThan(1);
    expect(s.peakConcurrent).toBeLessThanOrEqual(50);
    expect(atLimit).toBeGreaterThan(0); // the peer's limit was reached, and waited out
  });

  it("reconnects after the server closes the connection (a restart)", async () => {
    const s = server();
    const u = upstream(s);
    await u.exchange(makeQuery("before.example.test", 1), AbortSignal.timeout(5000));
    s.restart();
    await new Promise((r) => setTimeout(r, 100));
    const answer = await u.exchange(makeQuery("after.example.test", 2), AbortSignal.timeout(5000));
    expectZoneAnswer(answer.wire, "after.example.test", 2);
    expect(s.connections).toBe(2);
    expect(u.connectionsOpened).toBe(2);
  });

  it("retries once, on a new connection, the queries in flight when the server kills it", async () => {
    const s = server();
    const u = upstream(s);
    s.killAfter(5, 1); // the first connection dies on its 5th query
    const names = Array.from({ length: 20 }, (_, i) => `delay-50.k${i}.example.test`);
    const answers = await Promise.all(
      names.map((n, i) => u.exchange(makeQuery(n, i + 1), AbortSignal.timeout(10_000))),
    );
    answers.forEach((a, i) => expectZoneAnswer(a.wire, names[i], i + 1));
    expect(s.killed).toBe(1);
    expect(s.connections).toBe(2);
    expect(u.connectionsOpened).toBe(2);
  });

  it("gives up with a network error when the retry's connection dies too", async () => {
    const s = server();
    const u = upstream(s);
    s.killAfter(1, 2); // both the first and the retry's connection die on their first query
    const error = await u.exchange(makeQuery("doomed.example.test", 9), AbortSignal.timeout(5000))
      .catch((e) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("network");
    expect(s.killed).toBe(2);
  });

  it("rejects with the signal's reason when the server is too slow, and cancels the stream", async () => {
    const s = server();
    const u = upstream(s);
    s.mode = "stall";
    const started = Date.now();
    const error = await u.exchange(makeQuery("slow.example.test", 3), AbortSignal.timeout(300))
      .catch((e) => e);
    expect((error as Error).name).toBe("TimeoutError");
    expect(Date.now() - started).toBeLessThan(2000);
    // The connection is still good for the next query.
    s.mode = "ok";
    const answer = await u.exchange(makeQuery("fine.example.test", 4), AbortSignal.timeout(5000));
    expectZoneAnswer(answer.wire, "fine.example.test", 4);
    expect(u.connectionsOpened).toBe(1);
  });

  it("rejects an answer for another question or with another ID as bad-answer", async () => {
    const s = server();
    const u = upstream(s);
    for (const mode of ["wrong-question", "wrong-id"] as const) {
      s.mode = mode;
      const error = await u.exchange(makeQuery("bad.example.test", 5), AbortSignal.timeout(5000))
        .catch((e) => e);
      expect(error).toBeInstanceOf(UpstreamError);
      expect((error as UpstreamError).kind).toBe("bad-answer");
    }
  });

  it("fails with a network error when the certificate is not valid for the name", async () => {
    const s = server();
    const target = parseDoqUrl(`quic://127.0.0.1:${s.port}#wrong.example`);
    const u = new DoqUpstream({
      ...target,
      connect: createQuicConnector({ caCerts: [pki.ca.certPem] }),
    });
    upstreams.push(u);
    const error = await u.exchange(makeQuery("x.example.test", 6), AbortSignal.timeout(5000))
      .catch((e) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("network");
    expect(s.queries).toBe(0);
  });

  it("rejects after close", async () => {
    const s = server();
    const u = upstream(s);
    await u.close();
    const error = await u.exchange(makeQuery("x.example.test", 7), AbortSignal.timeout(1000))
      .catch((e) => e);
    expect((error as UpstreamError).kind).toBe("unavailable");
  });
});

describe("parseDoqUrl", () => {
  it("defaults to port 853 and takes #name", () => {
    expect(parseDoqUrl("quic://dns.example")).toMatchObject({
      hostname: "dns.example",
      port: 853,
      servername: "dns.example",
      display: "quic://dns.example:853",
    });
    expect(parseDoqUrl("QUIC://[2001:db8::1]:8853#dns.example")).toMatchObject({
      hostname: "2001:db8::1",
      port: 8853,
      servername: "dns.example",
      display: "quic://[2001:db8::1]:8853#dns.example",
    });
  });

  it("refuses pins, other parameters, paths and other schemes with a clear message", () => {
    const pin = "n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=";
    expect(() => parseDoqUrl(`quic://dns.example?pin=${pin}`)).toThrow(/pins are not supported/);
    expect(() => parseDoqUrl("quic://dns.example?opportunistic=1")).toThrow(/takes none/);
    expect(() => parseDoqUrl("quic://dns.example/dns-query")).toThrow(/no path/);
    expect(() => parseDoqUrl("tls://dns.example")).toThrow(/scheme must be quic/);
    expect(() => parseDoqUrl("quic://dns.example:0")).toThrow(RangeError);
  });
});
