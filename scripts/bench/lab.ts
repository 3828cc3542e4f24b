/**
 * The benchmark's cast on 127.0.0.1: the shared upstream (knotd behind dnsdist DoH with a
 * packet cache), the bridge under test, and dnsdist as the peer bridge. Each `start*` waits
 * until the program answers a real, certificate-verified query.
 *
 * @module
 */
import { knotConf, peerLua, upstreamLua, writeZoneFiles } from "./configs.ts";
import { type BenchPki, type CertKind, writeBenchPki } from "./pki.ts";
import { dohQuery, dotQuery, udpQuery, waitUntilAnswering } from "./probe.ts";
import { capture, freePort, type Proc, type Supervisor, waitForTcp } from "./procs.ts";

/**
 * The `deno run` flags the bridge ships with (`deno task serve`, the systemd unit, the Docker
 * image): the bench measures the bridge as users run it.
 */
export const SHIPPED_RUNTIME_FLAGS = [
  "--v8-flags=--no-concurrent-array-buffer-sweeping,--heap-growing-percent=20",
];

/**
 * A started DoT server: its process and port, its DoH port when its DoH face is on, and its
 * plain DNS port (UDP and TCP) when that face is on.
 */
export interface Target {
  proc: Proc;
  port: number;
  dohPort?: number;
  dnsPort?: number;
}

/** Which faces a target serves besides DoT. */
export interface Faces {
  /** Also serve DoH (HTTPS, the bench certificate, `/dns-query`) on a port of its own. */
  doh?: boolean;
  /** How often the DoT face is probed until it answers, ms. Default 200. */
  readyPollMs?: number;
  /** Also serve plain DNS (Do53, UDP and TCP) on a port of its own. */
  dns?: boolean;
}

/** Options the harness passes to the bridge, read from its `--help`. */
export interface BridgeFeatures {
  /** Turns off the HTTP (DoH) face when there is one: only the DoT face is measured. */
  httpOff: string[];
  /** Makes it a pure bridge: turns off its cache when that is on by default. */
  cacheOff: string[];
  /** Turns on its answer cache (100 000 entries where sized); undefined while it has none. */
  cacheOn?: string[];
  /** Lifts per-client connection limits (the scale run opens everything from 127.0.0.1). */
  unlimitedConnections: string[];
  /** For every run: turn off per-client rate limiting if the bridge has it. */
  always: string[];
  /** The bridge has `--threads N`. */
  threads: boolean;
  /** Turns on the `Deno.listenTls` DoT server; undefined when there is no such choice. */
  dotServerNative?: string[];
  /**
   * The bridge has a plain DNS face (`--dns-listen`); with it, the options that turn its UDP
   * response rate limiting off (all the bench's load comes from one address).
   */
  dnsListen?: { rrlOff: string[] };
}

/**
 * Reads the bridge's `--help` for the options the benchmark needs to set: `--http-listen`,
 * `--cache` / `--no-cache` / `--cache-size`, `--max-connections-per-ip`, `--rate-limit`,
 * `--threads`, `--dot-server native`.
 */
export function detectBridgeFeatures(help: string): BridgeFeatures {
  const has = (option: string) => new RegExp(`^\\s+${option}(\\s|$)`, "m").test(help);
  /** The option's line and its description, up to the next option. */
  const text = (option: string) =>
    new RegExp(`^\\s+${option}(\\s[^\\n]*)?\\n((?!\\s+--)[^\\n]*\\n?)*`, "m").exec(help)?.[0] ?? "";
  const size = has("--cache-size") ? ["--cache-size", "100000"] : [];
  let cacheOn: string[] | undefined;
  if (has("--cache")) cacheOn = ["--cache", ...size];
  else if (size.length > 0) cacheOn = size;
  return {
    httpOff: has("--http-listen") ? ["--http-listen", "off"] : [],
    cacheOff: cacheOn && help.includes("--no-cache") ? ["--no-cache"] : [],
    cacheOn,
    unlimitedConnections: has("--max-connections-per-ip") ? ["--max-connections-per-ip", "0"] : [],
    always: has("--rate-limit") ? ["--rate-limit", "0"] : [],
    threads: has("--threads"),
    dotServerNative: /\bnative\b/.test(text("--dot-server"))
      ? ["--dot-server", "native"]
      : undefined,
    dnsListen: has("--dns-listen")
      ? { rrlOff: has("--dns-rrl") ? ["--dns-rrl", "0"] : [] }
      : undefined,
  };
}

/**
 * The bridge's help text listing every option: `--help=all` (plain `--help` shows a few since
 * the options were grouped), or `--help` from an older bridge that has no `--help=all`.
 */
export async function readBridgeHelp(repo: string): Promise<string> {
  const run = (arg: string) =>
    capture(Deno.execPath(), ["run", "-A", "src/deno/main.ts", arg], repo);
  const all = await run("--help=all");
  return /^\s+--listen\s/m.test(all) ? all : await run("--help");
}

