/**
 * The plain DNS listener in process, with raw UDP datagrams and TCP connections: one port for
 * both, what it does with bad input (no answer for less than a header, FORMERR for a bad body;
 * a bad TCP frame closes that connection only), out-of-order pipelining over TCP, the idle
 * timeout, draining on shutdown, and a bind failure named by its key.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/parse.ts";
import { answerOf } from "../../src/dns/answer.ts";
import { listenDns, type UdpEvent } from "../../src/deno/dns_listener.ts";
import type { Processor } from "../../src/resolver/processor.ts";
import { answerFromZone } from "../support/zone.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import {
  aRecords,
  buildQuery,
  ednsOptions,
  frame,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { readFrames, udpExchange } from "../support/plain_client.ts";
import { rejection } from "../support/rejection.ts";
import { octetFor } from "../support/zone.ts";

let pki: TestPki;
let upstream: LocalDohUpstream;

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
});
afterAll(async () => {
  await upstream?.close();
});

async function withBridge(args: string[], body: (b: TestBridge, port: number) => Promise<void>) {
  const b = await startTestBridge(pki, upstream, ["--dns-listen", "127.0.0.1:0", ...args]);
  try {
    await body(b, b.bridge.dns!.addr.port);
  } finally {
    await b.close();
  }
}

describe("the plain DNS listener", () => {
  it("binds UDP and TCP to the same port, port 0 included", async () => {
    await withBridge([], async (b, port) => {
      expect(port).toBeGreaterThan(0);
      expect(b.bridge.dns!.addr.hostname).toBe("127.0.0.1");
      const [udp] = await udpExchange(port, [buildQuery("same-port.example.test", { id: 5 })]);
      expect(idOf(udp)).toBe(5);
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(frame(buildQuery("same-port.example.test", { id: 6 })));
      const [tcp] = await readFrames(conn, 1);
      conn.close();
      expect(idOf(tcp)).toBe(6);
    });
  });

  it("gives no answer to less than a header, FORMERR to a bad body, and goes on answering", async () => {
    await withBridge([], async (_b, port) => {
      const badBody = buildQuery("formerr.example.test", { id: 77 }).slice(0, 20); // cut mid-question
      const answers = await udpExchange(port, [
        new Uint8Array([1, 2, 3]),
        new Uint8Array(0),
        badBody,
        buildQuery("after-junk.example.test", { id: 78 }),
      ]);
      const byId = new Map(answers.map((a) => [idOf(a), a]));
      expect(answers).toHaveLength(2);
      expect(rcodeOf(byId.get(77)!)).toBe(1);
      expect(aRecords(byId.get(78)!)).toEqual([`192.0.2.${octetFor("after-junk.example.test")}`]);
    });
  });

  it("answers pipelined TCP queries out of order, and closes a connection sending a bad frame", async () => {
    await withBridge([], async (_b, port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      await conn.write(frame(
        buildQuery("delay-300.example.test", { id: 1 }),
        buildQuery("quick.example.test", { id: 2 }),
      ));
      const answers = await readFrames(conn, 2);
      expect(answers.map(idOf)).toEqual([2, 1]);
      // A zero-length frame: that connection is closed, nothing else.
      await conn.write(new Uint8Array([0, 0]));
      expect(await readFrames(conn, 1, 2000)).toEqual([]);
      conn.close();
      const [still] = await udpExchange(port, [buildQuery("still.example.test", { id: 3 })]);
      expect(idOf(still)).toBe(3);
    });
  });

  it("closes an idle TCP connection after --idle-timeout, and announces it by keepalive", async () => {
    await withBridge(["--idle-timeout", "300ms"], async (_b, port) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      const keepalive = { code: 11, data: new Uint8Array(0) };
      await conn.write(frame(buildQuery("idle.example.test", { id: 4, options: [keepalive] })));
      const [answer] = await readFrames(conn, 1);
      expect(idOf(answer)).toBe(4);
      const announced = ednsOptions(answer)?.find((o) => o.code === 11);
      expect([...announced!.data]).toEqual([0, 3]); // 300 ms in units of 100 ms (RFC 7828)
      const started = Date.now();
      expect(await readFrames(conn, 1, 3000)).toEqual([]); // closed by the bridge
      expect(Date.now() - started).toBeLessThan(2500);
    });
  });

  it("answers UDP queries already received when it shuts down", async () => {
    const b = await startTestBridge(pki, upstream, ["--dns-listen", "127.0.0.1:0"]);
    const port = b.bridge.dns!.addr.port;
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      await socket.send(buildQuery("delay-400.example.test", { id: 9 }), {
        transport: "udp",
        hostname: "127.0.0.1",
        port,
      });
      await new Promise((r) => setTimeout(r, 100));
      const closing = b.close();
      const [answer] = await socket.receive();
      expect(idOf(answer)).toBe(9);
      expect(aRecords(answer)).toHaveLength(1);
      await closing;
    } finally {
      socket.close();
    }
  });

  it("names --dns-listen when its port is taken", async () => {
    const taken = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const port = (taken.addr as Deno.NetAddr).port;
    try {
      const error = await rejection(
        startTestBridge(pki, upstream, ["--dns-listen", `127.0.0.1:${port}`]),
      );
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toBe(
        `--dns-listen: cannot listen on 127.0.0.1:${port}: address already in use`,
      );
    } finally {
      taken.close();
    }
  });
});

describe("the plain DNS listener's bound on pending UDP queries", () => {
  it("drops datagrams unread past maxUdpInFlight, and takes new ones once answers went out", async () => {
    const waiting: (() => void)[] = [];
    // A processor whose answers wait for the test (an upstream that is slow for everyone).
    const process: Processor = (wire) =>
      new Promise((resolve) => waiting.push(() => resolve(answerOf(answerFromZone(wire)))));
    const events: UdpEvent[] = [];
    const dns = await listenDns({
      hostname: "127.0.0.1",
      port: 0,
      processUdp: process,
      processTcp: process,
      maxUdpInFlight: 3,
      onUdpEvent: (e) => events.push(e),
    });
    try {
      const queries = Array.from(
        { length: 8 },
        (_, i) => buildQuery(`p${i}.example.test`, { id: i }),
      );
      const pending = udpExchange(dns.addr.port, queries, 300);
      await new Promise((r) => setTimeout(r, 150));
      expect(waiting).toHaveLength(3);
      waiting.splice(0).forEach((release) => release());
      const answers = await pending;
      expect(answers.map(idOf).sort()).toEqual([0, 1, 2]);
      expect(events.filter((e) => e === "busy-dropped")).toHaveLength(5);
      // Room again: the next query is taken.
      const next = udpExchange(dns.addr.port, [buildQuery("later.example.test", { id: 42 })], 300);
      await new Promise((r) => setTimeout(r, 100));
      waiting.splice(0).forEach((release) => release());
      expect((await next).map(idOf)).toEqual([42]);
    } finally {
      waiting.splice(0).forEach((release) => release());
      await dns.shutdown(100);
    }
  });
});
