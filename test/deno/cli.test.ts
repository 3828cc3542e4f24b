import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPTIONS } from "../../src/config/options.ts";
import { aRecords, buildQuery, connectDot, type DotClient, idOf } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { createCertificateAuthority, issueCertificate } from "../../src/pki/mod.ts";
import { octetFor } from "../support/zone.ts";
import { freePort } from "../support/ports.ts";

const MAIN = new URL("../../src/deno/main.ts", import.meta.url).pathname;
const RUN_LIMIT_MS = 20_000;
const decoder = new TextDecoder();

/** The child's environment: ours, minus any DOTBRIDGE_* settings (empty values are ignored). */
function childEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = { NO_COLOR: "1" };
  for (const key of Object.keys(Deno.env.toObject())) {
    if (key.startsWith("DOTBRIDGE_")) env[key] = "";
  }
  return { ...env, ...extra };
}

function command(args: string[], env: Record<string, string> = {}): Deno.Command {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    env: childEnv(env),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(RUN_LIMIT_MS),
  });
}

/** Runs the CLI to completion. */
async function runCli(args: string[], env: Record<string, string> = {}) {
  const out = await command(args, env).output();
  return { code: out.code, stdout: decoder.decode(out.stdout), stderr: decoder.decode(out.stderr) };
}

/** What the start banner tells the operator. */
interface Banner {
  lines: string[];
  port: number;
  caPath?: string;
  pin: string;
}

/** A running CLI process whose stdout and stderr are read as they come. */
interface RunningCli {
  child: Deno.ChildProcess;
  /** Resolves once the banner (through the `or: kdig` line) is printed; rejects if it exits. */
  banner: Promise<Banner>;
  stdout(): string;
  stderr(): string;
}

async function pump(stream: ReadableStream<Uint8Array>, sink: (text: string) => void) {
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) sink(chunk);
}

function startCli(args: string[]): RunningCli {
  const child = command(args).spawn();
  let out = "";
  let err = "";
  const outDone = pump(child.stdout, (t) => out += t);
  const errDone = pump(child.stderr, (t) => err += t);
  const banner = (async () => {
    for (;;) {
      const lines = out.split("\n");
      const last = lines.findIndex((l) => l.trim().startsWith("or: kdig"));
      if (last >= 0) {
        const head = /DNS-over-TLS on (?:\[[^\]]+\]|[^\s:]+):(\d+) /.exec(lines[0]);
        const ca = /trust this CA: (\S+)/.exec(out);
        const pin = /SPKI pin \(sha256\): (\S+)/.exec(out);
        if (!head || !pin) throw new Error(`unexpected banner:\n${out}`);
        return {
          lines: lines.slice(0, last + 1),
          port: Number(head[1]),
          caPath: ca?.[1],
          pin: pin[1],
        };
      }
      const exited = await Promise.race([
        child.status.then(() => true),
        new Promise<false>((r) => setTimeout(() => r(false), 25)),
      ]);
      if (exited) {
        await Promise.all([outDone, errDone]);
        if (!out.includes("or: kdig")) {
          throw new Error(`dotbridge exited before its banner; stderr:\n${err}\nstdout:\n${out}`);
        }
      }
    }
  })();
  banner.catch(() => {});
  return { child, banner, stdout: () => out, stderr: () => err };
}

async function stopCli(cli: RunningCli): Promise<Deno.CommandStatus> {
  try {
    cli.child.kill("SIGKILL");
  } catch { /* already exited */ }
  return await cli.child.status;
}

