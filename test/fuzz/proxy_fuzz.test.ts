/**
 * Property-based fuzzing of the PROXY protocol front of the real DoT listener (fast-check): from
 * a trusted peer, the malformed corpus, truncated and mutated good headers, and noise, each
 * split at random points. Every such connection must be closed within the handshake timeout
 * (a truncated one at it), a good header must get through to the TLS handshake, nothing may
 * throw, and a client connected through a good header keeps being answered throughout.
 */
import * as fc from "fast-check";
import net from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../../src/config/parse.ts";
import { type Bridge, startBridge } from "../../src/deno/bridge.ts";
import { createLogger } from "../../src/log/mod.ts";
import { parseProxyHeader } from "../../src/net/proxy_protocol.ts";
import { buildQuery, frame, idOf, rcodeOf } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { MALFORMED, tcp4, v2 } from "../net/proxy_corpus.ts";

const HANDSHAKE_MS = 400;

let pki: TestPki;
let upstream: LocalDohUpstream;
let bridge: Bridge;
let port: number;
let dir: string;
const crashes: unknown[] = [];
const onRejection = (e: PromiseRejectionEvent) => {
  crashes.push(e.reason);
  e.preventDefault();
};

beforeAll(async () => {
  globalThis.addEventListener("unhandledrejection", onRejection);
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  dir = await Deno.makeTempDir({ prefix: "dotbridge-proxy-fuzz-" });
  await Deno.writeTextFile(`${dir}/cert.pem`, pki.server.chainPem);
  await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
  await Deno.writeTextFile(`${dir}/ca.pem`, pki.ca.certPem);
  const parsed = parseConfig({
    args: [
      ...["--listen", "127.0.0.1:0", "--http-listen", "off"],
      ...["--cert", `${dir}/cert.pem`, "--key", `${dir}/key.pem`],
      ...["--upstream-ca", `${dir}/ca.pem`, "--upstream", upstream.url],
      ...["--proxy-protocol-from", "127.0.0.1", "--handshake-timeout", `${HANDSHAKE_MS}ms`],
    ],
    env: {},
  });
  if (parsed.help) throw new Error("unexpected --help");
  bridge = await startBridge(parsed.config, {
    logger: createLogger({ level: "debug", sink: () => {} }),
    sighup: false,
  });
  port = bridge.dot.addr.port;
});

afterAll(async () => {
  await bridge?.shutdown();
  await upstream?.close();
  if (dir) await Deno.remove(dir, { recursive: true });
  globalThis.removeEventListener("unhandledrejection", onRejection);
});

const good = () => [
  new TextEncoder().encode("PROXY TCP4 192.0.2.1 192.0.2.2 1000 853\r\n"),
  new TextEncoder().encode("PROXY TCP6 2001:db8::1 2001:db8::2 1000 853\r\n"),
  v2(1, 0x11, tcp4([192, 0, 2, 1], [192, 0, 2, 2], 1000, 853)),
  v2(0, 0x00, []),
];

/** Header-ish bytes: the corpus, good headers cut short or with a byte changed, and noise. */
const headerArb: fc.Arbitrary<Uint8Array> = fc.oneof(
  fc.constantFrom(...MALFORMED.map(([, bytes]) => bytes)),
  fc.tuple(fc.constantFrom(...good()), fc.nat()).map(([h, n]) => h.subarray(0, n % h.length)),
  fc.tuple(fc.constantFrom(...good()), fc.nat(), fc.integer({ min: 0, max: 255 })).map(
    ([h, i, b]) => {
      const m = new Uint8Array(h);
      m[i % m.length] = b;
      return m;
    },
  ),
  fc.uint8Array({ maxLength: 700 }),
);

/** Writes `bytes` in `splits` pieces; resolves "closed" (with ms) or "open" after the bound. */
function send(bytes: Uint8Array, splits: number[]): Promise<{ closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let done = false;
    const finish = (closed: boolean) => {
      if (done) return;
      done = true;
      clearTimeout(bound);
      s.destroy();
      resolve({ closed, ms: performance.now() - t0 });
    };
    const s = net.connect({ host: "127.0.0.1", port }, async () => {
      let at = 0;
      for (const cut of [...splits.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b)]) {
        if (s.destroyed) return;
        s.write(bytes.subarray(at, Math.max(at, cut)));
        at = Math.max(at, cut);
        await new Promise((r) => setTimeout(r, 1));
      }
      if (!s.destroyed) s.write(bytes.subarray(at));
    });
    s.on("error", () => {});
    s.on("data", () => {});
    s.on("close", () => finish(true));
    const bound = setTimeout(() => finish(false), 2 * HANDSHAKE_MS + 800);
  });
}

describe("PROXY header fuzz (trusted peer)", () => {
  it("closes every bad or unfinished header within the handshake timeout; serves others", {
    timeout: 20_000,
  }, async () => {
    // A client through a good header, before and after.
    const hello = await send(
      new Uint8Array([...good()[2]]),
      [],
    );
    expect(hello.closed).toBe(true); // no ClientHello follows: the TLS deadline closes it
    // All at once, from one peer: a bad connection harms no one else.
    const seed = Date.now();
    const cases = fc.sample(fc.tuple(headerArb, fc.array(fc.nat(), { maxLength: 4 })), {
      numRuns: 150,
      seed,
    });
    const results = await Promise.all(cases.map(async ([bytes, splits]) => {
      let valid = false;
      try {
        valid = parseProxyHeader(bytes) !== undefined;
      } catch { /* malformed */ }
      return { bytes: [...bytes], valid, ...(await send(bytes, splits)) };
    }));
    for (const r of results) {
      // A good header is followed by the TLS deadline, so twice the timeout at most.
      const ok = r.closed && r.ms < (r.valid ? 2 : 1) * HANDSHAKE_MS + 600;
      expect(ok, `seed ${seed}: ${JSON.stringify(r)}`).toBe(true);
    }
    // Still serving: a real DoT exchange behind a good v1 header.
    const q = buildQuery("after-fuzz.example.test");
    const answer = await dotBehindHeader(good()[0], q);
    expect(idOf(answer)).toBe(idOf(q));
    expect(rcodeOf(answer)).toBe(0);
    expect(crashes).toEqual([]);
  });
});

/** Sends `header` on TCP, then TLS and one DoT query; the answer. */
async function dotBehindHeader(header: Uint8Array, query: Uint8Array): Promise<Uint8Array> {
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  await tcp.write(header);
  const conn = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [pki.ca.certPem] });
  try {
    await conn.write(frame(query));
    const buf = new Uint8Array(4096);
    let have = 0;
    for (;;) {
      const n = await conn.read(buf.subarray(have));
      if (n === null) throw new Error("closed before the answer");
      have += n;
      if (have >= 2 && have >= 2 + ((buf[0] << 8) | buf[1])) {
        return buf.slice(2, 2 + ((buf[0] << 8) | buf[1]));
      }
    }
  } finally {
    conn.close();
  }
}