/** Settings of a {@linkcode Lab}. */
export interface LabOptions {
  /** Repository root (where `src/deno/main.ts` and `deno.json` are). */
  repo: string;
  /** Work directory for certificates, configs and data. */
  work: string;
  /** Names in the test zone. */
  names: number;
  /** Extra arguments for every bridge started. */
  bridgeArgs: string[];
  /** V8 flags for every bridge started, after the shipped ones (e.g. `--max-semi-space-size=8`). */
  bridgeV8Flags?: string[];
  /** The certificate every server presents (default `ecdsa`). */
  cert?: CertKind;
}

/** The servers of one benchmark run; all processes belong to the given supervisor. */
export class Lab {
  readonly sup: Supervisor;
  readonly options: LabOptions;
  readonly pki: BenchPki;
  readonly names: string[];
  readonly queriesPath: string;
  readonly features: BridgeFeatures;
  /** The bridge's `--help` text. */
  readonly bridgeHelp: string;
  #upstream?: { dnsdist: Proc; knot: Proc; port: number; dnsPort: number };

  private constructor(
    sup: Supervisor,
    options: LabOptions,
    pki: BenchPki,
    zone: { names: string[]; queriesPath: string },
    bridgeHelp: string,
  ) {
    this.sup = sup;
    this.options = options;
    this.pki = pki;
    this.names = zone.names;
    this.queriesPath = zone.queriesPath;
    this.bridgeHelp = bridgeHelp;
    this.features = detectBridgeFeatures(bridgeHelp);
  }

  /** Writes the PKI and zone files and reads the bridge's help ({@linkcode readBridgeHelp}). */
  static async create(sup: Supervisor, options: LabOptions): Promise<Lab> {
    // A folder of their own: the bridge watches its certificate's folder, and h2load's log
    // files (written in the work directory during the DoH runs) would wake it on every write.
    const pkiDir = `${options.work}/pki`;
    Deno.mkdirSync(pkiDir, { recursive: true });
    const pki = await writeBenchPki(pkiDir, options.cert);
    const zone = writeZoneFiles(options.work, options.names);
    const help = await readBridgeHelp(options.repo);
    return new Lab(sup, options, pki, zone, help);
  }

