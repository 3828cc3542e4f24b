/**
 * The plain DNS face end to end, driven by real clients: `dig` over UDP and TCP, a truncated
 * answer and dig's retry over TCP, `+bufsize`, `kdig`; response rate limiting against a flood
 * from one source; refusal of a client outside the allowed ranges (dig bound to 127.0.0.2 with
 * `--dns-default-allow 127.0.0.1/32`); ANY; DDR over plain DNS, then a DoT query to the port it
 * names; the metrics with `face="dns"`.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installed, runClient } from "../support/clients.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { buildQuery, decode, startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const CI = Deno.env.get("CI") === "true";
const HAVE_DIG = await installed("dig", "-v");
const HAVE_KDIG = await installed("kdig", "--version");

function requireTools(): void {
  if (!HAVE_DIG || !HAVE_KDIG) {
    throw new Error(
      "dig and kdig are needed (bind9-dnsutils, knot-dnsutils); CI=true requires them",
    );
  }
}

describe.skipIf((!HAVE_DIG || !HAVE_KDIG) && !CI)("the plain DNS face, with dig and kdig", () => {
  let pki: TestPki;
  let upstream: LocalDohUpstream;
  let tmp: string;
  let caFile: string;

  beforeAll(async () => {
    pki = await testPki();
    upstream = await startDohUpstream(pki);
    tmp = await Deno.makeTempDir({ prefix: "dotbridge-dns-" });
    caFile = `${tmp}/ca.pem`;
    await Deno.writeTextFile(caFile, pki.ca.certPem);
  });

  afterAll(async () => {
    await upstream?.close();
    if (tmp) await Deno.remove(tmp, { recursive: true });
  });

  async function withBridge(args: string[], body: (b: TestBridge, port: number) => Promise<void>) {
    const b = await startTestBridge(pki, upstream, ["--dns-listen", "127.0.0.1:0", ...args]);
    try {
      await body(b, b.bridge.dns!.addr.port);
    } finally {
      await b.close();
    }
  }

  async function dig(port: number, ...args: string[]) {
    requireTools();
    const out = await runClient("dig", [
      "@127.0.0.1",
      "-p",
      String(port),
      "+time=3",
      "+tries=1",
      ...args,
    ]);
    return { ...out, all: `${out.stdout}\n${out.stderr}` };
  }

  async function kdig(port: number, ...args: string[]) {
    requireTools();
    const out = await runClient("kdig", [
      "@127.0.0.1",
      "-p",
      String(port),
      "+time=3",
      "+retry=0",
      ...args,
    ]);
    return { ...out, all: `${out.stdout}\n${out.stderr}` };
  }

  it("answers dig over UDP and over TCP, on one port", async () => {
    await withBridge([], async (b, port) => {
      expect(b.bridge.dns!.udp).toBe(true);
      const name = "plain-udp.example.test";
      const udp = await dig(port, name, "A");
      expect(udp.code, udp.all).toBe(0);
      expect(udp.stdout).toContain("status: NOERROR");
      expect(udp.stdout).toMatch(
        new RegExp(`${name}\\.\\s+\\d+\\s+IN\\s+A\\s+192\\.0\\.2\\.${octetFor(name)}`),
      );
      expect(udp.stdout).toMatch(/SERVER: 127\.0\.0\.1#\d+\(127\.0\.0\.1\) \(UDP\)/);
      const tcp = await dig(port, "+tcp", "plain-tcp.example.test", "AAAA");
      expect(tcp.code, tcp.all).toBe(0);
      expect(tcp.stdout).toContain("status: NOERROR");
      expect(tcp.stdout).toMatch(/IN\s+AAAA\s+2001:db8::/);
      expect(tcp.stdout).toMatch(/\(TCP\)/);
    });
  });

  it("answers kdig over UDP and TCP (several queries on one TCP connection)", async () => {
    await withBridge([], async (_b, port) => {
      const udp = await kdig(port, "kdig-udp.example.test");
      expect(udp.code, udp.all).toBe(0);
      expect(udp.stdout).toContain("status: NOERROR");
      expect(udp.stdout).toMatch(/\(UDP\)/);
      const tcp = await kdig(port, "+tcp", "+keepopen", "k1.example.test", "k2.example.test");
      expect(tcp.code, tcp.all).toBe(0);
      expect(tcp.stdout.match(/status: NOERROR/g)).toHaveLength(2);
      expect(tcp.stdout).toMatch(
        new RegExp(
          `k2\\.example\\.test\\.\\s+\\d+\\s+IN\\s+A\\s+192\\.0\\.2\\.${
            octetFor("k2.example.test")
          }`,
        ),
      );
      expect(tcp.stdout).toMatch(/\(TCP\)/);
    });
  });

  it("truncates an answer too large for UDP, and dig gets it whole over TCP", async () => {
    await withBridge([], async (b, port) => {
      const name = "big-3000-tc.example.test";
      // What the UDP answer itself is: TC, no records.
      const cut = await dig(port, "+ignore", name, "TXT");
      expect(cut.code, cut.all).toBe(0);
      expect(cut.stdout).toMatch(/flags: qr tc rd ra;/);
      expect(cut.stdout).toContain("ANSWER: 0");
      // dig's default: retry over TCP.
      const whole = await dig(port, name, "TXT");
      expect(whole.code, whole.all).toBe(0);
      expect(whole.stdout).toContain("Truncated, retrying in TCP mode.");
      expect(whole.stdout).toContain("ANSWER: 1");
      expect(whole.stdout).toMatch(/\(TCP\)/);
      expect(whole.stdout).toMatch(/MSG SIZE\s+rcvd: 3\d\d\d/);
      const metrics = b.bridge.metrics.registry.render();
      expect(metrics).toMatch(/dotbridge_dns_udp_answers_total\{event="truncated"\} [1-9]/);
    });
  });

  it("sizes UDP answers by +bufsize: 512 without EDNS, the client's size up to the maximum", async () => {
    // A ~900-byte answer.
    const name = "big-850-size.example.test";
    await withBridge([], async (_b, port) => {
      const sizes: [string[], boolean][] = [
        [["+noedns"], true], // 512
        [["+bufsize=512"], true],
        [["+bufsize=1232"], false],
        [["+bufsize=4096"], false], // clamped to 1232, still fits
      ];
      for (const [flags, truncated] of sizes) {
        const out = await dig(port, "+ignore", ...flags, name, "TXT");
        expect(out.code, out.all).toBe(0);
        expect(/flags: qr tc/.test(out.stdout), `${flags}: ${out.stdout}`).toBe(truncated);
      }
      // Larger than the maximum (1232): truncated whatever the client says.
      const large = await dig(
        port,
        "+ignore",
        "+bufsize=4096",
        "big-1400-size.example.test",
        "TXT",
      );
      expect(large.stdout).toMatch(/flags: qr tc/);
    });
    // With --dns-max-udp-size 4096 the client's 4096 holds.
    await withBridge(["--dns-max-udp-size", "4096"], async (_b, port) => {
      const out = await dig(port, "+ignore", "+bufsize=4096", "big-1400-size.example.test", "TXT");
      expect(out.stdout).not.toMatch(/flags: qr tc/);
      expect(out.stdout).toContain("ANSWER: 1");
    });
  });

  it("answers ANY with HINFO RFC8482 (RFC 8482), over UDP and TCP", async () => {
    await withBridge([], async (_b, port) => {
      for (const transport of ["+notcp", "+tcp"]) {
        const out = await dig(port, transport, "example.test", "ANY");
        expect(out.stdout).toContain("status: NOERROR");
        expect(out.stdout).toMatch(/example\.test\.\s+3600\s+IN\s+HINFO\s+"RFC8482" ""/);
        expect(out.stdout).toContain("ANSWER: 1");
      }
      expect(upstream.requests.some((r) => r.name === "example.test")).toBe(false);
    });
  });

  it("refuses a client outside --dns-default-allow: REFUSED over UDP, closed over TCP", async () => {
    await withBridge(["--dns-default-allow", "127.0.0.1/32"], async (_b, port) => {
      const inside = await dig(port, "-b", "127.0.0.1", "inside.example.test");
      expect(inside.stdout).toContain("status: NOERROR");
      const outside = await dig(port, "-b", "127.0.0.2", "outside.example.test");
      expect(outside.code, outside.all).toBe(0);
      expect(outside.stdout).toContain("status: REFUSED");
      expect(outside.stdout).toMatch(/EDE: 18 \(Prohibited\): \(not an open resolver\)/);
      const tcp = await dig(port, "+tcp", "-b", "127.0.0.2", "outside-tcp.example.test");
      expect(tcp.stdout).not.toContain("status: NOERROR");
      expect(tcp.all).toMatch(
        /communications error|end of file|connection reset|timed out|no servers/i,
      );
      const names = upstream.requests.map((r) => r.name);
      expect(names).toContain("inside.example.test");
      expect(names).not.toContain("outside.example.test");
      expect(names).not.toContain("outside-tcp.example.test");
    });
  });

  it("answers a client outside the local ranges when --allow lets it in", async () => {
    await withBridge(
      ["--dns-default-allow", "127.0.0.1/32", "--allow", "127.0.0.2"],
      async (_b, port) => {
        const out = await dig(port, "-b", "127.0.0.2", "allowed.example.test");
        expect(out.stdout).toContain("status: NOERROR");
        const other = await dig(port, "-b", "127.0.0.1", "not-allowed.example.test");
        expect(other.stdout).toContain("status: REFUSED"); // --allow is the list now
      },
    );
  });

  it("rate limits UDP answers to one source: past the limit they slip as empty TC answers or are dropped", async () => {
    await withBridge(["--dns-rrl", "20", "--dns-rrl-slip", "2"], async (b, port) => {
      const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
      const to = { transport: "udp" as const, hostname: "127.0.0.1", port };
      const sent = 200;
      // Queries asking for large answers with a large EDNS size: what a reflection attack sends.
      for (let i = 0; i < sent; i++) {
        const q = buildQuery(`big-1000-r${i % 10}.example.test`, {
          id: i + 1,
          type: "TXT",
          edns: true,
        });
        await socket.send(q, to);
      }
      const answers: Uint8Array[] = [];
      const reading = (async () => {
        for (;;) answers.push((await socket.receive())[0]);
      })().catch(() => {});
      await new Promise((r) => setTimeout(r, 1500));
      socket.close();
      await reading;
      const full = answers.filter((a) => (a[2] & 0x02) === 0);
      const slipped = answers.filter((a) => (a[2] & 0x02) !== 0);
      // The burst (20) and what refilled meanwhile (20/s), no more.
      expect(full.length).toBeGreaterThanOrEqual(15);
      expect(full.length).toBeLessThanOrEqual(20 + 40);
      expect(slipped.length).toBeGreaterThan(10);
      expect(answers.length).toBeLessThan(sent);
      for (const a of slipped) {
        const p = decode(a);
        expect(p.answers).toEqual([]);
        expect(a.length).toBeLessThan(100); // no larger than the query: nothing to amplify
      }
      const metrics = b.bridge.metrics.registry.render();
      expect(metrics).toMatch(/dotbridge_dns_udp_answers_total\{event="rrl-slipped"\} [1-9]/);
      expect(metrics).toMatch(/dotbridge_dns_udp_answers_total\{event="rrl-dropped"\} [1-9]/);
      // A real client behind that address still gets through over TCP.
      const tcp = await dig(port, "+tcp", "after-flood.example.test");
      expect(tcp.stdout).toContain("status: NOERROR");
    });
  });

  it("advertises the encrypted faces by DDR over plain DNS, and the DoT port it names answers", async () => {
    await withBridge(["--ddr-name", "localhost"], async (b, port) => {
      const ddr = await dig(port, "_dns.resolver.arpa", "SVCB");
      expect(ddr.stdout).toContain("status: NOERROR");
      const m = /IN\s+SVCB\s+1\s+localhost\.\s+alpn="dot"\s+port=(\d+)/.exec(ddr.stdout);
      expect(m, ddr.stdout).not.toBeNull();
      const dotPort = Number(m![1]);
      expect(dotPort).toBe(b.port);
      const dot = await runClient("kdig", [
        "@127.0.0.1",
        "-p",
        String(dotPort),
        "+tls-ca=" + caFile,
        "+tls-hostname=localhost",
        "+time=3",
        "+retry=0",
        "after-ddr.example.test",
      ]);
      expect(dot.code, dot.stderr).toBe(0);
      expect(dot.stdout).toContain("status: NOERROR");
      expect(dot.stdout).toMatch(/\(TCP\)/);
      expect(dot.stdout).toMatch(new RegExp(`192\\.0\\.2\\.${octetFor("after-ddr.example.test")}`));
    });
  });

  it('counts its queries under face="dns" and its TCP connections', async () => {
    await withBridge([], async (b, port) => {
      await dig(port, "m1.example.test");
      await dig(port, "+tcp", "m2.example.test");
      const metrics = b.bridge.metrics.registry.render();
      expect(metrics).toMatch(/dotbridge_queries_total\{face="dns",tenant="",rcode="NOERROR"\} 2/);
      expect(metrics).toMatch(/dotbridge_connections\{face="dns"\} \d/);
    });
  });
});
