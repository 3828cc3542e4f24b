import { answerOf } from "../../src/dns/answer.ts";
import { describe, expect, it } from "vitest";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { encodeFrames, FrameDecoder } from "../../src/framing/codec.ts";
import { type Upstream, UpstreamError } from "../../src/upstream/types.ts";
import type { SocketsConnect, SocketsSocket } from "../../src/worker/sockets_connector.ts";
import { buildWorkerUpstream, requestScopedUpstream } from "../../src/worker/upstreams.ts";
import { aRecords, buildQuery, idOf } from "../support/dot_client.ts";
import { answerFromZone, octetFor } from "../support/zone.ts";

function parsed(name: string, id = 1): Query {
  const c = classifyQuery(buildQuery(name, { id }));
  if (c.kind !== "query") throw new Error("test query did not classify");
  return c.query;
}

/** An in-memory DoT server behind a cloudflare:sockets-shaped connect. */
function memoryDot() {
  const dialled: string[] = [];
  let open = 0;
  const connect: SocketsConnect = (address) => {
    dialled.push(`${address.hostname}:${address.port}`);
    open++;
    let controller!: ReadableStreamDefaultController<Uint8Array>;
    let done = false;
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => resolveClosed = r);
    const finish = () => {
      if (done) return;
      done = true;
      open--;
      try {
        controller.close();
      } catch { /* already closed */ }
      resolveClosed();
    };
    const decoder = new FrameDecoder();
    const socket: SocketsSocket = {
      opened: Promise.resolve(),
      readable: new ReadableStream<Uint8Array>({ start: (c) => void (controller = c) }),
      writable: new WritableStream<Uint8Array>({
        write(chunk) {
          const answers = decoder.push(chunk).map(answerFromZone);
          if (answers.length > 0) controller.enqueue(encodeFrames(answers));
        },
        close: finish,
      }),
      closed,
      close() {
        finish();
        return closed;
      },
    };
    return socket;
  };
  return { connect, dialled, open: () => open };
}

function failingFetch(): typeof fetch {
  return () => Promise.resolve(new Response("no", { status: 503 }));
}

describe("buildWorkerUpstream", () => {
  it("opens a DoT connection per exchange and closes it after the answer", async () => {
    const dot = memoryDot();
    const upstream = buildWorkerUpstream(
      {
        upstreams: ["tls://dns.example:8853"],
        upstreamStrategy: "failover",
        dohMethod: "POST",
        upstreamCooldownMs: 0,
        attemptTimeoutMs: 1_000,
      },
      { connect: dot.connect },
    );
    expect(upstream.name).toBe("tls://dns.example:8853");
    expect(dot.dialled).toEqual([]); // learning the name opened nothing
    for (const [i, name] of ["one.example.test", "two.example.test"].entries()) {
      const answer = await upstream.exchange(parsed(name, 100 + i), AbortSignal.timeout(2_000));
      expect(idOf(answer.wire)).toBe(100 + i);
      expect(aRecords(answer.wire)).toEqual([`192.0.2.${octetFor(name)}`]);
    }
    expect(dot.dialled).toEqual(["dns.example:8853", "dns.example:8853"]);
    await new Promise((r) => setTimeout(r, 10));
    expect(dot.open()).toBe(0);
    await upstream.close();
  });

  it("groups DoH and DoT members and fails over from a failing DoH upstream to DoT", async () => {
    const dot = memoryDot();
    const upstream = buildWorkerUpstream(
      {
        upstreams: ["https://doh.example/dns-query", "tls://dns.example"],
        upstreamStrategy: "failover",
        dohMethod: "POST",
        upstreamCooldownMs: 30_000,
        attemptTimeoutMs: 1_000,
      },
      { connect: dot.connect, fetch: failingFetch() },
    );
    const answer = await upstream.exchange(
      parsed("grouped.example.test", 9),
      AbortSignal.timeout(2_000),
    );
    expect(aRecords(answer.wire)).toEqual([`192.0.2.${octetFor("grouped.example.test")}`]);
    expect(dot.dialled).toEqual(["dns.example:853"]);
    expect(upstream.name).toContain("tls://dns.example:853");
    await upstream.close();
  });
});

