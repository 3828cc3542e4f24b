/**
 * A bridge process (`deno run src/deno/main.ts`) reaching Redis over TLS (`rediss://`, the
 * test CA trusted through DENO_CERT) and an in-process bridge reaching the same redis-server on
 * its plain port: an answer the process fetched is served by the other with the upstream
 * stopped.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  aRecords,
  buildQuery,
  connectDot,
  rcodeOf,
  startTestBridge,
  type TestBridge,
} from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { HAVE_REDIS, requireRedis, startRedis, type TestRedis } from "../support/redis_server.ts";
import { octetFor } from "../support/zone.ts";

const MAIN = new URL("../../src/deno/main.ts", import.meta.url).pathname;

describe.skipIf(!HAVE_REDIS && Deno.env.get("CI") !== "true")(
  "a bridge process on rediss://",
  () => {
    let pki: TestPki;
    let dir: string;
    let upstream: LocalDohUpstream;
    let redis: TestRedis;
    let child: Deno.ChildProcess | undefined;
    let stderr = "";
    let local: TestBridge;

    beforeAll(async () => {
      requireRedis();
      pki = await testPki();
      dir = await Deno.makeTempDir({ prefix: "dotbridge-rediss-" });
      const files = {
        certFile: `${dir}/chain.pem`,
        keyFile: `${dir}/key.pem`,
        caFile: `${dir}/ca.pem`,
      };
      await Deno.writeTextFile(files.certFile, pki.server.chainPem);
      await Deno.writeTextFile(files.keyFile, pki.server.keyPem);
      await Deno.writeTextFile(files.caFile, pki.ca.certPem);
      upstream = await startDohUpstream(pki);
      redis = await startRedis(files);
      // A generous budget: this test is about sharing over TLS, not timing, and runs beside others.
      local = await startTestBridge(pki, upstream, [
        "--cache-redis",
        redis.url,
        "--cache-redis-budget",
        "1s",
      ]);
    });

    afterAll(async () => {
      try {
        child?.kill("SIGKILL");
        await child?.status;
      } catch {
        // already gone
      }
      await local?.close();
      await upstream?.close();
      await redis?.kill();
      if (dir) await Deno.remove(dir, { recursive: true });
    });

    it("shares an answer fetched by the process with the in-process bridge", async () => {
      const port = (() => {
        const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
        const p = (l.addr as Deno.NetAddr).port;
        l.close();
        return p;
      })();
      child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "--listen",
          `127.0.0.1:${port}`,
          "--http-listen",
          "off",
          "--cert",
          `${dir}/chain.pem`,
          "--key",
          `${dir}/key.pem`,
          "--upstream",
          upstream.url,
          "--upstream-ca",
          `${dir}/ca.pem`,
          "--cache-redis",
          redis.tlsUrl!,
        ],
        env: { NO_COLOR: "1", DENO_CERT: `${dir}/ca.pem` },
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      (async () => {
        for await (const t of child.stderr.pipeThrough(new TextDecoderStream())) stderr += t;
      })().catch(() => {});
      const deadline = Date.now() + 20_000;
      while (!stderr.includes("cache redis up")) {
        if (Date.now() > deadline) throw new Error(`no "cache redis up" in:\n${stderr}`);
        await new Promise((r) => setTimeout(r, 50));
      }
      const name = "over-tls.example.test";
      const viaProcess = await connectDot({ port, caCerts: [pki.ca.certPem] });
      try {
        await viaProcess.send(buildQuery(name, { id: 0x1111 }));
        expect(rcodeOf(await viaProcess.waitFor(0x1111))).toBe(0);
      } finally {
        viaProcess.close();
      }
      const key = `dotbridge:v2::1:1:0::${name}`;
      const until = Date.now() + 5_000;
      while (!new TextDecoder().decode(await redis.command("EXISTS", key)).startsWith(":1")) {
        if (Date.now() > until) throw new Error("the process did not write to Redis");
        await new Promise((r) => setTimeout(r, 20));
      }
      upstream.mode = "http-500";
      try {
        const c = await local.connect();
        try {
          await c.send(buildQuery(name, { id: 0x2222 }));
          const answer = await c.waitFor(0x2222);
          expect(rcodeOf(answer)).toBe(0);
          expect(aRecords(answer)).toEqual([`192.0.2.${octetFor(name)}`]);
        } finally {
          c.close();
        }
      } finally {
        upstream.mode = "ok";
      }
      expect(stderr).not.toContain("cache redis down");
    });
  },
);
