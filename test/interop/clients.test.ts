import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addressesIn, installed, runClient } from "../support/clients.ts";
import { startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const CI = Deno.env.get("CI") === "true";

const HAVE_KDIG = await installed("kdig", "-V");
const HAVE_DIG = await installed("dig", "-v");

/** In CI a missing client fails the test; elsewhere the test is skipped. */
function requireClient(bin: string, package_: string, present: boolean): void {
  if (!present) {
    throw new Error(`${bin} is not installed (package ${package_}); CI=true requires it`);
  }
}

const expectedA = (name: string) => `192.0.2.${octetFor(name)}`;

/**
 * A plain TCP relay in front of the bridge that counts the connections clients open, so a test
 * can see how many a client used. It relays bytes untouched (TLS runs end to end through it).
 */
function startCountingRelay(targetPort: number) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const open = new Set<Deno.Conn>();
  let accepted = 0;
  const pipe = async (from: Deno.Conn, to: Deno.Conn) => {
    try {
      await from.readable.pipeTo(to.writable, { preventClose: false });
    } catch { /* either side went away */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* already closed */ }
      open.delete(c);
    }
  };
  const loop = (async () => {
    for await (const client of listener) {
      accepted++;
      open.add(client);
      try {
        const server = await Deno.connect({ hostname: "127.0.0.1", port: targetPort });
        open.add(server);
        pipe(client, server);
        pipe(server, client);
      } catch {
        client.close();
      }
    }
  })().catch(() => {});
  return {
    port: listener.addr.port,
    get accepted() {
      return accepted;
    },
    async close() {
      listener.close();
      for (const c of open) {
        try {
          c.close();
        } catch { /* already closed */ }
      }
      await loop;
    },
  };
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let dot: TestBridge;
let tmp: string;
let caFile: string;

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dot = await startTestBridge(pki, upstream);
  tmp = await Deno.makeTempDir({ prefix: "dotbridge-interop-" });
  caFile = `${tmp}/ca.pem`;
  await Deno.writeTextFile(caFile, pki.ca.certPem);
});

afterAll(async () => {
  await dot?.close();
  await upstream?.close();
  if (tmp) await Deno.remove(tmp, { recursive: true });
});

describe("real DoT clients against the bridge", () => {
  it.skipIf(!HAVE_KDIG && !CI)(
    "kdig +keepopen sends several queries over one verified TLS connection",
    async () => {
      requireClient("kdig", "knot-dnsutils", HAVE_KDIG);
      const relay = startCountingRelay(dot.port);
      try {
        const names = ["kdig-one.example.test", "kdig-two.example.test", "kdig-three.example.test"];
        const r = await runClient("kdig", [
          "@127.0.0.1",
          "-p",
          String(relay.port),
          `+tls-ca=${caFile}`,
          "+tls-hostname=localhost",
          "+keepopen",
          "+timeout=3",
          "+retry=0",
          ...names,
        ]);
        expect(r.stderr).toBe("");
        expect(r.code).toBe(0);
        for (const name of names) expect(addressesIn(r.stdout, name)).toEqual([expectedA(name)]);
        expect(r.stdout.match(/status: NOERROR/g)).toHaveLength(3);
        // kdig pads over TLS by default, so every answer comes back padded to 468 bytes.
        expect(r.stdout.match(/;; Received 468 B/g)).toHaveLength(3);
        expect(relay.accepted).toBe(1);
      } finally {
        await relay.close();
      }
    },
  );

  it.skipIf(!HAVE_KDIG && !CI)(
    "kdig +tls-pin with the leaf's SPKI pin gets an answer",
    async () => {
      requireClient("kdig", "knot-dnsutils", HAVE_KDIG);
      const name = "kdig-pin.example.test";
      const r = await runClient("kdig", [
        "@127.0.0.1",
        "-p",
        String(dot.port),
        `+tls-pin=${pki.server.spkiPin}`,
        "+timeout=3",
        "+retry=0",
        name,
      ]);
      expect(r.code).toBe(0);
      expect(addressesIn(r.stdout, name)).toEqual([expectedA(name)]);
    },
  );

  it.skipIf(!HAVE_KDIG && !CI)("kdig +tls-pin with a wrong pin refuses the server", async () => {
    requireClient("kdig", "knot-dnsutils", HAVE_KDIG);
    const name = "kdig-wrong-pin.example.test";
    const wrongPin = new Uint8Array(32).fill(7).toBase64();
    expect(wrongPin).not.toBe(pki.server.spkiPin);
    const before = upstream.requests.length;
    const r = await runClient("kdig", [
      "@127.0.0.1",
      "-p",
      String(dot.port),
      `+tls-pin=${wrongPin}`,
      "+timeout=3",
      "+retry=0",
      name,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/handshake failed|certificate/i);
    expect(addressesIn(r.stdout, name)).toEqual([]);
    expect(upstream.requests.slice(before).some((q) => q.name === name)).toBe(false);
  });

  it.skipIf(!HAVE_DIG && !CI)("dig +tls with the CA and hostname gets an answer", async () => {
    requireClient("dig", "bind9-dnsutils", HAVE_DIG);
    const name = "dig-tls.example.test";
    const r = await runClient("dig", [
      "+tls",
      `+tls-ca=${caFile}`,
      "+tls-hostname=localhost",
      "@127.0.0.1",
      "-p",
      String(dot.port),
      "+time=3",
      "+tries=1",
      name,
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("status: NOERROR");
    expect(r.stdout).toMatch(/\(TLS\)/);
    expect(addressesIn(r.stdout, name)).toEqual([expectedA(name)]);
  });
});
