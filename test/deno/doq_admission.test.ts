/**
 * Who the DoQ face lets in, and how early it says no, over real QUIC against a running bridge.
 *
 * Deno 2.9.6's `QuicIncoming` gives no address without consuming the incoming connection, so
 * the address rules (ACL, per-address cap, new-connection and handshake rate limits) run on the
 * 0.5-RTT connection and close it in the same turn: the client's handshake must never complete
 * (`Deno.connectQuic` rejects with an application close "during the handshake"). The rules that
 * need no address (`--max-connections`, shutdown) refuse the incoming connection outright
 * (CONNECTION_REFUSED).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { aRecords, buildQuery, startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { connectDoq, type DoqClient } from "../support/doq_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { rawQuicConnect } from "../support/quic_raw_client.ts";
import { octetFor } from "../support/zone.ts";

let pki: TestPki;
let upstream: LocalDohUpstream;
let cleanups: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
});

afterEach(async () => {
  for (const f of cleanups.reverse()) await f();
  cleanups = [];
});

afterAll(async () => {
  await upstream?.close();
});

async function bridgeWith(args: string[]): Promise<{ bridge: TestBridge; port: number }> {
  const bridge = await startTestBridge(pki, upstream, ["--doq-listen", "127.0.0.1:0", ...args]);
  cleanups.push(() => bridge.close());
  return { bridge, port: bridge.bridge.doq!.addr.port };
}

/** Connects, and says how the handshake ended: the client, or the error it failed with. */
async function attempt(port: number): Promise<DoqClient | Error> {
  try {
    const c = await connectDoq({ port, caCerts: [pki.ca.certPem] });
    cleanups.push(() => c.close());
    return c;
  } catch (error) {
    return error as Error;
  }
}

/** The outcome of a client whose handshake the server cut short (an address rule). */
function expectCutDuringHandshake(outcome: DoqClient | Error): void {
  expect(outcome).toBeInstanceOf(Error);
  expect((outcome as Error).message).toMatch(/closed during the handshake/);
}

async function expectAnswered(c: DoqClient | Error, name: string): Promise<void> {
  expect(c).not.toBeInstanceOf(Error);
  const answer = await (c as DoqClient).query(buildQuery(name));
  expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(name)}`]);
}

function metrics(b: TestBridge): string {
  return b.bridge.metrics.registry.render();
}

describe("DoQ admission: refused before the handshake completes", () => {
  it("a client the ACL denies never completes its handshake, and nothing is asked upstream", async () => {
    const { bridge, port } = await bridgeWith(["--deny", "127.0.0.1"]);
    const before = upstream.requests.length;
    expectCutDuringHandshake(await attempt(port));
    expect(upstream.requests.length).toBe(before);
    expect(metrics(bridge)).toMatch(/face="doq",event="refused-acl"\} 1/);
    expect(bridge.bridge.doq!.connections).toBe(0);
  });

  it("how early: a denied client is sent no ServerHello nor certificate, only a close", async () => {
    const { port } = await bridgeWith(["--deny", "127.0.0.1"]);
    const raw = await rawQuicConnect({ port });
    cleanups.push(() => raw.close());
    // RFC 9000 §10.2.3: an application close before the handshake completes goes out as a
    // transport CONNECTION_CLOSE with APPLICATION_ERROR (0x0c), in the Initial space.
    expect(await raw.closed).toMatchObject({ application: false, code: 0x0c, space: "initial" });
    expect(raw.frames).toEqual(["initial:CONNECTION_CLOSE"]);
  });

  it("the 3rd connection from one address at --max-connections-per-ip 2", async () => {
    const { bridge, port } = await bridgeWith(["--max-connections-per-ip", "2"]);
    const a = await attempt(port);
    const b = await attempt(port);
    expectCutDuringHandshake(await attempt(port));
    expect(metrics(bridge)).toMatch(/face="doq",event="refused-max-connections-per-ip"\} 1/);
    await expectAnswered(a, "cap-a.example.test");
    await expectAnswered(b, "cap-b.example.test");
    // A slot freed is a slot to be had again.
    (a as DoqClient).close();
    await waitFor(() => bridge.bridge.doq!.connections === 1);
    await expectAnswered(await attempt(port), "cap-c.example.test");
  });

  it("a client past --connection-rate-limit (burst 2)", async () => {
    const { bridge, port } = await bridgeWith([
      "--connection-rate-limit",
      "1",
      "--connection-rate-burst",
      "2",
    ]);
    const a = await attempt(port);
    const b = await attempt(port);
    expectCutDuringHandshake(await attempt(port));
    expect(metrics(bridge)).toMatch(/face="doq",event="refused-connection-rate"\} 1/);
    await expectAnswered(a, "rate-a.example.test");
    await expectAnswered(b, "rate-b.example.test");
  });

  it("a client past --handshake-rate-limit (burst 2)", async () => {
    const { bridge, port } = await bridgeWith([
      "--handshake-rate-limit",
      "1",
      "--handshake-rate-burst",
      "2",
    ]);
    await expectAnswered(await attempt(port), "hs-a.example.test");
    await expectAnswered(await attempt(port), "hs-b.example.test");
    expectCutDuringHandshake(await attempt(port));
    expect(metrics(bridge)).toMatch(/face="doq",event="refused-handshake-rate"\} 1/);
  });

  it("past --max-connections, the incoming connection is refused before any cryptography", async () => {
    const { bridge, port } = await bridgeWith(["--max-connections", "1"]);
    const a = await attempt(port);
    const refused = await attempt(port);
    expect(refused).toBeInstanceOf(Error);
    expect((refused as Error).message).toMatch(/refused to accept a new connection/);
    expect(metrics(bridge)).toMatch(/face="doq",event="refused-max-connections"\} 1/);
    await expectAnswered(a, "max-a.example.test");
    // CONNECTION_REFUSED (0x02), before any cryptography.
    const raw = await rawQuicConnect({ port });
    cleanups.push(() => raw.close());
    expect(await raw.closed).toMatchObject({ application: false, code: 0x02, space: "initial" });
    expect(raw.frames).toEqual(["initial:CONNECTION_CLOSE"]);
  });
});

async function waitFor(cond: () => boolean, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
