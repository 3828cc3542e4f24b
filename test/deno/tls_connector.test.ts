import { afterEach, beforeAll, describe, expect, it } from "vitest";
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import net from "node:net";
import { createTlsConnector } from "../../src/deno/tls_connector.ts";
import { issueCertificate } from "../../src/pki/mod.ts";
import { encodeFrames, FrameDecoder } from "../../src/framing/codec.ts";
import type { LogFields, Logger } from "../../src/log/mod.ts";
import type { ByteStream, StreamTarget } from "../../src/upstream/stream.ts";
import { type LocalDotUpstream, startDotUpstream } from "../support/dot_upstream.ts";
import { opensslPin } from "../support/openssl.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { octetFor } from "../support/zone.ts";
import { rejection } from "../support/rejection.ts";

function target(port: number, servername: string, hostname = "127.0.0.1"): StreamTarget {
  return { hostname, port, servername, signal: AbortSignal.timeout(10_000) };
}

function recordingLogger() {
  const warnings: { msg: string; fields?: LogFields }[] = [];
  const logger: Logger = {
    debug() {},
    info() {},
    warn: (msg, fields) => warnings.push({ msg, fields }),
    error() {},
  };
  return { logger, warnings };
}

/** Sends one framed A query over the stream and reads one framed answer. */
async function exchangeOnce(stream: ByteStream, name: string, id: number) {
  const query = new Uint8Array(dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: "A", name }],
  }));
  const writer = stream.writable.getWriter();
  await writer.write(encodeFrames([query]));
  writer.releaseLock();
  const reader = stream.readable.getReader();
  const decoder = new FrameDecoder();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error("stream ended before the answer");
      const [message] = decoder.push(value);
      if (message) return dnsPacket.decode(Buffer.from(message));
    }
  } finally {
    reader.releaseLock();
  }
}

let pki: TestPki;
let server: LocalDotUpstream | undefined;
const streams: ByteStream[] = [];

beforeAll(async () => {
  pki = await testPki();
});

afterEach(async () => {
  for (const s of streams.splice(0)) await s.close();
  await server?.close();
  server = undefined;
});