async function run(cmd: string, args: string[]): Promise<Uint8Array> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (out.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${decoder.decode(out.stderr)}`);
  return out.stdout;
}

/** The leaf's SPKI pin as openssl computes it (RFC 7858 §4.2). */
async function opensslPin(certFile: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "dotbridge-pin-" });
  try {
    await Deno.writeFile(
      `${dir}/pub.pem`,
      await run("openssl", ["x509", "-pubkey", "-noout", "-in", certFile]),
    );
    await Deno.writeFile(
      `${dir}/pub.der`,
      await run("openssl", ["pkey", "-pubin", "-in", `${dir}/pub.pem`, "-outform", "der"]),
    );
    const digest = await run("openssl", ["dgst", "-sha256", "-binary", `${dir}/pub.der`]);
    return digest.toBase64();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

let pki: TestPki;
let upstream: LocalDohUpstream;
let tmp: string;
let upstreamCa: string;
const running: RunningCli[] = [];
const clients: DotClient[] = [];

beforeAll(async () => {
  pki = await testPki();
  upstream = await startDohUpstream(pki);
  tmp = await Deno.makeTempDir({ prefix: "dotbridge-cli-" });
  upstreamCa = `${tmp}/upstream-ca.pem`;
  await Deno.writeTextFile(upstreamCa, pki.ca.certPem);
});

afterAll(async () => {
  for (const c of clients) c.close();
  for (const cli of running) await stopCli(cli);
  await upstream?.close();
  if (tmp) await Deno.remove(tmp, { recursive: true });
});

describe("command line: deno run src/deno/main.ts", () => {
  it("--version exits 0 naming the version from deno.json", async () => {
    const version = JSON.parse(
      await Deno.readTextFile(new URL("../../deno.json", import.meta.url)),
    ).version;
    const r = await runCli(["--version"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^dotbridge ${version.replaceAll(".", "\\.")} \\(Deno `));
  });

  it("--help=all exits 0 and lists every option with its environment variable", async () => {
    const r = await runCli(["--help=all"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^Usage: /);
    for (const o of OPTIONS) {
      expect(r.stdout).toContain(`--${o.name}`);
      expect(r.stdout).toContain(`DOTBRIDGE_${o.name.toUpperCase().replaceAll("-", "_")}`);
    }
  });

  const bad: { what: string; args: string[]; env?: Record<string, string>; key: string }[] = [
    { what: "a bad --listen", args: ["--listen", "bad"], key: "--listen" },
    {
      what: "a missing certificate file",
      args: [
        "--cert",
        "/nonexistent/dotbridge/cert.pem",
        "--key",
        "/nonexistent/dotbridge/key.pem",
      ],
      key: "--cert",
    },
    { what: "an ftp:// upstream", args: ["--upstream", "ftp://x"], key: "--upstream" },
    { what: "an unknown option", args: ["--no-such-option", "1"], key: "--no-such-option" },
    {
      what: "DOTBRIDGE_LISTEN=bad",
      args: [],
      env: { DOTBRIDGE_LISTEN: "bad" },
      key: "DOTBRIDGE_LISTEN",
    },
  ];

  it.each(bad)("$what exits 2 with one stderr line naming $key", async ({ args, env, key }) => {
    const r = await runCli(args, env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0].startsWith(`dotbridge: ${key}: `)).toBe(true);
  });

  it("prints the configuration errors docs/configuration.md shows, to the letter", async () => {
    const docs = await Deno.readTextFile(new URL("../../docs/configuration.md", import.meta.url));
    const shown = docs.split("\n").filter((l) => /^dotbridge: (--cert|DOTBRIDGE_LISTEN): /.test(l));
    expect(shown).toHaveLength(2);
    const cert = await runCli(["--cert", "/etc/ssl/nope.pem", "--key", "/etc/ssl/nope.pem"]);
    const listen = await runCli([], { DOTBRIDGE_LISTEN: "1.2.3:99999" });
    expect([cert.stderr.trimEnd(), listen.stderr.trimEnd()]).toEqual(shown);
    expect([cert.code, listen.code]).toEqual([2, 2]);
  });

  it("a --metrics-listen port in use exits 2 naming it, after releasing the DoT port", async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const takenPort = (taken.addr as Deno.NetAddr).port;
      const dotPort = freePort();
      const r = await runCli([
        ...["--listen", `127.0.0.1:${dotPort}`, "--http-listen", "off"],
        ...["--metrics-listen", `127.0.0.1:${takenPort}`],
        ...["--state-dir", `${tmp}/state-metrics-taken`, "--upstream", upstream.url],
      ]);
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.trimEnd().split("\n")).toEqual([
        `dotbridge: --metrics-listen: cannot listen on 127.0.0.1:${takenPort}: ` +
        "address already in use",
      ]);
      Deno.listen({ hostname: "127.0.0.1", port: dotPort }).close();
    } finally {
      taken.close();
    }
  });

  it("trusts every --upstream-ca file given, not only the last", async () => {
    const otherCa = await createCertificateAuthority({ commonName: "second test CA" });
    const other = await startDohUpstream({
      ca: otherCa,
      server: await issueCertificate(otherCa, { dnsNames: ["localhost"] }),
    });
    try {
      const secondCa = `${tmp}/second-ca.pem`;
      await Deno.writeTextFile(secondCa, otherCa.certPem);
      const cli = startCli([
        ...["--listen", "127.0.0.1:0", "--http-listen", "off", "--state-dir", `${tmp}/state-ca`],
        ...["--upstream", upstream.url, "--upstream", other.url],
        ...["--upstream-strategy", "round-robin", "--no-cache"],
        ...["--upstream-ca", upstreamCa, "--upstream-ca", secondCa],
      ]);
      running.push(cli);
      const banner = await cli.banner;
      const c = await connectDot({
        port: banner.port,
        caCerts: [await Deno.readTextFile(banner.caPath!)],
      });
      clients.push(c);
      for (let id = 1; id <= 4; id++) {
        await c.send(buildQuery(`ca-${id}.example.test`, { id }));
        expect(aRecords(await c.waitFor(id))).toEqual([
          `192.0.2.${octetFor(`ca-${id}.example.test`)}`,
        ]);
      }
      // Round-robin: both upstreams answered, each through its own CA.
      expect(upstream.requests.length).toBeGreaterThan(0);
      expect(other.requests.length).toBeGreaterThan(0);
    } finally {
      await other.close();
    }
  });

  it("names an operator certificate's DNS names in the ready event and the banner", async () => {
    const cert = `${tmp}/op-chain.pem`;
    const key = `${tmp}/op-key.pem`;
    await Deno.writeTextFile(cert, pki.server.chainPem);
    await Deno.writeTextFile(key, pki.server.keyPem);
    const cli = startCli([
      ...["--listen", "127.0.0.1:0", "--http-listen", "off", "--cert", cert, "--key", key],
      ...["--upstream", upstream.url, "--upstream-ca", upstreamCa, "--log-format", "json"],
    ]);
    running.push(cli);
    const ready = async () => {
      for (let i = 0; i < 300; i++) {
        const line = cli.stderr().split("\n").find((l) => l.includes('"msg":"ready"'));
        if (line) return JSON.parse(line) as { names?: string };
        await new Promise((r) => setTimeout(r, 20));
      }
      throw new Error(`no ready event; stderr:\n${cli.stderr()}`);
    };
    expect((await ready()).names).toBe("localhost");
    const banner = cli.stderr().split("\n").find((l) => l.includes('"msg":"banner"'))!;
    expect(banner).toContain("tls-hostname=localhost");
    await stopCli(cli);
  });

  it("with --log-format json, every line is a JSON event: start, banner, ready, reload, drain, stop", async () => {
    const cli = startCli([
      ...["--listen", "127.0.0.1:0", "--http-listen", "off", "--state-dir", `${tmp}/state-json`],
      ...["--upstream", upstream.url, "--upstream-ca", upstreamCa, "--log-format", "json"],
    ]);
    running.push(cli);
    const events = () =>
      cli.stderr().split("\n").filter((l) => l.trim()).map((l) =>
        JSON.parse(l) as {
          msg: string;
          [k: string]: unknown;
        }
      );
    for (let i = 0; i < 300 && !events().some((e) => e.msg === "ready"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(cli.stdout()).toBe(""); // no plain-text banner
    const ready = events().find((e) => e.msg === "ready")!;
    expect(ready.dot).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(events().find((e) => e.msg === "banner")?.text).toContain("DNS-over-TLS on");
    cli.child.kill("SIGHUP");
    for (let i = 0; i < 100 && !events().some((e) => e.msg === "reload"); i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(events().find((e) => e.msg === "reload")).toMatchObject({
      signal: "SIGHUP",
      certificate: "development (kept)",
    });
    cli.child.kill("SIGTERM");
    expect((await cli.child.status).code).toBe(0);
    expect(events().map((e) => e.msg)).toEqual([
      "start",
      "banner",
      "ready",
      "reload",
      "drain",
      "stop",
    ]);
  });

  it("accepts --listen 127.0.0.1:0 and prints the port it bound", async () => {
    const cli = startCli([
      "--listen",
      "127.0.0.1:0",
      "--state-dir",
      `${tmp}/state-port0`,
      "--upstream",
      upstream.url,
      "--upstream-ca",
      upstreamCa,
      "--http-listen",
      "off",
    ]);
    running.push(cli);
    const banner = await cli.banner;
    expect(banner.port).toBeGreaterThan(0);
    const c = await connectDot({
      port: banner.port,
      caCerts: [await Deno.readTextFile(banner.caPath!)],
    });
    clients.push(c);
    await c.send(buildQuery("port-zero.example.test", { id: 9 }));
    expect(aRecords(await c.waitFor(9))).toEqual([`192.0.2.${octetFor("port-zero.example.test")}`]);
  });

  it("starts with a dev certificate, prints the CA path and pin, answers, and drains on SIGTERM", async () => {
    const stateDir = `${tmp}/state`;
    const cli = startCli([
      "--listen",
      `127.0.0.1:${freePort()}`,
      "--state-dir",
      stateDir,
      "--upstream",
      upstream.url,
      "--upstream-ca",
      upstreamCa,
      "--shutdown-grace",
      "5s",
      "--http-listen",
      "off",
    ]);
    running.push(cli);
    const banner = await cli.banner;

    expect(banner.caPath).toBe(`${stateDir}/dev-ca.pem`);
    expect(banner.pin).toBe(await opensslPin(`${stateDir}/dev-cert.pem`));
    expect(banner.pin).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(banner.lines.join("\n")).toContain(`+tls-pin=${banner.pin}`);

    const devCa = await Deno.readTextFile(banner.caPath!);
    const c = await connectDot({ port: banner.port, caCerts: [devCa] });
    clients.push(c);
    await c.send(buildQuery("through-cli.example.test", { id: 0x0c11 }));
    const answer = await c.waitFor(0x0c11);
    expect(idOf(answer)).toBe(0x0c11);
    expect(aRecords(answer)).toEqual([`192.0.2.${octetFor("through-cli.example.test")}`]);

    // A slow query in flight, then SIGTERM: the answer still goes out, then a clean exit.
    const slow = "delay-700.example.test";
    await c.send(buildQuery(slow, { id: 0x0d7a }));
    for (let i = 0; i < 300 && !upstream.requests.some((r) => r.name === slow); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(upstream.requests.some((r) => r.name === slow)).toBe(true);
    cli.child.kill("SIGTERM");
    const drained = await c.waitFor(0x0d7a, 5_000);
    expect(aRecords(drained)).toEqual([`192.0.2.${octetFor(slow)}`]);
    const status = await cli.child.status;
    expect(status.code).toBe(0);
    const events = cli.stderr().split("\n").filter((l) => / msg=(start|ready|drain|stop) /.test(l));
    expect(events.map((l) => / msg=(\w+) /.exec(l)![1])).toEqual([
      "start",
      "ready",
      "drain",
      "stop",
    ]);
    expect(events[1]).toContain(`dot=127.0.0.1:${banner.port}`);
    expect(events[1]).toContain(banner.pin); // spki_pin="..." (logfmt quotes its "=")
    expect(events[2]).toContain("signal=SIGTERM grace_ms=5000");
    await c.closed;
    expect(c.isClosed).toBe(true);
  });
});
