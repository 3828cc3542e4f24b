/**
 * Runs the Worker locally in workerd through `wrangler dev` (the repo's `wrangler.toml`, vars
 * overridden with `--var`), and a plain-HTTP DoH upstream on loopback for it to query (the
 * Worker's `fetch` cannot be told to trust a private CA, but `http://` on loopback is allowed).
 *
 * wrangler is started in its own process group and stopped by group: SIGTERM, then SIGKILL
 * after a grace (it ignores SIGTERM in some states).
 *
 * @module
 */
import { answerFromZone } from "./zone.ts";
import { messageOf } from "../../src/errors/message_of.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
/**
 * The development configuration (tests, scripts, Worker tooling), and the wrangler that
 * `deno task dev:worker` runs: its `imports` entry pins it.
 */
const DEV_CONFIG = `${ROOT}test/deno.json`;
const WRANGLER: string = JSON.parse(Deno.readTextFileSync(DEV_CONFIG)).imports.wrangler;

/** What the plain upstream does with the next requests. */
export type PlainUpstreamMode = "ok" | "http-500";

/** A running plain-HTTP DoH upstream. */
export interface PlainDohUpstream {
  /** `http://127.0.0.1:<port>/dns-query` */
  readonly url: string;
  mode: PlainUpstreamMode;
  /** Requests received, in arrival order: method and the query's message ID. */
  readonly requests: { method: string; id: number }[];
  close(): Promise<void>;
}

/** Starts a DoH upstream over plain HTTP on 127.0.0.1, answering the test zone. */
export function startPlainDohUpstream(): PlainDohUpstream {
  const requests: PlainDohUpstream["requests"] = [];
  const state = { mode: "ok" as PlainUpstreamMode };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/dns-query") return new Response("not found", { status: 404 });
    const query = req.method === "GET"
      ? Uint8Array.fromBase64(url.searchParams.get("dns") ?? "", { alphabet: "base64url" })
      : new Uint8Array(await req.arrayBuffer());
    requests.push({ method: req.method, id: (query[0] << 8) | query[1] });
    if (state.mode === "http-500") return new Response("boom", { status: 500 });
    return new Response(answerFromZone(query).slice(), {
      headers: { "content-type": "application/dns-message" },
    });
  });
  return {
    url: `http://127.0.0.1:${server.addr.port}/dns-query`,
    requests,
    get mode() {
      return state.mode;
    },
    set mode(m: PlainUpstreamMode) {
      state.mode = m;
    },
    close: () => server.shutdown(),
  };
}

/** Options of {@linkcode startWorkerDev}. */
export interface WorkerDevOptions {
  /** Worker vars, passed as `--var KEY:VALUE` (they override `wrangler.toml`'s `[vars]`). */
  vars: Record<string, string>;
  /** A PEM file workerd should trust for outbound TLS (wrangler reads `NODE_EXTRA_CA_CERTS`). */
  caFile?: string;
  /** How long to wait for wrangler to serve `/health`. Default 60 000 ms. */
  startupMs?: number;
}

/** A running `wrangler dev`. */
export interface WorkerDev {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** Everything wrangler and workerd printed so far (stdout and stderr, ANSI codes removed). */
  output(): string;
  /**
   * Waits until the output matches `pattern` (log lines arrive a little after the responses),
   * and returns the output; throws after `ms` (default 5 000).
   */
  waitForOutput(pattern: RegExp, ms?: number): Promise<string>;
  /** True while the wrangler process is running. */
  running(): boolean;
  /** Stops wrangler and workerd (process group: SIGTERM, then SIGKILL after 3 s). */
  stop(): Promise<void>;
}

// deno-lint-ignore no-control-regex
const ANSI = /\x1b\[[0-9;]*m/g;

async function pump(stream: ReadableStream<Uint8Array>, sink: (text: string) => void) {
  try {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) sink(chunk);
  } catch {
    // the process went away mid-read
  }
}

function signalGroup(pid: number, signal: Deno.Signal): void {
  try {
    Deno.kill(-pid, signal);
  } catch {
    // already gone
  }
}

/**
 * Starts `wrangler dev --local` on 127.0.0.1 with an ephemeral port and waits until `/health`
 * answers (any status: a Worker with a bad config answers 500). Telemetry, the update check and
 * the `Request.cf` download are switched off, so it needs no network.
 *
 * @throws {Error} with wrangler's output if it exits or does not serve within `startupMs`
 */
export async function startWorkerDev(options: WorkerDevOptions): Promise<WorkerDev> {
  const persist = await Deno.makeTempDir({ prefix: "dotbridge-wrangler-" });
  const args = [
    "run",
    "-A",
    "--config",
    DEV_CONFIG,
    WRANGLER,
    "dev",
    "--config",
    `${ROOT}wrangler.toml`,
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    "0",
    "--inspector-port",
    "0",
    "--persist-to",
    persist,
    "--show-interactive-dev-session=false",
  ];
  for (const [key, value] of Object.entries(options.vars)) args.push("--var", `${key}:${value}`);
  const env: Record<string, string> = {
    CI: "true",
    NO_COLOR: "1",
    WRANGLER_SEND_METRICS: "false",
    WRANGLER_SEND_ERROR_REPORTS: "false",
    WRANGLER_HIDE_BANNER: "true",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: "false",
  };
  if (options.caFile) env.NODE_EXTRA_CA_CERTS = options.caFile;
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    detached: true, // its own process group, so workerd goes down with it
  }).spawn();

  let text = "";
  const sink = (chunk: string) => text += chunk.replace(ANSI, "");
  const pumps = Promise.all([pump(child.stdout, sink), pump(child.stderr, sink)]);
  let exited = false;
  const status = child.status.finally(() => exited = true);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    stopping ??= (async () => {
      if (!exited) {
        signalGroup(child.pid, "SIGTERM");
        const grace = new Promise<"late">((r) => setTimeout(() => r("late"), 3_000));
        if (await Promise.race([status, grace]) === "late") signalGroup(child.pid, "SIGKILL");
      }
      signalGroup(child.pid, "SIGKILL"); // workerd children that outlived wrangler
      await status;
      await pumps;
      await Deno.remove(persist, { recursive: true }).catch(() => {});
    })();

  const deadline = Date.now() + (options.startupMs ?? 60_000);
  try {
    let url: string | undefined;
    while (Date.now() < deadline) {
      if (exited) throw new Error("wrangler dev exited");
      url ??= /Ready on (http:\/\/127\.0\.0\.1:\d+)/.exec(text)?.[1];
      if (url) {
        const served = await fetch(`${url}/health`, { signal: AbortSignal.timeout(5_000) })
          .then((r) => r.body?.cancel().then(() => true) ?? true, () => false);
        if (served) {
          const waitForOutput = async (pattern: RegExp, ms = 5_000) => {
            const until = Date.now() + ms;
            while (!pattern.test(text)) {
              if (Date.now() > until) {
                throw new Error(`wrangler printed nothing matching ${pattern}; output:\n${text}`);
              }
              await new Promise((r) => setTimeout(r, 50));
            }
            return text;
          };
          return { url, output: () => text, waitForOutput, running: () => !exited, stop };
        }
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`wrangler dev did not serve within ${options.startupMs ?? 60_000} ms`);
  } catch (e) {
    await stop();
    throw new Error(`${messageOf(e)}; its output:\n${text}`);
  }
}
