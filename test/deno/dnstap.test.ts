/**
 * dnstap end to end: the bridge streams to the real `dnstap` tool (Debian's
 * golang-github-dnstap-golang-dnstap-cli, listening on a unix socket as the Frame Streams
 * receiver), which reads and prints every message: CLIENT_QUERY and CLIENT_RESPONSE for the DoT,
 * DoH and DoQ faces with their socket protocol, FORWARDER_QUERY and FORWARDER_RESPONSE for the
 * upstream exchange. Then the collector goes away and comes back: answers never wait, and the
 * stream resumes.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { connectDoq } from "../support/doq_client.ts";
import {
  buildQuery,
  frame,
  idOf,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";
import { readFrames, udpExchange } from "../support/plain_client.ts";
import { freePort } from "../support/ports.ts";

const decoder = new TextDecoder();

/**
 * The dnstap tool, listening on the unix socket `path` (or with `args` as given) and printing
 * YAML; `stop` ends it and returns its text.
 */
function startCollector(path: string, args = ["-u", path, "-y"]) {
  const child = new Deno.Command("dnstap", {
    args,
    stdout: "piped",
    stderr: "piped",
    stdin: "null",
  }).spawn();
  let text = "";
  const reading = (async () => {
    for await (const chunk of child.stdout) text += decoder.decode(chunk, { stream: true });
  })();
  const errors = new Response(child.stderr).text();
  return {
    get text() {
      return text;
    },
    async stop(): Promise<string> {
      try {
        child.kill("SIGTERM");
      } catch {
        // Gone already.
      }
      await child.status;
      await reading;
      await errors;
      return text;
    },
  };
}

