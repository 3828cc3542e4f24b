/**
 * DDR end to end: the running bridge, asked by BIND's `dig` (9.18 prints SVCB parameters) over
 * DoT and over DoH, advertises the faces that are on and nothing for those that are off.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installed, runClient } from "../support/clients.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { type TestPki, testPki } from "../support/pki.ts";

const CI = Deno.env.get("CI") === "true";

const HAVE_DIG = await installed("dig", "-v");

/** In CI a missing dig fails the test; elsewhere the test is skipped. */
function requireDig(): void {
  if (!HAVE_DIG) {
    throw new Error("dig is not installed (package bind9-dnsutils); CI=true requires it");
  }
}

interface SvcbLine {
  owner: string;
  ttl: number;
  priority: number;
  target: string;
  params: string;
}

/**
 * The SVCB records of dig's answer section. BIND 9.18 prints dohpath (key 7, RFC 9461) by its
 * number, `key7="..."`; later versions by name: both are read as `dohpath=`.
 */
function svcbLines(output: string): SvcbLine[] {
  const re = /^(\S+)\s+(\d+)\s+IN\s+SVCB\s+(\d+)\s+(\S+)\s*(.*)$/gm;
  return [...output.matchAll(re)].map((m) => ({
    owner: m[1],
    ttl: Number(m[2]),
    priority: Number(m[3]),
    target: m[4],
    params: m[5].trim().replace(/\bkey7=/, "dohpath="),
  }));
}

describe.skipIf(!HAVE_DIG && !CI)("DDR through the running bridge, asked with dig", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let tmp: string;
  let caFile: string;

  beforeAll(async () => {
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    tmp = await Deno.makeTempDir({ prefix: "dotbridge-ddr-" });
    caFile = `${tmp}/ca.pem`;
    await Deno.writeTextFile(caFile, pki.ca.certPem);
  });

  afterAll(async () => {
    await upstream?.close();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  async function dig(transport: "+tls" | "+https", port: number, name: string, type = "SVCB") {
    requireDig();
    const out = await runClient("dig", [
      transport,
      `+tls-ca=${caFile}`,
      "+tls-hostname=localhost",
      "+timeout=3",
      "+tries=1",
      "@127.0.0.1",
      "-p",
      String(port),
      name,
      type,
    ]);
    expect(out.code, `${out.stdout}\n${out.stderr}`).toBe(0);
    return out.stdout;
  }

  async function withBridge(args: string[], body: (b: TestBridge) => Promise<void>) {
    const b = await startTestBridge(pki, upstream, args);
    try {
      await body(b);
    } finally {
      await b.close();
    }
  }

  it("advertises DoT and DoH with their bound ports and dohpath, and no DoQ while it is off", async () => {
    await withBridge(
      ["--ddr-name", "localhost", "--http-listen", "127.0.0.1:0", "--ddr-ipv4-hint", "127.0.0.1"],
      async (b) => {
        const dohPort = b.bridge.doh!.addr.port;
        const before = upstream.requests.length;
        const out = await dig("+tls", b.port, "_dns.resolver.arpa");
        expect(out).toContain("status: NOERROR");
        expect(out).toMatch(/flags: qr aa rd ra/);
        const lines = svcbLines(out);
        expect(lines).toEqual([
          {
            owner: "_dns.resolver.arpa.",
            ttl: 300,
            priority: 1,
            target: "localhost.",
            params: `alpn="dot" port=${b.port} ipv4hint=127.0.0.1`,
          },
          {
            owner: "_dns.resolver.arpa.",
            ttl: 300,
            priority: 2,
            target: "localhost.",
            params: `alpn="h2" port=${dohPort} ipv4hint=127.0.0.1 dohpath="/dns-query{?dns}"`,
          },
        ]);
        expect(out).not.toContain('alpn="doq"');

        // The same over the DoH face, and `_dns.localhost` too.
        const viaDoh = await dig("+https", dohPort, "_dns.resolver.arpa");
        expect(svcbLines(viaDoh).map((l) => l.params)).toEqual(lines.map((l) => l.params));
        const named = svcbLines(await dig("+tls", b.port, "_dns.localhost"));
        expect(named.map((l) => [l.owner, l.params])).toEqual(
          lines.map((l) => ["_dns.localhost.", l.params]),
        );

        // Another type there is NODATA; nothing under resolver.arpa reached the upstream.
        const a = await dig("+tls", b.port, "_dns.resolver.arpa", "A");
        expect(a).toContain("status: NOERROR");
        expect(a).toContain("ANSWER: 0");
        expect(upstream.requests.length).toBe(before);
      },
    );
  });

  it("advertises nothing for DoH when the face is off, and DoQ once --doq-listen is set", async () => {
    // A UDP port free a moment ago: the advertised one must be the configured one.
    const probe = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    const doqPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    await withBridge(
      ["--ddr-name", "localhost", "--doq-listen", `127.0.0.1:${doqPort}`],
      async (b) => {
        const lines = svcbLines(await dig("+tls", b.port, "_dns.resolver.arpa"));
        expect(lines.map((l) => [l.priority, l.params])).toEqual([
          [1, `alpn="dot" port=${b.port}`],
          [2, `alpn="doq" port=${doqPort}`],
        ]);
      },
    );
  });

  it("is off without --ddr-name: the query goes to the upstream", async () => {
    await withBridge([], async (b) => {
      const before = upstream.requests.length;
      await dig("+tls", b.port, "_dns.resolver.arpa");
      expect(upstream.requests.slice(before).some((r) => r.name === "_dns.resolver.arpa"))
        .toBe(true);
    });
  });
});
