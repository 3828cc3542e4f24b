import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installed } from "../support/clients.ts";
import { startDohUpstream } from "../support/doh_upstream.ts";
import { startTestBridge, type TestBridge } from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";

type Version = "tls1_2" | "tls1_3";

/**
 * One `openssl s_client` connection: saves its session to `sessOut` (for TLS 1.3 that is the
 * server's NewSessionTicket, which arrives after the handshake: the client waits for it), or
 * offers the session in `sessIn`. Returns "New" or "Reused" as s_client reports it.
 */
async function sClient(
  port: number,
  version: Version,
  session: { sessOut: string } | { sessIn: string },
  alpn: string,
): Promise<string> {
  const child = new Deno.Command("openssl", {
    args: [
      "s_client",
      "-connect",
      `127.0.0.1:${port}`,
      `-${version}`,
      "-servername",
      "localhost",
      "-alpn",
      alpn,
      ...("sessOut" in session ? ["-sess_out", session.sessOut] : ["-sess_in", session.sessIn]),
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "null",
    signal: AbortSignal.timeout(10_000),
  }).spawn();
  const decoder = new TextDecoder();
  let out = "";
  const reading = (async () => {
    for await (const chunk of child.stdout) out += decoder.decode(chunk, { stream: true });
  })();
  const done = () =>
    /^(New|Reused),/m.test(out) &&
    ("sessIn" in session || sessionSaved(session.sessOut));
  for (let i = 0; i < 250 && !done(); i++) await new Promise((r) => setTimeout(r, 20));
  await child.stdin.close(); // EOF: s_client closes the connection and exits
  await child.status;
  await reading;
  const status = /^(New|Reused),/m.exec(out)?.[1];
  if (!status) throw new Error(`s_client printed no session status: ${out.slice(0, 300)}`);
  return status;
}

function sessionSaved(path: string): boolean {
  try {
    return Deno.statSync(path).size > 0;
  } catch {
    return false;
  }
}

/** The handshake counter's value for one face and resumed label (0 when absent). */
function handshakes(bridge: TestBridge, face: string, resumed: string): number {
  const text = bridge.bridge.metrics.registry.render();
  const line = `dotbridge_tls_handshakes_total{face="${face}",resumed="${resumed}"} `;
  const at = text.split("\n").find((l) => l.startsWith(line));
  return at ? Number(at.slice(line.length)) : 0;
}

const hasOpenssl = await installed("openssl", "version");

describe.skipIf(!hasOpenssl)("TLS session resumption, counted by face", () => {
  let upstream: Awaited<ReturnType<typeof startDohUpstream>>;
  let bridge: TestBridge;
  let native: TestBridge;
  let dir: string;
  let caPem: string;

  beforeAll(async () => {
    const pki = await testPki();
    upstream = await startDohUpstream(pki);
    bridge = await startTestBridge(pki, upstream, [
      "--http-listen",
      "127.0.0.1:0",
      "--doq-listen",
      "127.0.0.1:0",
    ]);
    native = await startTestBridge(pki, upstream, ["--dot-server", "native"]);
    dir = await Deno.makeTempDir({ prefix: "dotbridge-resume-" });
    caPem = pki.ca.certPem;
  });

  afterAll(async () => {
    await bridge?.close();
    await native?.close();
    await upstream?.close();
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  const faces = [
    { face: "dot", alpn: "dot", port: () => bridge.port },
    { face: "doh", alpn: "h2", port: () => bridge.bridge.doh!.addr.port },
  ];
  for (const { face, alpn, port } of faces) {
    for (const version of ["tls1_2", "tls1_3"] as const) {
      it(`resumes a ${version} session on the ${face} face and counts it resumed="true"`, async () => {
        const sess = `${dir}/${face}-${version}.pem`;
        const fresh0 = handshakes(bridge, face, "false");
        const resumed0 = handshakes(bridge, face, "true");
        expect(await sClient(port(), version, { sessOut: sess }, alpn)).toBe("New");
        expect(await sClient(port(), version, { sessIn: sess }, alpn)).toBe("Reused");
        expect(handshakes(bridge, face, "false")).toBe(fresh0 + 1);
        expect(handshakes(bridge, face, "true")).toBe(resumed0 + 1);
      });
    }
  }

  // Deno.listenTls resumes (rustls' session cache) but its TlsConn does not say so.
  for (const version of ["tls1_2", "tls1_3"] as const) {
    it(`resumes ${version} on --dot-server native, counted resumed="unknown"`, async () => {
      const sess = `${dir}/native-${version}.pem`;
      const unknown0 = handshakes(native, "dot", "unknown");
      expect(await sClient(native.port, version, { sessOut: sess }, "dot")).toBe("New");
      expect(await sClient(native.port, version, { sessIn: sess }, "dot")).toBe("Reused");
      expect(handshakes(native, "dot", "unknown")).toBe(unknown0 + 2);
      expect(handshakes(native, "dot", "true") + handshakes(native, "dot", "false")).toBe(0);
    });
  }

  // Deno's QuicConn says nothing about resumption either. Deno's QUIC client, on one endpoint,
  // holds the server's ticket after a first connection: its second can start as 0-RTT, which
  // needs one (connectQuic then returns the connection at once instead of a promise).
  it('counts DoQ handshakes resumed="unknown"; a Deno client comes back with a ticket', async () => {
    const port = bridge.bridge.doq!.addr.port;
    const unknown0 = handshakes(bridge, "doq", "unknown");
    const endpoint = new Deno.QuicEndpoint({ hostname: "127.0.0.1", port: 0 });
    try {
      const options = {
        hostname: "127.0.0.1",
        port,
        serverName: "localhost",
        alpnProtocols: ["doq"],
        caCerts: [caPem],
        endpoint,
      };
      const first = await Deno.connectQuic(options);
      await first.handshake;
      await new Promise((r) => setTimeout(r, 200)); // the ticket follows the handshake
      first.close({ closeCode: 0, reason: "" });
      const attempt = Deno.connectQuic({ ...options, zeroRtt: true });
      expect(attempt).not.toBeInstanceOf(Promise);
      const second = await attempt;
      await second.handshake;
      second.close({ closeCode: 0, reason: "" });
      await waitUntil(() => handshakes(bridge, "doq", "unknown") === unknown0 + 2);
    } finally {
      endpoint.close();
    }
  });
});

async function waitUntil(ok: () => boolean, ms = 3_000): Promise<void> {
  for (const end = performance.now() + ms; !ok(); await new Promise((r) => setTimeout(r, 20))) {
    if (performance.now() > end) throw new Error("condition not met in time");
  }
}
