/**
 * Serving on several threads: Deno runs JavaScript on one thread per isolate, so one bridge
 * tops out near one core. `--threads N` starts N Web Workers, each a whole bridge bound to the
 * same ports with SO_REUSEPORT (the kernel spreads connections over them), but for the UDP ones:
 * the DoQ face and the plain DNS face's UDP run on the first thread only (Deno's UDP sockets have
 * no SO_REUSEPORT; `reuseAddress` is SO_REUSEADDR, which gives every datagram to the last socket
 * bound instead of sharing them). This main thread
 * only starts them, prints the banner, serves the merged `/metrics`, forwards SIGHUP and drains
 * them on SIGTERM. Each thread has its own cache and upstream connections.
 *
 * @module
 */
import type { Config } from "../config/config.ts";
import { ConfigError } from "../config/parse.ts";
import { mergeExpositions } from "../metrics/merge.ts";
import { STATUS_PAGE } from "../http/status_page.ts";
import { loadCertificate } from "./start/certificate.ts";
import type { ServedCertificate } from "./start/context.ts";
import { listenError } from "./start/listen_error.ts";
import { listenMetrics, type MetricsListener } from "./metrics_listener.ts";
import type { FromThread, ToThread } from "./thread_worker.ts";

/** What the banner and the signal handlers need from running threads. */
export interface Threads {
  readonly dot: { readonly addr: { hostname: string; port: number } };
  readonly doh?: { readonly addr: { hostname: string; port: number }; readonly tls: boolean };
  /** The plain DNS face (its UDP on the first thread, its TCP on all). */
  readonly dns?: { readonly addr: { hostname: string; port: number } };
  readonly certificate: ServedCertificate;
  readonly metricsAddr?: { hostname: string; port: number };
  readonly count: number;
  reloadCertificate(reason?: string): Promise<boolean>;
  shutdown(): Promise<void>;
}

interface Thread {
  worker: Worker;
  send(message: ToThread): void;
  next(type: FromThread["type"]): Promise<FromThread>;
}

function spawn(): Thread {
  const worker = new Worker(new URL("./thread_worker.ts", import.meta.url), { type: "module" });
  const waiting: { type: string; resolve: (m: FromThread) => void }[] = [];
  const inbox: FromThread[] = [];
  worker.onmessage = (event: MessageEvent<FromThread>) => {
    const i = waiting.findIndex((w) =>
      w.type === event.data.type ||
      (event.data.type === "failed" && w.type === "started")
    );
    if (i >= 0) waiting.splice(i, 1)[0].resolve(event.data);
    else inbox.push(event.data);
  };
  return {
    worker,
    send: (message) => worker.postMessage(message),
    next: (type) => {
      const i = inbox.findIndex((m) => m.type === type);
      if (i >= 0) return Promise.resolve(inbox.splice(i, 1)[0]);
      return new Promise((resolve) => waiting.push({ type, resolve }));
    },
  };
}

async function start(thread: Thread, config: Config, index: number) {
  thread.send({ type: "start", config, index });
  const reply = await thread.next("started");
  if (reply.type === "failed") {
    thread.worker.terminate();
    throw new ConfigError(
      reply.key ?? "threads",
      reply.key ? reply.message.slice(reply.key.length + 2) : reply.message,
    );
  }
  return reply as Extract<FromThread, { type: "started" }>;
}

/**
 * Starts `count` serving threads.
 *
 * @throws {ConfigError} as `startBridge` would, from the first thread
 */
export async function startThreads(config: Config, count: number): Promise<Threads> {
  // The development certificate is made here, once, before any thread reads it.
  const certificate = await loadCertificate(config);
  // Each thread has its own memory cache: --cache-max-bytes is shared out between them.
  const split: Config = {
    ...config,
    resolver: {
      ...config.resolver,
      cacheMaxBytes: Math.max(1, Math.floor(config.resolver.cacheMaxBytes / count)),
    },
  };
  const threads: Thread[] = [spawn()];
  const first = await start(threads[0], split, 0);
  // Port 0 asks for any free port: the others join the one the first thread got.
  // The DoQ face runs on the first thread only: Deno's QUIC endpoint cannot share its UDP port
  // (no SO_REUSEPORT).
  const joined: Config = {
    ...split,
    dot: {
      ...config.dot,
      listen: { ...config.dot.listen, port: first.dot.port },
      doqListen: undefined,
    },
    doh: {
      ...config.doh,
      httpListen: first.doh
        ? { ...config.doh.httpListen!, port: first.doh.port }
        : config.doh.httpListen,
    },
    dns: {
      ...config.dns,
      listen: first.dns ? { ...config.dns.listen!, port: first.dns.port } : config.dns.listen,
    },
  };
  try {
    for (let i = 1; i < count; i++) {
      const t = spawn();
      threads.push(t);
      await start(t, joined, i);
    }
  } catch (e) {
    await stopAll(threads);
    throw e;
  }

  let metricsListener: MetricsListener | undefined;
  let scrapeId = 0;
  const ask = (render: boolean) => {
    const id = ++scrapeId;
    return Promise.all(threads.map(async (t) => {
      t.send({ type: "metrics", id, render });
      const m = await t.next("metrics");
      return m.type === "metrics" ? m : { text: "", ready: false };
    }));
  };
  // Health, identity and expiry are the same fact seen by every thread: the smallest, not a sum.
  const notSummed = new Set([
    "dotbridge_upstream_up",
    "dotbridge_build_info",
    "process_start_time_seconds",
    "dotbridge_certificate_not_after_seconds",
    "dotbridge_dnstap_up",
  ]);
  const scrape = async () => mergeExpositions((await ask(true)).map((m) => m.text), notSummed);
  // Ready while any thread has a usable upstream (each keeps its own health); a probe asks for
  // readiness alone, not every thread's whole exposition.
  const ready = async () => (await ask(false)).some((m) => m.ready);
  if (config.metrics.metricsListen) {
    const { hostname, port } = config.metrics.metricsListen;
    try {
      metricsListener = await listenMetrics(hostname, port, scrape, {
        ready,
        status: STATUS_PAGE,
      });
    } catch (e) {
      await stopAll(threads);
      throw listenError(e, config.origin["metrics-listen"], config.metrics.metricsListen);
    }
  }

  return {
    dot: { addr: first.dot },
    doh: first.doh ? { addr: first.doh, tls: first.doh.tls } : undefined,
    dns: first.dns ? { addr: first.dns } : undefined,
    certificate: { ...certificate, spkiPin: first.certificate.spkiPin },
    metricsAddr: metricsListener?.addr,
    count,
    reloadCertificate(reason = "manual") {
      for (const t of threads) t.send({ type: "reload", reason });
      return Promise.resolve(true);
    },
    async shutdown() {
      await metricsListener?.close();
      await stopAll(threads);
    },
  };
}

async function stopAll(threads: Thread[]): Promise<void> {
  await Promise.all(threads.map(async (t) => {
    t.send({ type: "shutdown" });
    await t.next("stopped");
    t.worker.terminate();
  }));
}
