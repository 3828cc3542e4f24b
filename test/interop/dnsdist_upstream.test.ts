/**
 * The bridge's HTTP/2 client against a real, independent DoH server: dnsdist's DoH frontend
 * (h2o inside), answering every query itself with SpoofAction. h2o indexes response headers
 * into the HPACK dynamic table and refers to them from the next response, which a node:http2
 * test server does not do. Skipped where dnsdist is missing, except in CI (CI=true), where a
 * missing dnsdist fails.
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createH2Transport } from "../../src/deno/h2_transport.ts";
import type { H2ClientTransport } from "../../src/upstream/h2_transport.ts";
import { type TestPki, testPki } from "../support/pki.ts";

const CI = Deno.env.get("CI") === "true";

async function installed(bin: string): Promise<boolean> {
  try {
    await new Deno.Command(bin, { args: ["--version"], stdout: "null", stderr: "null" }).output();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

const HAVE_DNSDIST = await installed("dnsdist");

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

const SPOOFED = "192.0.2.7";

describe.skipIf(!HAVE_DNSDIST && !CI)("HTTP/2 client against dnsdist's DoH (h2o)", () => {
  let pki: TestPki;
  let dir: string;
  let child: Deno.ChildProcess | undefined;
  let port: number;
  let h2: H2ClientTransport;

  beforeAll(async () => {
    if (!HAVE_DNSDIST) {
      throw new Error("dnsdist is not installed (package dnsdist); CI=true requires it");
    }
    pki = await testPki();
    dir = await Deno.makeTempDir({ prefix: "dotbridge-dnsdist-" });
    await Deno.writeTextFile(`${dir}/chain.pem`, pki.server.chainPem);
    await Deno.writeTextFile(`${dir}/key.pem`, pki.server.keyPem);
    port = freePort();
    await Deno.writeTextFile(
      `${dir}/dnsdist.lua`,
      [
        'setSecurityPollSuffix("")',
        `setLocal("127.0.0.1:${freePort()}")`,
        `addDOHLocal("127.0.0.1:${port}", "${dir}/chain.pem", "${dir}/key.pem", "/dns-query", {})`,
        `addAction(AllRule(), SpoofAction("${SPOOFED}"))`,
        "",
      ].join("\n"),
    );
    child = new Deno.Command("dnsdist", {
      args: ["--supervised", "--disable-syslog", "-C", `${dir}/dnsdist.lua`],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Ready when a TCP connection to the DoH port is accepted.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch {
        if (Date.now() > deadline) throw new Error("dnsdist did not start listening");
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
  });

  afterAll(async () => {
    h2?.close();
    if (child) {
      try {
        child.kill("SIGKILL");
      } catch { /* gone */ }
      await child.stderr.cancel();
      await child.status;
    }
    if (dir) await Deno.remove(dir, { recursive: true });
  });

  function query(name: string): Uint8Array<ArrayBuffer> {
    const bytes = dnsPacket.encode({
      type: "query",
      id: 0,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: "A", name, class: "IN" }],
    });
    return new Uint8Array(bytes);
  }

  function check(body: Uint8Array, name: string): void {
    const answer = dnsPacket.decode(Buffer.from(body));
    expect(answer.questions?.[0]?.name).toBe(name);
    expect(answer.answers?.map((a) => "data" in a ? a.data : undefined)).toEqual([SPOOFED]);
  }

  it("answers 600 concurrent POSTs and GETs, then more after a pause, on reused connections", async () => {
    for (const round of [0, 1]) {
      const names = Array.from({ length: 300 }, (_, i) => `n${i}.r${round}.interop.test`);
      const results = await Promise.all(names.flatMap((name) => [
        h2.transport({
          method: "POST",
          url: new URL(`https://localhost:${port}/dns-query`),
          body: query(name),
          signal: AbortSignal.timeout(10_000),
          maxBodySize: 65_535,
        }).then((res) => ({ name, res })),
        h2.transport({
          method: "GET",
          url: new URL(
            `https://localhost:${port}/dns-query?dns=${
              query(name).toBase64({ alphabet: "base64url", omitPadding: true })
            }`,
          ),
          signal: AbortSignal.timeout(10_000),
          maxBodySize: 65_535,
        }).then((res) => ({ name, res })),
      ]));
      for (const { name, res } of results) {
        expect(res.status).toBe(200);
        expect(res.contentType).toBe("application/dns-message");
        check(res.body, name);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  });

  it("hands back dnsdist's 400 for a body that is not DNS", async () => {
    const res = await h2.transport({
      method: "POST",
      url: new URL(`https://localhost:${port}/dns-query`),
      body: Uint8Array.of(1, 2, 3),
      signal: AbortSignal.timeout(10_000),
      maxBodySize: 65_535,
    });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.body.length).toBe(0);
  });
});
