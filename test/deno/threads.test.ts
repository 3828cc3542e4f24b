import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { aRecords, buildQuery, connectDot, frame, idOf } from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";

const MAIN = new URL("../../src/deno/main.ts", import.meta.url).pathname;

/** `deno task serve --threads 2` as a real process: several threads behind one port. */
describe("--threads 2", () => {
  let upstream: LocalDohUpstream;
  let dir: string;
  let child: Deno.ChildProcess;
  let out = "";
  let dotPort = 0;
  let metricsPort = 0;
  let dnsPort = 0;
  let caPem = "";

  beforeAll(async () => {
    const pki = await testPki();
    caPem = pki.ca.certPem;
    upstream = await startDohUpstream(pki);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-threads-" });
    await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
    await Deno.writeTextFile(`${dir}/ca.pem`, caPem);
    child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        MAIN,
        "--threads=2",
        "--listen=127.0.0.1:0",
        "--http-listen=off",
        "--metrics-listen=127.0.0.1:0",
        "--dns-listen=127.0.0.1:0",
        `--cert=${dir}/cert.pem`,
        `--key=${dir}/key.pem`,
        `--upstream-ca=${dir}/ca.pem`,
        `--upstream=${upstream.url}`,
        "--no-cache",
      ],
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    const deadline = Date.now() + 20_000;
    while (!/metrics on http:\/\/127\.0\.0\.1:(\d+)/.test(out) && Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      out += value;
    }
    reader.releaseLock();
    child.stdout.cancel().catch(() => {});
    dotPort = Number(/DNS-over-TLS on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    metricsPort = Number(/metrics on http:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    dnsPort = Number(/plain DNS on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  });

  afterAll(async () => {
    try {
      child?.kill("SIGKILL");
    } catch { /* exited */ }
    await child?.status;
    await upstream?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  it("says so in the banner", () => {
    expect(out).toContain("2 threads");
    expect(dotPort).toBeGreaterThan(0);
  });

  it("answers on every connection, whichever thread takes it, and merges the metrics", async () => {
    const clients = await Promise.all(
      Array.from({ length: 8 }, () => connectDot({ port: dotPort, caCerts: [caPem] })),
    );
    try {
      await Promise.all(clients.map(async (client, c) => {
        const queries = Array.from(
          { length: 5 },
          (_, i) => buildQuery(`t${c}-${i}.example.test`, { id: c * 10 + i }),
        );
        await client.send(...queries);
        for (const [i, q] of queries.entries()) {
          const answer = await client.waitFor(idOf(q));
          expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(`t${c}-${i}.example.test`)}`]);
        }
      }));
    } finally {
      clients.forEach((c) => c.close());
    }
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('dotbridge_queries_total{face="dot",tenant="",rcode="NOERROR"} 40');
    expect(text.match(/^# TYPE dotbridge_queries_total counter$/gm)).toHaveLength(1);
  });

  it("is ready on /ready while a thread has a usable upstream", async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPort}/ready`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe("ready\n");
  });

  /** Sockets bound to `port` on 127.0.0.1 in /proc/net/{tcp,udp}: TCP listeners, UDP sockets. */
  function boundSockets(proto: "tcp" | "udp", port: number): number {
    const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
    return Deno.readTextFileSync(`/proc/net/${proto}`).split("\n").slice(1).filter((line) => {
      const f = line.trim().split(/\s+/);
      return f[1] === want && (proto === "udp" || f[3] === "0A");
    }).length;
  }

  it("serves plain DNS's TCP on every thread (SO_REUSEPORT) and its UDP on the first only", async () => {
    expect(dnsPort).toBeGreaterThan(0);
    expect(boundSockets("tcp", dnsPort)).toBe(2);
    expect(boundSockets("udp", dnsPort)).toBe(1);
    // UDP
    const socket = Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
    try {
      await socket.send(buildQuery("plain-udp.example.test", { id: 321 }), {
        transport: "udp",
        hostname: "127.0.0.1",
        port: dnsPort,
      });
      const [answer] = await socket.receive();
      expect(idOf(answer)).toBe(321);
      expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("plain-udp.example.test")}`]);
    } finally {
      socket.close();
    }
    // TCP, from several connections (the kernel spreads them over the threads)
    for (let c = 0; c < 6; c++) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: dnsPort });
      try {
        await conn.write(frame(buildQuery(`plain-tcp${c}.example.test`, { id: c })));
        const buf = new Uint8Array(1024);
        let got = 0;
        while (got < 2 || got < 2 + ((buf[0] << 8) | buf[1])) {
          const n = await conn.read(buf.subarray(got));
          if (n === null) throw new Error("closed");
          got += n;
        }
        const answer = buf.slice(2, got);
        expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(`plain-tcp${c}.example.test`)}`]);
      } finally {
        conn.close();
      }
    }
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    expect(text).toContain('dotbridge_queries_total{face="dns",tenant="",rcode="NOERROR"} 7');
  });

  it("drains in-flight queries on SIGTERM and exits 0", async () => {
    const client = await connectDot({ port: dotPort, caCerts: [caPem] });
    const q = buildQuery("delay-600.example.test", { id: 4242 });
    await client.send(q);
    await new Promise((r) => setTimeout(r, 100));
    child.kill("SIGTERM");
    const answer = await client.waitFor(4242);
    expect(aRecords(answer)).toHaveLength(1);
    client.close();
    const status = await child.status;
    expect(status.code).toBe(0);
  });
});
