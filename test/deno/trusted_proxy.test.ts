/**
 * `--trusted-proxy-header` and `--trusted-proxy-from` over real sockets: a real HAProxy in HTTP
 * mode with `option forwardfor` (which appends its own `X-Forwarded-For` field line) in front of
 * the plain-HTTP DoH face, over HTTP/1.1 and h2c to the bridge; clients bound to other loopback
 * addresses (`127.0.0.9`...) so the bridge can only learn who they are from the header. Then
 * direct peers outside `--trusted-proxy-from`, whose header must not count.
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import { aRecords, buildQuery, edeCode, rcodeOf } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { HAVE_HAPROXY, requireHaproxy, startHaproxy } from "../support/haproxy.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { octetFor } from "../support/zone.ts";

requireHaproxy();

interface Running {
  bridge: Bridge;
  logs: string[];
  doh: number;
  /** `dotbridge_connection_events_total` for the DoH face and this event. */
  events(event: string): number;
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let dir: string;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-xff-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await upstream?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
});

/** A bridge whose DoH face is plain HTTP (TLS ends at the proxy), with `args`. */
async function start(args: string[]): Promise<Running> {
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0", "--http-tls=false"],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`, "--log-queries"],
      ...args,
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  const logs: string[] = [];
  const bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: (line) => logs.push(line) }),
    sighup: false,
  });
  stops.push(() => bridge.shutdown());
  return {
    bridge,
    logs,
    doh: bridge.doh!.addr.port,
    events(event) {
      const m = new RegExp(
        `dotbridge_connection_events_total\\{face="doh",event="${event}"\\} (\\d+)`,
      ).exec(bridge.metrics.registry.render());
      return m ? Number(m[1]) : 0;
    },
  };
}

/** A DoH answer over HTTP/1.1: the status and the DNS message, or null if closed first. */
interface Answer {
  status: number;
  body: Uint8Array;
}

/**
 * One HTTP/1.1 GET of `name` to `port` from `localAddress`, with `headers` (field lines, in
 * order, repeats allowed); resolves once the server closes.
 */
function getFrom(
  port: number,
  localAddress: string,
  name: string,
  headers: [string, string][] = [],
): Promise<Answer | null> {
  const dns = Buffer.from(buildQuery(name, { edns: true })).toString("base64url");
  const head = [
    `GET /dns-query?dns=${dns} HTTP/1.1`,
    "host: localhost",
    "accept: application/dns-message",
    "connection: close",
    ...headers.map(([n, v]) => `${n}: ${v}`),
  ].join("\r\n") + "\r\n\r\n";
  return new Promise((resolve) => {
    const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => s.write(head));
    let got = Buffer.alloc(0);
    s.on("data", (c: Buffer) => void (got = Buffer.concat([got, c])));
    s.on("error", () => {});
    s.on("close", () => {
      const end = got.indexOf("\r\n\r\n");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(got.toString("latin1"));
      if (end < 0 || !m) return resolve(null);
      resolve({ status: Number(m[1]), body: new Uint8Array(got.subarray(end + 4)) });
    });
    setTimeout(() => s.destroy(), 5_000);
  });
}

/** A TCP connection from `localAddress` that opens a POST and sends only part of its body. */
function slowPost(port: number, localAddress: string): net.Socket {
  const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => {
    s.write(
      "POST /dns-query HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/dns-message\r\n" +
        "content-length: 100\r\n\r\n0123456789",
    );
  });
  s.on("error", () => {});
  return s;
}