describe("createTlsConnector over real TLS", () => {
  it("connects with ALPN dot and SNI, and carries a framed DNS exchange", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const connect = createTlsConnector({ caCerts: [pki.ca.certPem] });
    const stream = await connect(target(server.port, "localhost"));
    streams.push(stream);
    const answer = await exchangeOnce(stream, "hello.example.test", 4242);
    expect(answer.id).toBe(4242);
    const a = answer.answers?.[0];
    expect(a?.type === "A" ? a.data : undefined).toBe(`192.0.2.${octetFor("hello.example.test")}`);
    expect(server.handshakes).toEqual([{ servername: "localhost", alpn: "dot" }]);
  });

  it("checks an address against the IP SAN and sends no SNI for it, over IPv4 and IPv6", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const connect = createTlsConnector({ caCerts: [pki.ca.certPem] });
    const stream = await connect(target(server.port, "127.0.0.1"));
    streams.push(stream);
    expect((await exchangeOnce(stream, "v4.example.test", 1)).id).toBe(1);
    expect(server.handshakes[0].servername).toBe(false);
    await server.close();

    server = await startDotUpstream({ cert: pki.server, hostname: "::1" });
    const v6 = await connect(target(server.port, "::1", "::1"));
    streams.push(v6);
    expect((await exchangeOnce(v6, "v6.example.test", 2)).id).toBe(2);
  });

  it("the readable ends when the server closes, and close() settles closed", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const stream = await createTlsConnector({ caCerts: [pki.ca.certPem] })(
      target(server.port, "localhost"),
    );
    streams.push(stream);
    const reader = stream.readable.getReader();
    const ended = reader.read();
    await server.close(); // destroys the connection
    server = undefined;
    const result = await ended.catch((error: Error) => ({ error }));
    expect("error" in result || result.done).toBe(true);
    await stream.close();
    await expect(stream.closed.then(() => "settled", () => "settled")).resolves.toBe("settled");
  });

  it("refuses a certificate for another name, naming both", async () => {
    const wrong = await issueCertificate(pki.ca, { dnsNames: ["wrong.example"] });
    server = await startDotUpstream({ cert: wrong });
    const connect = createTlsConnector({ caCerts: [pki.ca.certPem] });
    const error = await rejection(connect(target(server.port, "localhost")));
    expect(error.message).toMatch(
      new RegExp(`^TLS to 127\\.0\\.0\\.1:${server.port} as "localhost": .*wrong\\.example`),
    );
  });

  it("refuses a certificate from an untrusted CA", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const error = await rejection(createTlsConnector()(target(server.port, "localhost")));
    expect(error.message).toMatch(/certificate/i);
    expect(error.message).toContain(`TLS to 127.0.0.1:${server.port} as "localhost"`);
  });

  it("accepts the pin of the leaf or of the CA in its chain, refuses others, printing the server's pin", async () => {
    server = await startDotUpstream({ cert: pki.server });
    const pin = await opensslPin(pki.server.certPem);
    const pinned = (pins: string[]) =>
      createTlsConnector({ caCerts: [pki.ca.certPem], pins })(target(server!.port, "localhost"));
    for (const [id, good] of [pin, await opensslPin(pki.ca.certPem)].entries()) {
      const ok = await pinned([good]);
      streams.push(ok);
      expect((await exchangeOnce(ok, "pin.example.test", id)).id).toBe(id);
    }

    const other = await issueCertificate(pki.ca, { dnsNames: ["localhost"] });
    const error = await rejection(pinned([other.spkiPin]));
    expect(error.message).toContain(`SPKI pin mismatch: the server's key ${pin}`);
  });

  it("refuses a pinned server that fails the name check first, as the name error", async () => {
    const wrong = await issueCertificate(pki.ca, { dnsNames: ["wrong.example"] });
    server = await startDotUpstream({ cert: wrong });
    const error = await rejection(
      createTlsConnector({ caCerts: [pki.ca.certPem], pins: [wrong.spkiPin] })(
        target(server.port, "localhost"),
      ),
    );
    expect(error.message).toMatch(/wrong\.example/);
    expect(error.message).not.toMatch(/SPKI pin/);
  });

  it("opportunistic mode accepts any certificate and warns once", async () => {
    const wrong = await issueCertificate(pki.ca, { dnsNames: ["wrong.example"] });
    server = await startDotUpstream({ cert: wrong });
    const { logger, warnings } = recordingLogger();
    const connect = createTlsConnector({ opportunistic: true, logger });
    for (const id of [1, 2]) {
      const stream = await connect(target(server.port, "localhost"));
      streams.push(stream);
      expect((await exchangeOnce(stream, "opp.example.test", id)).id).toBe(id);
    }
    expect(warnings).toHaveLength(1);
    expect(warnings[0].msg).toMatch(/NOT authenticated \(opportunistic mode, RFC 7858 §4\.1\)/);
  });

  it("rejects with the signal's reason when aborted mid-handshake", async () => {
    const silent = net.createServer();
    const sockets = new Set<net.Socket>();
    silent.on("connection", (s) => sockets.add(s.on("error", () => {})));
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (silent.address() as net.AddressInfo).port;
      const controller = new AbortController();
      const connecting = createTlsConnector()({
        hostname: "127.0.0.1",
        port,
        servername: "localhost",
        signal: controller.signal,
      });
      setTimeout(() => controller.abort(new Error("gave up")), 50);
      const error = await rejection(connecting);
      expect(error.message).toBe("gave up");
      const already = await rejection(
        createTlsConnector()({ ...target(port, "x"), signal: controller.signal }),
      );
      expect(already.message).toBe("gave up");
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => silent.close(() => r()));
    }
  });

  it("refuses contradictory or malformed options", () => {
    expect(() => createTlsConnector({ opportunistic: true, pins: [pki.server.spkiPin] })).toThrow(
      /cannot be combined/,
    );
    expect(() => createTlsConnector({ pins: ["AAAA"] })).toThrow(RangeError);
  });
});