/** Waits until `check` holds (polling), or fails after `ms`. */
async function until(check: () => boolean | Promise<boolean>, ms = 10_000, what = "condition") {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The YAML documents the tool printed, each as its text. */
function documents(text: string): string[] {
  return text.split(/^---$/m).map((d) => d.trim()).filter((d) => d.includes("type: MESSAGE"));
}

/** Documents of one message type naming `name` in their printed DNS message. */
function messagesFor(text: string, type: string, name: string): string[] {
  return documents(text).filter((d) => d.includes(`  type: ${type}`) && d.includes(name));
}

describe("dnstap to the dnstap tool", () => {
  let upstream: LocalDohUpstream;
  let bridge: TestBridge;
  let dir: string;
  let socket: string;
  let collector: ReturnType<typeof startCollector>;

  beforeAll(async () => {
    const pki = await testPki();
    dir = await Deno.makeTempDir({ prefix: "dotbridge-dnstap-" });
    socket = `${dir}/dnstap.sock`;
    collector = startCollector(socket);
    await until(() => Deno.stat(socket).then(() => true, () => false), 5_000, "the socket");
    upstream = await startDohUpstream(pki);
    bridge = await startTestBridge(pki, upstream, [
      "--dnstap",
      `unix:${socket}`,
      "--http-listen",
      "127.0.0.1:0",
      "--doq-listen",
      "127.0.0.1:0",
      "--dns-listen",
      "127.0.0.1:0",
      "--metrics-listen",
      "127.0.0.1:0",
    ]);
    await until(() => bridge.logs.some((l) => l.includes("dnstap: connected")), 5_000, "connect");
  });

  afterAll(async () => {
    await bridge?.close();
    await upstream?.close();
    await collector?.stop();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  });

  it("streams client messages for every face, and forwarder messages upstream", async () => {
    const dot = await bridge.connect();
    const q1 = buildQuery("dot.example.test", { id: 11 });
    await dot.send(q1);
    expect(rcodeOf(await dot.waitFor(idOf(q1)))).toBe(0);
    dot.close();

    const http = Deno.createHttpClient({ caCerts: [bridge.caPem] });
    const res = await fetch(`https://localhost:${bridge.bridge.doh!.addr.port}/dns-query`, {
      method: "POST",
      headers: { "content-type": "application/dns-message" },
      body: buildQuery("doh.example.test", { id: 0 }).slice(),
      client: http,
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    http.close();

    const doq = await connectDoq({ port: bridge.bridge.doq!.addr.port, caCerts: [bridge.caPem] });
    expect(rcodeOf(await doq.query(buildQuery("doq.example.test")))).toBe(0);
    doq.close();

    // The plain DNS face: one face name, two socket protocols.
    const dnsPort = bridge.bridge.dns!.addr.port;
    const [udp] = await udpExchange(dnsPort, [buildQuery("udp.example.test", { id: 21 })]);
    expect(rcodeOf(udp)).toBe(0);
    const tcp = await Deno.connect({ hostname: "127.0.0.1", port: dnsPort });
    await tcp.write(frame(buildQuery("tcp.example.test", { id: 22 })));
    const [tcpAnswer] = await readFrames(tcp, 1);
    tcp.close();
    expect(rcodeOf(tcpAnswer)).toBe(0);

    const text = await (async () => {
      await until(
        () => messagesFor(collector.text, "CLIENT_RESPONSE", "doq.example.test").length > 0,
        10_000,
        "the DoQ response",
      );
      await until(
        () => messagesFor(collector.text, "CLIENT_RESPONSE", "tcp.example.test").length > 0,
        10_000,
        "the plain DNS TCP response",
      );
      return collector.text;
    })();
    // Debian's dnstap tool is built from a dnstap.proto older than DOQ (7, after DNSCryptUDP 5
    // and DNSCryptTCP 6 in the current schema): it prints the number.
    const faces = [["dot", "DOT"], ["doh", "DOH"], ["doq", "(DOQ|7)"], ["udp", "UDP"], [
      "tcp",
      "TCP",
    ]];
    for (const [name, protocol] of faces) {
      const queries = messagesFor(text, "CLIENT_QUERY", `${name}.example.test`);
      const responses = messagesFor(text, "CLIENT_RESPONSE", `${name}.example.test`);
      expect(queries.length, `${name} CLIENT_QUERY`).toBe(1);
      expect(responses.length, `${name} CLIENT_RESPONSE`).toBe(1);
      expect(queries[0]).toMatch(new RegExp(`socket_protocol: ${protocol}\\n`));
      expect(queries[0]).toContain("socket_family: INET");
      expect(queries[0]).toContain("query_address: 127.0.0.1");
      expect(responses[0]).toContain("status: NOERROR");
      expect(responses[0]).toMatch(/version: "?dotbridge /);
      // Each bridged query went upstream once: a FORWARDER_QUERY and its response, over DoH.
      const forwarded = messagesFor(text, "FORWARDER_RESPONSE", `${name}.example.test`);
      expect(forwarded.length, `${name} FORWARDER_RESPONSE`).toBe(1);
      expect(forwarded[0]).toContain("socket_protocol: DOH");
      expect(messagesFor(text, "FORWARDER_QUERY", `${name}.example.test`).length).toBe(1);
    }
    const metrics = await (await fetch(
      `http://127.0.0.1:${bridge.bridge.metricsAddr!.port}/metrics`,
    )).text();
    expect(metrics).toContain("dotbridge_dnstap_up 1");
  });

  it("keeps answering while the collector is away, and streams again once it is back", async () => {
    await collector.stop();
    await Deno.remove(socket).catch(() => {});
    const metricsUrl = `http://127.0.0.1:${bridge.bridge.metricsAddr!.port}/metrics`;
    await until(
      async () => (await (await fetch(metricsUrl)).text()).includes("dotbridge_dnstap_up 0"),
      10_000,
      "the sender to notice",
    );
    const dot = await bridge.connect();
    const started = performance.now();
    for (let i = 0; i < 20; i++) {
      const q = buildQuery(`away-${i}.example.test`, { id: 100 + i });
      await dot.send(q);
      expect(rcodeOf(await dot.waitFor(idOf(q)))).toBe(0);
    }
    // No timing target (noisy machine): just that twenty answers did not wait for a reconnect.
    expect(performance.now() - started).toBeLessThan(5_000);

    collector = startCollector(socket);
    await until(
      async () => (await (await fetch(metricsUrl)).text()).includes("dotbridge_dnstap_up 1"),
      10_000,
      "the reconnection",
    );
    const q = buildQuery("back.example.test", { id: 200 });
    await dot.send(q);
    expect(rcodeOf(await dot.waitFor(idOf(q)))).toBe(0);
    dot.close();
    await until(
      () => messagesFor(collector.text, "CLIENT_RESPONSE", "back.example.test").length > 0,
      10_000,
      "the message after reconnection",
    );
  });
});

describe("dnstap over TCP", () => {
  it("streams to a collector listening on tcp:HOST:PORT", async () => {
    const pki = await testPki();
    const port = freePort();
    const collector = startCollector("", ["-l", `127.0.0.1:${port}`, "-y"]);
    const upstream = await startDohUpstream(pki);
    // The collector may not listen yet: the bridge retries until it does.
    const bridge = await startTestBridge(pki, upstream, ["--dnstap", `tcp:127.0.0.1:${port}`]);
    try {
      await until(
        () => bridge.logs.some((l) => l.includes("dnstap: connected")),
        10_000,
        "connect",
      );
      const client = await bridge.connect();
      const q = buildQuery("tcp.example.test", { id: 5 });
      await client.send(q);
      expect(rcodeOf(await client.waitFor(idOf(q)))).toBe(0);
      client.close();
      await until(
        () => messagesFor(collector.text, "CLIENT_RESPONSE", "tcp.example.test").length > 0,
        10_000,
        "the message over TCP",
      );
      expect(messagesFor(collector.text, "CLIENT_QUERY", "tcp.example.test")[0]).toContain(
        "socket_protocol: DOT",
      );
    } finally {
      await bridge.close();
      await upstream.close();
      await collector.stop();
    }
  });
});

describe("bad observe settings", () => {
  it("fails the start with one line naming --dnstap or --query-log", async () => {
    const pki = await testPki();
    const upstream = await startDohUpstream(pki);
    try {
      await expect(startTestBridge(pki, upstream, ["--dnstap", "udp:192.0.2.1:6000"])).rejects
        .toThrow('--dnstap: "udp:192.0.2.1:6000" is not unix:PATH or tcp:HOST:PORT');
      await expect(startTestBridge(pki, upstream, ["--query-log", "/nonexistent/dir/q.log"]))
        .rejects.toThrow(/^--query-log: cannot open "\/nonexistent\/dir\/q.log": /);
    } finally {
      await upstream.close();
    }
  });
});