async function waitFor(cond: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

describe.skipIf(!HAVE_HAPROXY)("behind a real HAProxy (mode http, option forwardfor)", () => {
  let b: Running;
  /** HAProxy frontends: to the bridge over HTTP/1.1 and over h2c. */
  const hp = { h1: 0, h2: 0 };

  beforeAll(async () => {
    // The default --trusted-proxy-from (loopback) trusts HAProxy at 127.0.0.1.
    b = await start([
      ...["--trusted-proxy-header", "x-forwarded-for", "--deny", "127.0.0.9"],
      ...["--max-connections-per-ip", "4", "--doh-request-timeout", "8s"],
    ]);
    hp.h1 = freePort();
    hp.h2 = freePort();
    let cfg = "global\n  maxconn 500\n\ndefaults\n  mode http\n  option forwardfor\n" +
      "  timeout connect 2s\n  timeout client 10s\n  timeout server 10s\n";
    for (const [name, port, proto] of [["h1", hp.h1, ""], ["h2", hp.h2, " proto h2"]] as const) {
      cfg += `\nfrontend ${name}\n  bind 127.0.0.1:${port}\n  default_backend ${name}_b\n` +
        `backend ${name}_b\n  server s 127.0.0.1:${b.doh}${proto}\n`;
    }
    const haproxy = await startHaproxy(`${dir}/haproxy-http.cfg`, cfg, [hp.h1, hp.h2]);
    stops.push(() => haproxy.stop());
  });

  it("keeps a client denied by --deny denied, whatever X-Forwarded-For it forges", async () => {
    for (const via of ["h1", "h2"] as const) {
      const forged = await getFrom(hp[via], "127.0.0.9", `forged-${via}.example.test`, [
        ["X-Forwarded-For", "198.51.100.7"],
      ]);
      expect(forged?.status, via).toBe(200);
      expect(rcodeOf(forged!.body), via).toBe(5); // REFUSED
      expect(edeCode(forged!.body), via).toBe(18); // Prohibited
      // Two forged lines, one with a list: still the line HAProxy appended.
      const twice = await getFrom(hp[via], "127.0.0.9", `twice-${via}.example.test`, [
        ["x-forwarded-for", "198.51.100.7, 203.0.113.1"],
        ["x-forwarded-for", "203.0.113.2"],
      ]);
      expect(rcodeOf(twice!.body), via).toBe(5);
    }
    expect(upstream.requests.some((q) => /^(forged|twice)-/.test(q.name))).toBe(false);
  });

  it("does not let an allowed client borrow a denied address", async () => {
    for (const via of ["h1", "h2"] as const) {
      const name = `borrow-${via}.example.test`;
      const ok = await getFrom(hp[via], "127.0.0.7", name, [["x-forwarded-for", "127.0.0.9"]]);
      expect(ok?.status, via).toBe(200);
      expect(rcodeOf(ok!.body), via).toBe(0);
      expect(aRecords(ok!.body)).toEqual([`192.0.2.${octetFor(name)}`]);
    }
    const lines = b.logs.filter((l) => l.includes("msg=query") && l.includes("borrow-"));
    expect(lines.length).toBe(2);
    for (const line of lines) expect(line).toContain("client=127.0.0.7");
  });

  it("does not count the proxy against --max-connections-per-ip: slow requests lock no one out", async () => {
    const before = b.events("refused-max-connections-per-ip");
    const slow = Array.from({ length: 12 }, () => slowPost(hp.h1, "127.0.0.5"));
    try {
      // HAProxy opens one connection to the bridge per request whose body is still coming.
      const all = await waitFor(() => b.bridge.doh!.connections >= 12, 4_000);
      const other = await getFrom(hp.h1, "127.0.0.6", "not-locked-out.example.test");
      expect(other?.status, `connections: ${b.bridge.doh!.connections}`).toBe(200);
      expect(rcodeOf(other!.body)).toBe(0);
      expect(all).toBe(true);
      expect(b.events("refused-max-connections-per-ip")).toBe(before);
    } finally {
      for (const s of slow) s.destroy();
    }
  });
});

describe("a peer outside --trusted-proxy-from", () => {
  let b: Running;

  beforeAll(async () => {
    b = await start([
      ...["--trusted-proxy-header", "x-forwarded-for", "--trusted-proxy-from", "127.0.0.1"],
      ...["--deny", "198.51.100.0/24,127.0.0.9", "--max-connections-per-ip", "2"],
    ]);
  });

  it("is the client itself: its X-Forwarded-For is ignored", async () => {
    const name = "untrusted-forwarder.example.test";
    const direct = await getFrom(b.doh, "127.0.0.3", name, [["x-forwarded-for", "198.51.100.7"]]);
    expect(direct?.status).toBe(200);
    expect(rcodeOf(direct!.body)).toBe(0); // not the denied 198.51.100.7
    const line = b.logs.find((l) => l.includes("msg=query") && l.includes(name));
    expect(line).toContain("client=127.0.0.3");
    // A denied peer cannot name an allowed address: closed at accept, like any denied client.
    const before = b.events("refused-acl");
    const denied = await getFrom(b.doh, "127.0.0.9", "denied-peer.example.test", [
      ["x-forwarded-for", "203.0.113.5"],
    ]);
    expect(denied).toBeNull();
    expect(b.events("refused-acl")).toBe(before + 1);
  });

  it("while the trusted proxy's header still names the client", async () => {
    const denied = await getFrom(b.doh, "127.0.0.1", "via-trusted.example.test", [
      ["x-forwarded-for", "198.51.100.7"],
    ]);
    expect(rcodeOf(denied!.body)).toBe(5);
    const ok = await getFrom(b.doh, "127.0.0.1", "via-trusted-ok.example.test", [
      ["x-forwarded-for", "203.0.113.5"],
    ]);
    expect(rcodeOf(ok!.body)).toBe(0);
  });

  it("is capped by --max-connections-per-ip; the trusted proxy is not", async () => {
    const held: net.Socket[] = [];
    const hold = (local: string) => {
      const s = net.connect({ host: "127.0.0.1", port: b.doh, localAddress: local });
      s.on("error", () => {});
      held.push(s);
      return new Promise<void>((resolve) => s.once("connect", () => resolve()));
    };
    try {
      const before = b.events("refused-max-connections-per-ip");
      for (let i = 0; i < 2; i++) await hold("127.0.0.4");
      for (let i = 0; i < 3; i++) await hold("127.0.0.1");
      expect(await waitFor(() => b.bridge.doh!.connections === 5, 3_000)).toBe(true);
      expect(await getFrom(b.doh, "127.0.0.4", "third.example.test")).toBeNull();
      expect(b.events("refused-max-connections-per-ip")).toBe(before + 1);
      const fourth = await getFrom(b.doh, "127.0.0.1", "fourth.example.test");
      expect(fourth?.status).toBe(200);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

describe("--connection-rate-limit with a trusted proxy", () => {
  it("limits a direct client's new connections, not the proxy's", async () => {
    const b = await start([
      ...["--trusted-proxy-header", "x-forwarded-for", "--trusted-proxy-from", "127.0.0.1"],
      ...["--connection-rate-limit", "1", "--connection-rate-burst", "1"],
    ]);
    for (let i = 0; i < 5; i++) {
      const via = await getFrom(b.doh, "127.0.0.1", `rate-via-${i}.example.test`, [
        ["x-forwarded-for", `203.0.113.${i}`],
      ]);
      expect(via?.status, `request ${i} through the proxy`).toBe(200);
    }
    expect((await getFrom(b.doh, "127.0.0.3", "rate-direct-1.example.test"))?.status).toBe(200);
    expect(await getFrom(b.doh, "127.0.0.3", "rate-direct-2.example.test")).toBeNull();
    expect(b.events("refused-connection-rate")).toBe(1);
  });
});
