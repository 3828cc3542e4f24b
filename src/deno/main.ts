/**
 * `deno task serve`: the command-line entry on Deno.
 *
 * Exit codes: 0 after a clean shutdown (SIGINT/SIGTERM), 2 for a configuration problem (one line
 * on stderr naming the key), 1 for anything unexpected.
 *
 * @module
 */
import { ConfigError, helpText, parseConfig } from "../config/parse.ts";
import { banner } from "./banner.ts";
import { type Bridge, startBridge } from "./bridge.ts";
import { startThreads, type Threads } from "./threads.ts";

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
    console.log(helpText("deno task serve"));
    return;
  }
  const config = parsed.config;
  const { threads: wanted, shutdownGraceMs } = config.runtime;
  const threads = wanted === 0 ? navigator.hardwareConcurrency : wanted;
  let bridge: Bridge | Threads;
  try {
    bridge = threads > 1 ? await startThreads(config, threads) : await startBridge(config);
  } catch (e) {
    if (e instanceof ConfigError) fail(e.message, 2);
    throw e;
  }

  console.log(banner(bridge, config));

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.error(`dotbridge: ${signal}: draining (up to ${shutdownGraceMs} ms)`);
    await bridge.shutdown();
    Deno.exit(0);
  };
  Deno.addSignalListener("SIGINT", () => void stop("SIGINT"));
  Deno.addSignalListener("SIGTERM", () => void stop("SIGTERM"));
  if (threads > 1) {
    // Threads do not get signals: reload their certificates from here.
    Deno.addSignalListener("SIGHUP", () => void bridge.reloadCertificate("SIGHUP"));
  }
}

if (import.meta.main) {
  main().catch((e) => fail(`unexpected error: ${(e as Error)?.stack ?? e}`, 1));
}
