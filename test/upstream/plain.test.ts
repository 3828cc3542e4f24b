/**
 * Plain DNS upstreams against a real local server (UDP and TCP on one port): `udp://` with its
 * random source ports and IDs, what it ignores, resends and retries over TCP, and `tcp://`
 * pooled and pipelined on the DoT machinery.
 *
 * @module
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Flag } from "../../src/dns/constants.ts";
import { getFlags, headerRcode } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { createTcpConnector } from "../../src/deno/tcp_connector.ts";
import { createDatagramOpener } from "../../src/deno/udp_socket.ts";
import type { LogFields, Logger } from "../../src/log/mod.ts";
import { buildUpstream } from "../../src/upstream/build.ts";
import { DotUpstream } from "../../src/upstream/dot.ts";
import { sameHost, UdpUpstream } from "../../src/upstream/udp.ts";
import { UpstreamError } from "../../src/upstream/types.ts";
import { makeQuery } from "../dns/fixtures.ts";
import { type LocalPlainServer, startPlainServer } from "../support/plain_server.ts";
import { rejection } from "../support/rejection.ts";
import { octetFor } from "../support/zone.ts";
import { decode } from "../support/dot_client.ts";

function query(name: string, id = 4242): Query {
  const c = classifyQuery(makeQuery({ name, id }));
  if (c.kind !== "query") throw new Error("not a query");
  return c.query;
}

function recordingLogger() {
  const lines: { msg: string; fields?: LogFields }[] = [];
  const at = (msg: string, fields?: LogFields) => lines.push({ msg, fields });
  const logger: Logger = { debug: at, info: at, warn: at, error: at };
  return { logger, lines };
}

function aOf(wire: Uint8Array): string[] {
  return (decode(wire).answers ?? []).flatMap((a) => a.type === "A" ? [a.data] : []);
}

let server: LocalPlainServer;
beforeAll(async () => {
  server = await startPlainServer();
});
afterAll(async () => {
  await server?.close();
});
beforeEach(() => {
  server.udpMode = "ok";
  server.udpQueries.length = 0;
  server.udpSeen.length = 0;
  server.tcpQueries.length = 0;
});

function tcpUpstream(): DotUpstream {
  return new DotUpstream({
    hostname: "127.0.0.1",
    port: server.port,
    name: `tcp://127.0.0.1:${server.port}`,
    connect: createTcpConnector(),
  });
}

function udpUpstream(more: Partial<ConstructorParameters<typeof UdpUpstream>[0]> = {}) {
  return new UdpUpstream({
    hostname: "127.0.0.1",
    port: server.port,
    open: createDatagramOpener(),
    tcp: tcpUpstream(),
    ...more,
  });
}

describe("udp:// upstream", () => {
  it("answers with the client's ID, from a random source port and a random ID each time", async () => {
    const upstream = udpUpstream();
    try {
      const answers = await Promise.all(
        ["a.example.test", "b.example.test", "c.example.test", "d.example.test"].map((n, i) =>
          upstream.exchange(query(n, 100 + i), AbortSignal.timeout(3000))
        ),
      );
      answers.forEach((a, i) => {
        expect(a.info.id).toBe(100 + i);
        expect(decode(a.wire).id).toBe(100 + i);
        expect(a.info.question?.name).toBe(["a", "b", "c", "d"][i] + ".example.test");
      });
      expect(aOf(answers[0].wire)).toEqual([`192.0.2.${octetFor("a.example.test")}`]);
      const ports = new Set(server.udpSeen.map((s) => s.port));
      const ids = new Set(server.udpSeen.map((s) => s.id));
      expect(ports.size).toBe(4);
      expect(ids.size).toBeGreaterThan(1); // random (4 equal 16-bit IDs: 1 in 2^48)
      expect(upstream.name).toBe(`udp://127.0.0.1:${server.port}`);
    } finally {
      await upstream.close();
    }
  });

  it("ignores forged datagrams (another ID, question or sender, or malformed) and takes the real answer", async () => {
    server.udpMode = "forge-first";
    const { logger, lines } = recordingLogger();
    const upstream = udpUpstream({ logger });
    try {
      const answer = await upstream.exchange(query("real.example.test"), AbortSignal.timeout(3000));
      expect(aOf(answer.wire)).toEqual([`192.0.2.${octetFor("real.example.test")}`]);
      const reasons = lines.filter((l) => l.msg === "udp datagram ignored").map((l) =>
        String(l.fields?.reason)
      );
      expect(reasons).toHaveLength(4);
      expect(reasons).toContain("another id");
      expect(reasons).toContain("another sender");
      expect(reasons.some((r) => /another question/.test(r))).toBe(true);
      expect(reasons.some((r) => /malformed/.test(r))).toBe(true);
    } finally {
      await upstream.close();
    }
  });

  it("sends the query again when no answer comes within retransmitMs", async () => {
    server.udpMode = "answer-second";
    const upstream = udpUpstream({ retransmitMs: 100 });
    try {
      const started = performance.now();
      const answer = await upstream.exchange(query("lost.example.test"), AbortSignal.timeout(3000));
      expect(headerRcode(answer.info.flags)).toBe(0);
      expect(server.udpQueries).toEqual(["lost.example.test", "lost.example.test"]);
      expect(performance.now() - started).toBeLessThan(2000);
    } finally {
      await upstream.close();
    }
  });

  it("asks again over TCP when the UDP answer is truncated", async () => {
    server.udpMode = "truncate";
    const upstream = udpUpstream();
    try {
      const answer = await upstream.exchange(
        query("big.example.test", 77),
        AbortSignal.timeout(3000),
      );
      expect(getFlags(answer.wire) & Flag.TC).toBe(0);
      expect(answer.info.id).toBe(77);
      expect(aOf(answer.wire)).toEqual([`192.0.2.${octetFor("big.example.test")}`]);
      expect(server.udpQueries).toEqual(["big.example.test"]);
      expect(server.tcpQueries).toEqual(["big.example.test"]);
    } finally {
      await upstream.close();
    }
  });

  it("fails a truncated answer without a TCP upstream to ask", async () => {
    server.udpMode = "truncate";
    const upstream = udpUpstream({ tcp: undefined });
    const error = await rejection(
      upstream.exchange(query("x.example.test"), AbortSignal.timeout(3000)),
    );
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("bad-answer");
  });

  it("rejects with the signal's reason when nothing answers, and leaves no socket open", async () => {
    server.udpMode = "silent";
    const opener = createDatagramOpener();
    let open = 0;
    const upstream = udpUpstream({
      retransmitMs: 50,
      open: (target) => {
        const socket = opener(target);
        open++;
        let closed = false;
        return {
          send: (d) => socket.send(d),
          receive: () => socket.receive(),
          close: () => {
            if (!closed) open--;
            closed = true;
            socket.close();
          },
        };
      },
    });
    const reason = new Error("deadline");
    const controller = new AbortController();
    setTimeout(() => controller.abort(reason), 200);
    const error = await rejection(
      upstream.exchange(query("quiet.example.test"), controller.signal),
    );
    expect(error).toBe(reason);
    expect(server.udpQueries.length).toBeGreaterThanOrEqual(2); // resent meanwhile
    expect(open).toBe(0);
    await upstream.close();
  });

  it("rejects after close", async () => {
    const upstream = udpUpstream();
    await upstream.close();
    const error = await rejection(
      upstream.exchange(query("x.example.test"), AbortSignal.timeout(1000)),
    );
    expect((error as UpstreamError).kind).toBe("unavailable");
  });
});

describe("tcp:// upstream", () => {
  it("pipelines concurrent queries on one pooled connection", async () => {
    const upstream = tcpUpstream();
    try {
      const names = Array.from({ length: 20 }, (_, i) => `t${i}.example.test`);
      const answers = await Promise.all(
        names.map((n, i) => upstream.exchange(query(n, i), AbortSignal.timeout(3000))),
      );
      answers.forEach((a, i) => {
        expect(a.info.id).toBe(i);
        expect(aOf(a.wire)).toEqual([`192.0.2.${octetFor(names[i])}`]);
      });
      expect(server.tcpConnections).toBeLessThanOrEqual(2);
      expect(upstream.connections).toBe(1);
    } finally {
      await upstream.close();
    }
  });

  it("fails with a network error when nothing listens", async () => {
    const upstream = new DotUpstream({
      hostname: "127.0.0.1",
      port: 1,
      name: "tcp://127.0.0.1:1",
      connect: createTcpConnector(),
    });
    const error = await rejection(
      upstream.exchange(query("x.example.test"), AbortSignal.timeout(3000)),
    );
    expect((error as UpstreamError).kind).toBe("network");
    expect((error as Error).message).toMatch(/TCP to 127\.0\.0\.1:1/);
    await upstream.close();
  });
});

describe("buildUpstream with plain DNS URLs", () => {
  const factories = {
    doh: () => {
      throw new Error("no DoH here");
    },
    dot: () => {
      throw new Error("no DoT here");
    },
    tcp: () => createTcpConnector(),
    udp: () => createDatagramOpener(),
  };

  it("builds udp:// and tcp:// members named by scheme, address, port and place", async () => {
    const upstream = buildUpstream({
      upstreams: [`udp://127.0.0.1:${server.port}`, `tcp://127.0.0.1:${server.port}`],
      upstreamStrategy: "round-robin",
      dohMethod: "POST",
      upstreamCooldownMs: 1000,
      attemptTimeoutMs: 1000,
    }, factories);
    try {
      expect(upstream.name).toBe(
        `round-robin(udp://127.0.0.1:${server.port} [1], tcp://127.0.0.1:${server.port} [2])`,
      );
      await upstream.exchange(query("r1.example.test"), AbortSignal.timeout(3000));
      await upstream.exchange(query("r2.example.test"), AbortSignal.timeout(3000));
      expect([...server.udpQueries, ...server.tcpQueries].sort()).toEqual([
        "r1.example.test",
        "r2.example.test",
      ]);
    } finally {
      await upstream.close();
    }
  });

  it("refuses udp:// where the runtime has no UDP", () => {
    expect(() =>
      buildUpstream({
        upstreams: ["udp://192.168.1.1"],
        upstreamStrategy: "failover",
        dohMethod: "POST",
        upstreamCooldownMs: 1000,
        attemptTimeoutMs: 1000,
      }, { ...factories, udp: undefined })
    ).toThrow(/udp:\/\/ needs UDP sockets/);
  });
});

describe("sameHost (which datagrams come from the UDP upstream)", () => {
  it("takes one address in any spelling, and nothing else", () => {
    expect(sameHost("::1", "0:0:0:0:0:0:0:1")).toBe(true);
    expect(sameHost("[2001:db8::53]", "2001:DB8:0::53")).toBe(true);
    expect(sameHost("::ffff:192.0.2.1", "192.0.2.1")).toBe(true);
    expect(sameHost("192.0.2.1", "192.0.2.10")).toBe(false);
    expect(sameHost("not an address", "192.0.2.1")).toBe(false);
  });
});
