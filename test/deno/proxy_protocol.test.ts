/**
 * PROXY protocol inbound and the connection rate limits, over real sockets: a real HAProxy
 * (`send-proxy-v2` and `send-proxy`, TCP mode) in front of an in-process bridge, clients bound to
 * other loopback addresses (`127.0.0.9`...) so the bridge can only learn who they are from the
 * header; direct connections that send a header, or a trusted peer that sends none; and the
 * per-client new-connection and handshake rate limits.
 */
import { Buffer } from "node:buffer";
import net from "node:net";
import tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import { aRecords, buildQuery, frame, idOf, rcodeOf } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { HAVE_HAPROXY, requireHaproxy, startHaproxy } from "../support/haproxy.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { freePort } from "../support/ports.ts";
import { octetFor } from "../support/zone.ts";

requireHaproxy();

interface Running {
  bridge: Bridge;
  logs: string[];
  dot: number;
  doh: number;
  /** `dotbridge_connection_events_total` for this face and event. */
  events(face: string, event: string): number;
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let dir: string;
const stops: (() => Promise<void>)[] = [];

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-proxy-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await upstream?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
});

async function start(args: string[]): Promise<Running> {
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
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
    dot: bridge.dot.addr.port,
    doh: bridge.doh!.addr.port,
    events(face, event) {
      const text = bridge.metrics.registry.render();
      const m = new RegExp(
        `dotbridge_connection_events_total\\{face="${face}",event="${event}"\\} (\\d+)`,
      ).exec(text);
      return m ? Number(m[1]) : 0;
    },
  };
}

/** A running HAProxy in TCP mode; `ports[name]` is where each frontend listens. */
async function startTcpHaproxy(
  fronts: {
    name: string;
    to: number;
    send: "send-proxy" | "send-proxy-v2";
    /** HAProxy's server check options, e.g. `check check-send-proxy inter 200ms`. */
    check?: string;
  }[],
): Promise<Record<string, number>> {
  const ports: Record<string, number> = {};
  let cfg = "global\n  maxconn 200\n\ndefaults\n  mode tcp\n  timeout connect 2s\n" +
    "  timeout client 10s\n  timeout server 10s\n";
  for (const f of fronts) {
    ports[f.name] = freePort();
    cfg +=
      `\nfrontend ${f.name}\n  bind 127.0.0.1:${ports[f.name]}\n  default_backend ${f.name}_b\n` +
      `backend ${f.name}_b\n  server s 127.0.0.1:${f.to} ${f.send} ${f.check ?? ""}\n`;
  }
  const path = `${dir}/haproxy-${Object.values(ports).join("-")}.cfg`;
  const haproxy = await startHaproxy(path, cfg, Object.values(ports));
  stops.push(() => haproxy.stop());
  return ports;
}

/**
 * One DoT connection from `localAddress` (opening with `header`, if given); `query` resolves its
 * answer or null once closed.
 */
function dotFrom(port: number, localAddress: string, header?: Uint8Array) {
  // The TCP connection bound to `localAddress` first: TLS runs over it, after the header.
  const raw = net.connect({ host: "127.0.0.1", port, localAddress });
  if (header) raw.write(header);
  const socket = tls.connect({
    socket: raw,
    servername: "localhost",
    ca: pki.ca.certPem,
    ALPNProtocols: ["dot"],
  });
  let pending = Buffer.alloc(0);
  const answers: Uint8Array[] = [];
  let wake = () => {};
  let closed = false;
  socket.on("data", (chunk: Buffer) => {
    pending = Buffer.concat([pending, chunk]);
    while (pending.length >= 2 && pending.length >= 2 + pending.readUInt16BE(0)) {
      const n = pending.readUInt16BE(0);
      answers.push(new Uint8Array(pending.subarray(2, 2 + n)));
      pending = pending.subarray(2 + n);
    }
    wake();
  });
  socket.on("error", () => {});
  const gone = new Promise<void>((resolve) =>
    socket.on("close", () => {
      closed = true;
      wake();
      resolve();
    })
  );
  return {
    socket,
    gone,
    async query(name: string, timeoutMs = 3_000): Promise<Uint8Array | null> {
      const q = buildQuery(name);
      socket.write(frame(q));
      const until = Date.now() + timeoutMs;
      while (Date.now() < until) {
        const i = answers.findIndex((a) => idOf(a) === idOf(q));
        if (i >= 0) return answers.splice(i, 1)[0];
        if (closed) return null;
        await new Promise<void>((r) => {
          wake = r;
          setTimeout(r, 50);
        });
      }
      throw new Error(`no answer and not closed for ${name}`);
    },
    close() {
      socket.destroy();
    },
  };
}

