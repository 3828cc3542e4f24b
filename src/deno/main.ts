/**
 * `deno task serve`: the command-line entry on Deno.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a configuration problem (one line
 * on stderr naming the key), 1 for anything unexpected.
 *
 * @module
 */
import { ConfigError, helpText, parseConfig } from "../config/parse.ts";
import { createLogger, type LogFields } from "../log/mod.ts";
import { banner, type BannerSource } from "./banner.ts";
import { type Bridge, startBridge } from "./bridge.ts";
import { startThreads, type Threads } from "./threads.ts";
import { VERSION } from "./version.ts";
import { urlHost } from "../upstream/dot_url.ts";

function fail(message: string, code: number): never {
  console.error(`dotbridge: ${message}`);
  Deno.exit(code);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseConfig({
      args: Deno.args,
      env: Deno.env.toObject(),
      readTextFile: (path) => Deno.readTextFileSync(path),
    });
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }
  if (parsed.help) {
    if (parsed.show === "version") {
      console.log(`dotbridge ${VERSION} (Deno ${Deno.version.deno}, V8 ${Deno.version.v8})`);
    } else console.log(helpText("dotbridge", parsed.show === "help-all"));
    return;
  }
  const config = parsed.config;
  const { threads: wanted, shutdownGraceMs } = config.runtime;
  const threads = wanted === 0 ? navigator.hardwareConcurrency : wanted;
  // The process's own events (start, ready, reload, drain, stop), in the format of every log line.
  const logger = createLogger({ level: config.log.logLevel, format: config.log.logFormat });
  const json = config.log.logFormat === "json";
  let bridge: Bridge | Threads;
  try {
    bridge = threads > 1 ? await startThreads(config, threads) : await startBridge(config);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }

  // After the faces are up: a start that fails prints only its one-line error.
  logger.info("start", { version: VERSION, pid: Deno.pid, threads });
  const cert = bridge.certificate;
  // Read by the certificate check (node:crypto), not with the X.509 library: loading that for
  // the banner cost a bridge with its own certificate ~10 MB of RSS.
  const names = cert.development ? [] : cert.names ?? [];
  const text = banner(bridge, config, names);
  // The banner is for people: plain text on stdout, or one event among the JSON lines.
  if (json) logger.info("banner", { text });
  else console.log(text);
  logger.info("ready", readyFields(bridge, names));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info("drain", { signal, grace_ms: shutdownGraceMs });
    await bridge.shutdown();
    logger.info("stop", { signal });
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  Deno.addSignalListener("SIGHUP", () => {
    // What each part did follows in its own line (certificate reloaded or unchanged, query log
    // reopened); a development certificate is not reloaded.
    logger.info("reload", {
      signal: "SIGHUP",
      certificate: cert.development ? "development (kept)" : "checked",
    });
    // Threads do not get signals: reload their certificates from here.
    if (threads > 1) void bridge.reloadCertificate("SIGHUP");
  });
}

/** The `ready` event's fields: where each face listens, and how clients trust it. */
function readyFields(bridge: BannerSource, names: readonly string[]): LogFields {
  const at = (a?: { hostname: string; port: number }) => a && `${urlHost(a.hostname)}:${a.port}`;
  return {
    dot: at(bridge.dot.addr),
    doh: bridge.doh && `${bridge.doh.tls ? "https" : "http"}://${at(bridge.doh.addr)}/dns-query`,
    doq: at(bridge.doq?.addr),
    dns: at(bridge.dns?.addr),
    metrics: at(bridge.metricsAddr),
    spki_pin: bridge.certificate.spkiPin,
    names: names.length > 0 ? names.join(",") : undefined,
  };
}

if (import.meta.main) {
  main().catch((e) => fail(`unexpected error: ${(e as Error)?.stack ?? e}`, 1));
}
