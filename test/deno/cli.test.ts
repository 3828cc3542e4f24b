import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OPTIONS } from "../../src/config/options.ts";
import { aRecords, buildQuery, connectDot, type DotClient, idOf } from "../support/dot_client.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
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
  it("--help exits 0 and lists every option with its environment variable", async () => {
    const r = await runCli(["--help"]);
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
    expect(cli.stderr()).toContain("SIGTERM: draining");
    await c.closed;
    expect(c.isClosed).toBe(true);
  });
});