  get #tls() {
    return { certPath: this.pki.certPath, keyPath: this.pki.keyPath, caPath: this.pki.caPath };
  }

  /** The upstream's processes (dnsdist, knotd), for CPU accounting. */
  get upstreamProcs(): Proc[] {
    if (!this.#upstream) throw new Error("upstream not started");
    return [this.#upstream.dnsdist, this.#upstream.knot];
  }

  /** The upstream's dnsdist process. */
  get upstreamProc(): Proc {
    return this.upstreamProcs[0];
  }

  /** The upstream's DoH port. */
  get upstreamPort(): number {
    if (!this.#upstream) throw new Error("upstream not started");
    return this.#upstream.port;
  }

  /** The upstream's plain DNS port (dnsdist's Do53 face, the same packet cache as its DoH). */
  get upstreamDnsPort(): number {
    if (!this.#upstream) throw new Error("upstream not started");
    return this.#upstream.dnsPort;
  }

  /**
   * Starts knotd and the dnsdist DoH server in front of it (with a plain DNS face too, for the
   * plain DNS rows' reference).
   */
  async startUpstream(): Promise<{ knotPort: number; dohPort: number; dnsPort: number }> {
    const work = this.options.work;
    Deno.mkdirSync(`${work}/knot-run`, { recursive: true });
    Deno.mkdirSync(`${work}/knot-db`, { recursive: true });
    const knotPort = await freePort(true);
    Deno.writeTextFileSync(`${work}/knot.conf`, knotConf(work, knotPort));
    const knot = this.sup.spawn("knotd", "knotd", ["-c", `${work}/knot.conf`]);
    await waitForTcp(knotPort, 10_000, knot);
    const port = await freePort();
    const dnsPort = await freePort(true);
    Deno.writeTextFileSync(
      `${work}/upstream.lua`,
      upstreamLua(this.#tls, port, knotPort, dnsPort),
    );
    const dnsdist = this.#dnsdist("upstream-dnsdist", `${work}/upstream.lua`);
    await waitUntilAnswering(
      "upstream dnsdist (DoH)",
      () => dohQuery(port, this.pki.caPem, this.names[0]),
      15_000,
      dnsdist,
    );
    this.#upstream = { dnsdist, knot, port, dnsPort };
    return { knotPort, dohPort: port, dnsPort };
  }

  /**
   * Starts the runtime's floor for plain DNS: `bare_udp_server.ts`, a Deno UDP loop that flips
   * each query's header and sends it back (no DNS work), run with the bridge's V8 flags.
   */
  async startBareUdp(): Promise<Target> {
    const port = await freePort(true);
    const proc = this.sup.spawn("bare-udp", Deno.execPath(), [
      "run",
      ...SHIPPED_RUNTIME_FLAGS,
      "-A",
      "scripts/bench/bare_udp_server.ts",
      String(port),
    ], { cwd: this.options.repo });
    await waitUntilAnswering(
      "bare UDP loop",
      async () => {
        const a = await udpQuery(port, this.names[0]);
        // It answers with the query itself (QR set): dress it as an answer for the probe.
        const dressed = a.slice();
        dressed[7] = 1;
        return dressed;
      },
      15_000,
      proc,
    );
    return { proc, port, dnsPort: port };
  }

  /**
   * Starts the bridge against the upstream.
   *
   * @param extra bridge options (e.g. the cache, idle timeout, threads)
   * @param runtimeFlags `deno run` flags (e.g. `--cpu-prof`)
   * @param faces with `doh`, its DoH face listens too (else `--http-listen off` when it has one)
   */
  async startBridge(
    extra: string[] = [],
    runtimeFlags: string[] = [],
    faces: Faces = {},
  ): Promise<Target> {
    const port = await freePort();
    const dohPort = faces.doh ? await freePort() : undefined;
    if (dohPort !== undefined && this.features.httpOff.length === 0) {
      throw new Error("the bridge has no --http-listen option (no DoH face)");
    }
    const dnsPort = faces.dns ? await freePort(true) : undefined;
    if (dnsPort !== undefined && !this.features.dnsListen) {
      throw new Error("the bridge has no --dns-listen option (no plain DNS face)");
    }
    const args = [
      "run",
      ...SHIPPED_RUNTIME_FLAGS,
      ...(this.options.bridgeV8Flags?.length
        ? [`--v8-flags=${this.options.bridgeV8Flags.join(",")}`]
        : []),
      ...runtimeFlags,
      "-A",
      "src/deno/main.ts",
      "--listen",
      `127.0.0.1:${port}`,
      "--cert",
      this.pki.certPath,
      "--key",
      this.pki.keyPath,
      "--upstream",
      `https://localhost:${this.upstreamPort}/dns-query`,
      "--upstream-ca",
      this.pki.caPath,
      "--log-level",
      "warn",
      ...(dohPort === undefined
        ? this.features.httpOff
        : ["--http-listen", `127.0.0.1:${dohPort}`]),
      ...(dnsPort === undefined
        ? []
        : ["--dns-listen", `127.0.0.1:${dnsPort}`, ...this.features.dnsListen!.rrlOff]),
      ...this.features.always,
      ...extra,
      ...this.options.bridgeArgs,
    ];
    const proc = this.sup.spawn("bridge", Deno.execPath(), args, { cwd: this.options.repo });
    await waitUntilAnswering(
      "bridge",
      () => dotQuery(port, this.pki.caPem, this.names[1]),
      30_000,
      proc,
      faces.readyPollMs,
    );
    if (dohPort !== undefined) await this.#waitForDoh("bridge (DoH face)", dohPort, proc);
    if (dnsPort !== undefined) await this.#waitForDns("bridge (plain DNS face)", dnsPort, proc);
    return { proc, port, dohPort, dnsPort };
  }

  /**
   * Starts dnsdist as the peer DoT→DoH bridge, with a packet cache when `cache` is set and a
   * DoH frontend (`addDOHLocal`) too with `faces.doh`.
   */
  async startPeer(cache: boolean, faces: Faces = {}): Promise<Target> {
    const port = await freePort();
    const dohPort = faces.doh ? await freePort() : undefined;
    const dnsPort = faces.dns ? await freePort(true) : undefined;
    const name = `peer${cache ? "-cached" : ""}${faces.doh ? "-doh" : ""}${
      faces.dns ? "-dns" : ""
    }`;
    const path = `${this.options.work}/${name}.lua`;
    Deno.writeTextFileSync(
      path,
      peerLua(this.#tls, port, this.upstreamPort, cache, dohPort, dnsPort),
    );
    const proc = this.#dnsdist(name, path);
    await waitUntilAnswering(
      "dnsdist peer",
      () => dotQuery(port, this.pki.caPem, this.names[1]),
      15_000,
      proc,
    );
    if (dohPort !== undefined) await this.#waitForDoh("dnsdist peer (DoH)", dohPort, proc);
    if (dnsPort !== undefined) await this.#waitForDns("dnsdist peer (Do53)", dnsPort, proc);
    return { proc, port, dohPort, dnsPort };
  }

  #waitForDns(what: string, port: number, proc: Proc): Promise<void> {
    return waitUntilAnswering(what, () => udpQuery(port, this.names[1]), 15_000, proc);
  }

  #waitForDoh(what: string, port: number, proc: Proc): Promise<void> {
    return waitUntilAnswering(
      what,
      () => dohQuery(port, this.pki.caPem, this.names[1]),
      15_000,
      proc,
    );
  }

  #dnsdist(name: string, config: string): Proc {
    return this.sup.spawn(name, "dnsdist", ["--supervised", "--disable-syslog", "-C", config]);
  }
}