/**
 * One HTTP/1.1 DoH GET over TLS from `localAddress` (opening with `header`, if given): the
 * status, or null if closed first.
 */
function dohFrom(
  port: number,
  localAddress: string,
  name: string,
  header?: Uint8Array,
): Promise<number | null> {
  const dns = Buffer.from(buildQuery(name)).toString("base64url");
  return new Promise((resolve) => {
    // The TCP connection bound to `localAddress` first: TLS runs over it, after the header.
    const raw = net.connect({ host: "127.0.0.1", port, localAddress });
    if (header) raw.write(header);
    const socket = tls.connect({
      socket: raw,
      servername: "localhost",
      ca: pki.ca.certPem,
      ALPNProtocols: ["http/1.1"],
    });
    let text = "";
    socket.on("secureConnect", () => {
      socket.write(
        `GET /dns-query?dns=${dns} HTTP/1.1\r\nhost: localhost\r\naccept: application/dns-message\r\nconnection: close\r\n\r\n`,
      );
    });
    socket.on("data", (c: Buffer) => {
      text += c.toString("latin1");
      const m = /^HTTP\/1\.1 (\d{3})/.exec(text);
      if (m) {
        resolve(Number(m[1]));
        socket.destroy();
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve(null));
  });
}

/** Raw TCP from `localAddress` that writes `bytes`; resolves when the server closes (ms taken). */
function closedAfterWriting(port: number, localAddress: string, bytes: Uint8Array) {
  return new Promise<number>((resolve, reject) => {
    const t0 = performance.now();
    const s = net.connect({ host: "127.0.0.1", port, localAddress }, () => s.write(bytes));
    s.on("error", () => {});
    s.on("data", () => {}); // a TLS alert may come first
    s.on("close", () => resolve(performance.now() - t0));
    setTimeout(() => {
      s.destroy();
      reject(new Error("still open"));
    }, 4_000);
  });
}

const v2Header = (src: number[], port: number) =>
  new Uint8Array([
    ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a],
    ...[0x21, 0x11, 0x00, 0x0c, ...src, 127, 0, 0, 1, port >> 8, port & 0xff, 0x03, 0x55],
  ]);

/** A v2 TCP6 header from the 16-byte address `src`. */
const v2Header6 = (src: number[], port: number) =>
  new Uint8Array([
    ...[0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a],
    ...[0x21, 0x21, 0x00, 0x24, ...src, ...new Array(15).fill(0), 1],
    ...[port >> 8, port & 0xff, 0x03, 0x55],
  ]);

/** A v1 TCP6 header from `src`. */
const v1Header6 = (src: string, port: number) =>
  new TextEncoder().encode(`PROXY TCP6 ${src} ::1 ${port} 853\r\n`);

/** 2001:db8:<net>::<host> as 16 bytes. */
const addr6 = (net: number, host: number) => [
  ...[0x20, 0x01, 0x0d, 0xb8, net >> 8, net & 0xff],
  ...new Array(8).fill(0),
  ...[host >> 8, host & 0xff],
];

describe.skipIf(!HAVE_HAPROXY)("behind a real HAProxy (send-proxy-v2, send-proxy)", () => {
  let b: Running;
  let hp: Record<string, number>;

  beforeAll(async () => {
    b = await start([
      ...["--proxy-protocol-from", "127.0.0.1/32,::1"],
      ...["--deny", "127.0.0.9/32", "--max-connections-per-ip", "2", "--log-queries"],
      ...["--handshake-timeout", "600ms"],
    ]);
    hp = await startTcpHaproxy([
      { name: "dot", to: b.dot, send: "send-proxy-v2" },
      { name: "dotv1", to: b.dot, send: "send-proxy" },
      { name: "doh", to: b.doh, send: "send-proxy-v2" },
    ]);
  });

  it("answers DoT through it (v2 and v1), and logs the client's own address", async () => {
    for (const front of ["dot", "dotv1"]) {
      const c = dotFrom(hp[front], "127.0.0.7");
      const answer = await c.query(`through-${front}.example.test`);
      c.close();
      expect(answer && rcodeOf(answer)).toBe(0);
      expect(aRecords(answer!)).toEqual([`192.0.2.${octetFor(`through-${front}.example.test`)}`]);
    }
    const lines = b.logs.filter((l) => l.includes("through-dot"));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line).toContain("127.0.0.7");
  });

  it("sees 127.0.0.9 as itself: --deny refuses it on DoT and DoH, 127.0.0.1 still works", async () => {
    const before = b.events("dot", "refused-acl");
    const denied = dotFrom(hp.dot, "127.0.0.9");
    await denied.gone;
    expect(b.events("dot", "refused-acl")).toBe(before + 1);

    const ok = dotFrom(hp.dot, "127.0.0.1");
    const answer = await ok.query("allowed.example.test");
    expect(answer, b.logs.slice(-8).join("\n")).not.toBeNull();
    expect(rcodeOf(answer!)).toBe(0);
    ok.close();

    expect(await dohFrom(hp.doh, "127.0.0.9", "denied-doh.example.test")).toBeNull();
    expect(b.events("doh", "refused-acl")).toBeGreaterThanOrEqual(1);
    expect(await dohFrom(hp.doh, "127.0.0.1", "allowed-doh.example.test")).toBe(200);
  });

  it("counts the per-IP cap on the client's address, not HAProxy's", async () => {
    const before = b.events("dot", "refused-max-connections-per-ip");
    const held = [dotFrom(hp.dot, "127.0.0.5"), dotFrom(hp.dot, "127.0.0.5")];
    for (const c of held) expect(await c.query("held.example.test")).not.toBeNull();
    const third = dotFrom(hp.dot, "127.0.0.5");
    await third.gone;
    expect(b.events("dot", "refused-max-connections-per-ip")).toBe(before + 1);
    // Every connection reaches the bridge from HAProxy's 127.0.0.1; others are not capped.
    const other = dotFrom(hp.dot, "127.0.0.6");
    expect(rcodeOf((await other.query("other.example.test"))!)).toBe(0);
    for (const c of [...held, other]) c.close();
  });

  it("closes a trusted peer that sends no header, or garbage, and keeps serving", async () => {
    const before = b.events("dot", "refused-proxy-header");
    // 127.0.0.1 is trusted: a plain TLS client from it sends a ClientHello, not a header.
    const plain = dotFrom(b.dot, "127.0.0.1");
    expect(await plain.query("no-header.example.test")).toBeNull();
    await closedAfterWriting(
      b.dot,
      "127.0.0.1",
      new TextEncoder().encode("PROXY TCP4 nonsense\r\n"),
    );
    // Oversized v2 (declares 1000 bytes) and a header that never completes (slow).
    const big = new Uint8Array([...v2Header([1, 2, 3, 4], 1).subarray(0, 14), 0x03, 0xe8]);
    await closedAfterWriting(b.dot, "127.0.0.1", big);
    const slow = await closedAfterWriting(
      b.dot,
      "127.0.0.1",
      new TextEncoder().encode("PROXY TCP4 "),
    );
    expect(slow).toBeGreaterThanOrEqual(500);
    expect(b.events("dot", "refused-proxy-header")).toBe(before + 4);
    const ok = dotFrom(hp.dot, "127.0.0.7");
    expect(rcodeOf((await ok.query("still-fine.example.test"))!)).toBe(0);
    ok.close();
  });

  it("counts HAProxy's health checks (PROXY v2 LOCAL, then a close) as health-check, not failures", async () => {
    const failedBefore = b.events("dot", "tls-handshake-failed");
    const checksBefore = b.events("dot", "health-check");
    // A TCP check that sends its PROXY v2 LOCAL header (check-send-proxy) every 100 ms.
    await startTcpHaproxy([
      {
        name: "checked",
        to: b.dot,
        send: "send-proxy-v2",
        check: "check check-send-proxy inter 100ms",
      },
    ]);
    // And a bare TCP probe (connect, then close) from a trusted peer, as a balancer's check
    // without check-send-proxy makes.
    await new Promise<void>((resolve) => {
      const s = net.connect(
        { host: "127.0.0.1", port: b.dot, localAddress: "127.0.0.1" },
        () => s.end(),
      );
      s.on("error", () => {});
      s.on("close", () => resolve());
    });
    for (let i = 0; i < 100 && b.events("dot", "health-check") < checksBefore + 4; i++) {
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(b.events("dot", "health-check")).toBeGreaterThanOrEqual(checksBefore + 4);
    expect(b.events("dot", "tls-handshake-failed")).toBe(failedBefore);
  });

  it("closes an untrusted peer that sends a header (DoT: the TLS handshake fails)", async () => {
    const before = b.events("dot", "tls-handshake-failed");
    await closedAfterWriting(b.dot, "127.0.0.2", v2Header([10, 0, 0, 1], 1234));
    await closedAfterWriting(
      b.dot,
      "127.0.0.2",
      new TextEncoder().encode("PROXY TCP4 10.0.0.1 127.0.0.1 1 853\r\n"),
    );
    expect(b.events("dot", "tls-handshake-failed")).toBe(before + 2);
  });
});

describe("a plain-HTTP DoH face behind a PROXY header", () => {
  it("takes the header from a trusted peer and refuses it from others", async () => {
    const b = await start([
      "--http-tls=false",
      ...["--proxy-protocol-from", "127.0.0.1", "--deny", "10.9.9.9"],
    ]);
    const get = (local: string, header: Uint8Array) =>
      new Promise<string>((resolve) => {
        const dns = Buffer.from(buildQuery("plain.example.test")).toString("base64url");
        const s = net.connect({ host: "127.0.0.1", port: b.doh, localAddress: local }, () => {
          s.write(
            Buffer.concat([
              header,
              Buffer.from(
                `GET /dns-query?dns=${dns} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`,
              ),
            ]),
          );
        });
        let text = "";
        s.on("data", (c: Buffer) => void (text += c.toString("latin1")));
        s.on("error", () => {});
        s.on("close", () => resolve(text.slice(0, 12)));
      });
    expect(await get("127.0.0.1", v2Header([10, 0, 0, 1], 1))).toBe("HTTP/1.1 200");
    expect(await get("127.0.0.1", v2Header([10, 9, 9, 9], 1))).toBe(""); // denied by its real address
    expect(await get("127.0.0.1", new Uint8Array())).toBe(""); // trusted, but no header
    expect(await get("127.0.0.3", v2Header([10, 0, 0, 1], 1))).toBe(""); // header, untrusted
    expect(b.events("doh", "refused-acl")).toBe(1);
    expect(b.events("doh", "refused-proxy-header")).toBe(1);
    expect(b.events("doh", "refused-proxy-header-untrusted")).toBe(1);
  });
});

describe("--max-connections-per-ip behind a PROXY peer counts an IPv6 client by its /64", () => {
  it("DoT: many addresses of one /64 share the cap (v2 and v1 headers); another /64 does not", async () => {
    const b = await start(["--proxy-protocol-from", "127.0.0.1", "--max-connections-per-ip", "2"]);
    const before = b.events("dot", "refused-max-connections-per-ip");
    const held = [];
    let answered = 0;
    for (let i = 1; i <= 8; i++) {
      const header = i % 2
        ? v2Header6(addr6(0x12, i), 4000 + i)
        : v1Header6(`2001:db8:12::${i}`, i);
      const c = dotFrom(b.dot, "127.0.0.1", header);
      held.push(c);
      if (await c.query(`six-${i}.example.test`)) answered++;
    }
    expect(answered).toBe(2);
    expect(b.events("dot", "refused-max-connections-per-ip")).toBe(before + 6);
    // 2001:db8:13::/64 is another client; an IPv4 one too.
    for (const header of [v2Header6(addr6(0x13, 1), 1), v2Header([10, 1, 1, 1], 1)]) {
      const other = dotFrom(b.dot, "127.0.0.1", header);
      held.push(other);
      expect(rcodeOf((await other.query("other-64.example.test"))!)).toBe(0);
    }
    for (const c of held) c.close();
  });

  it("DoH: the same, on its own slots", async () => {
    const b = await start(["--proxy-protocol-from", "127.0.0.1", "--max-connections-per-ip", "2"]);
    const before = b.events("doh", "refused-max-connections-per-ip");
    // Connections that send only the header hold a slot until their handshake deadline.
    const held: net.Socket[] = [];
    try {
      for (let i = 1; i <= 6; i++) {
        const s = net.connect({ host: "127.0.0.1", port: b.doh }, () => {
          s.write(i % 2 ? v2Header6(addr6(0x21, i), i) : v1Header6(`2001:db8:21::${i}`, i));
        });
        s.on("error", () => {});
        held.push(s);
      }
      const deadline = Date.now() + 3_000;
      while (b.events("doh", "refused-max-connections-per-ip") < before + 4) {
        if (Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      expect(b.events("doh", "refused-max-connections-per-ip")).toBe(before + 4);
      expect(b.bridge.doh!.connections).toBe(2);
      const same = v1Header6("2001:db8:21:0:ffff:ffff:ffff:ffff", 1);
      expect(await dohFrom(b.doh, "127.0.0.1", "same-64.example.test", same)).toBeNull();
      const other = v1Header6("2001:db8:22::1", 1);
      expect(await dohFrom(b.doh, "127.0.0.1", "other-64.example.test", other)).toBe(200);
    } finally {
      for (const s of held) s.destroy();
    }
  });
});

describe("connection and handshake rate limits", () => {
  /** Opens `n` DoT connections from `local` one after another: how many got an answer. */
  async function served(port: number, local: string, n: number): Promise<number> {
    let ok = 0;
    for (let i = 0; i < n; i++) {
      const c = dotFrom(port, local);
      if (await c.query(`rate-${i}.example.test`)) ok++;
      c.close();
    }
    return ok;
  }

  it("--connection-rate-limit: a burst, then closed at once, per client; refills", async () => {
    const b = await start(["--connection-rate-limit", "2", "--connection-rate-burst", "3"]);
    expect(await served(b.dot, "127.0.0.21", 5)).toBe(3);
    expect(b.events("dot", "refused-connection-rate")).toBe(2);
    expect(await served(b.dot, "127.0.0.22", 2)).toBe(2); // another client is not affected
    await new Promise((r) => setTimeout(r, 600)); // one token back at 2/s
    expect(await served(b.dot, "127.0.0.21", 2)).toBe(1);
    // Plain TCP counts too, before TLS: the DoH face has its own limiter.
    expect(await dohFrom(b.doh, "127.0.0.21", "doh-rate.example.test")).toBe(200);
  });

  it("--handshake-rate-limit: handshakes past the burst closed before TLS", async () => {
    const b = await start(["--handshake-rate-limit", "1", "--handshake-rate-burst", "2"]);
    expect(await served(b.dot, "127.0.0.23", 4)).toBe(2);
    expect(b.events("dot", "refused-handshake-rate")).toBe(2);
    expect(await served(b.dot, "127.0.0.24", 1)).toBe(1);
  });

  it("keys the rate on the PROXY header's address", async () => {
    const b = await start([
      ...["--proxy-protocol-from", "127.0.0.1"],
      ...["--connection-rate-limit", "1", "--connection-rate-burst", "1"],
    ]);
    const closes = async (src: number[]) => {
      let closed = false;
      const s = net.connect({ host: "127.0.0.1", port: b.dot }, () => s.write(v2Header(src, 1)));
      s.on("error", () => {});
      s.on("end", () => closed = true);
      s.on("close", () => closed = true);
      await new Promise((r) => setTimeout(r, 150));
      s.destroy();
      return closed;
    };
    expect(await closes([10, 0, 0, 1])).toBe(false); // waits for its ClientHello
    expect(await closes([10, 0, 0, 1])).toBe(true); // same client, past its rate
    expect(await closes([10, 0, 0, 2])).toBe(false); // another client via the same peer
    expect(b.events("dot", "refused-connection-rate")).toBe(1);
  });
});