describe("buildWorkerUpstream with a tcp:// upstream", () => {
  it("dials plain TCP (secureTransport off) per exchange, and TLS for tls://", async () => {
    const dot = memoryDot();
    const transports: string[] = [];
    const connect: SocketsConnect = (address, options) => {
      transports.push(`${options.secureTransport} ${address.hostname}:${address.port}`);
      return dot.connect(address, options);
    };
    const upstream = buildWorkerUpstream({
      upstreams: ["tcp://192.0.2.53", "tls://dns.example"],
      upstreamStrategy: "round-robin",
      dohMethod: "POST",
      upstreamCooldownMs: 1000,
      attemptTimeoutMs: 1000,
    }, { connect, fetch: failingFetch() });
    const a = await upstream.exchange(parsed("one.example.test", 5), AbortSignal.timeout(2000));
    const b = await upstream.exchange(parsed("two.example.test", 6), AbortSignal.timeout(2000));
    expect(idOf(a.wire)).toBe(5);
    expect(aRecords(b.wire)).toEqual([`192.0.2.${octetFor("two.example.test")}`]);
    // Built per exchange, so the round-robin turn starts over: the first member each time.
    expect(transports).toEqual(["off 192.0.2.53:53", "off 192.0.2.53:53"]);
    expect(dot.open()).toBe(0);
    await upstream.close();
  });
});

describe("buildWorkerUpstream with DoH upstreams only", () => {
  it("is built once, so a failed member stays cooled down across requests", async () => {
    const calls: string[] = [];
    const fetchFn = async (input: Request | URL | string, init?: RequestInit) => {
      const url = String(input);
      calls.push(url);
      if (url.startsWith("https://down.example/")) return new Response("no", { status: 503 });
      const query = new Uint8Array(await new Response(init?.body).arrayBuffer());
      return new Response(answerFromZone(query).slice(), {
        headers: { "content-type": "application/dns-message" },
      });
    };
    const upstream = buildWorkerUpstream({
      upstreams: ["https://down.example/dns-query", "https://up.example/dns-query"],
      upstreamStrategy: "failover",
      dohMethod: "POST",
      upstreamCooldownMs: 60_000,
      attemptTimeoutMs: 1_000,
    }, { fetch: fetchFn });
    for (let i = 0; i < 3; i++) {
      const answer = await upstream.exchange(
        parsed(`r${i}.example.test`, i),
        AbortSignal.timeout(2_000),
      );
      expect(aRecords(answer.wire)).toEqual([`192.0.2.${octetFor(`r${i}.example.test`)}`]);
    }
    expect(calls.filter((u) => u.startsWith("https://down.example/"))).toHaveLength(1);
    expect(calls.filter((u) => u.startsWith("https://up.example/"))).toHaveLength(3);
    await upstream.close();
  });
});

describe("requestScopedUpstream", () => {
  function fakeBuilder() {
    const built: { closed: boolean }[] = [];
    const build = (): Upstream => {
      const state = { closed: false };
      built.push(state);
      return {
        name: "fake",
        exchange: (q) =>
          q.question.name.startsWith("fail.")
            ? Promise.reject(new UpstreamError("fake", "network", "down"))
            : Promise.resolve(answerOf(answerFromZone(q.wire))),
        close: () => {
          state.closed = true;
          return Promise.resolve();
        },
      };
    };
    return { build, built };
  }

  it("builds an upstream per exchange and closes each, answer or failure", async () => {
    const fake = fakeBuilder();
    const scoped = requestScopedUpstream("tls://dns.example:853", fake.build);
    expect(scoped.name).toBe("tls://dns.example:853");
    await scoped.exchange(parsed("a.example.test"), AbortSignal.timeout(1_000));
    await expect(scoped.exchange(parsed("fail.example.test"), AbortSignal.timeout(1_000)))
      .rejects.toThrow(UpstreamError);
    expect(fake.built).toEqual([{ closed: true }, { closed: true }]);
  });

  it("rejects exchanges after close without building", async () => {
    const fake = fakeBuilder();
    const scoped = requestScopedUpstream("x", fake.build);
    await scoped.close();
    const error = await scoped.exchange(parsed("a.example.test"), AbortSignal.timeout(1_000))
      .catch((e) => e);
    expect(error).toBeInstanceOf(UpstreamError);
    expect((error as UpstreamError).kind).toBe("unavailable");
    expect(fake.built).toHaveLength(0);
  });
});
