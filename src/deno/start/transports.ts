/**
 * Step: the runtime's ways to reach upstreams (the HTTP/2 or `fetch` client for DoH, the TLS
 * connector for DoT), trusting `--upstream-ca` when set and dialling `--bootstrap` addresses.
 *
 * @module
 */
import type { Config } from "../../config/config.ts";
import type { Logger } from "../../log/mod.ts";
import { createTransports, type Transports } from "../upstreams.ts";
import { type BridgeDeps, readKeyFile } from "./context.ts";
import type { Started } from "./steps.ts";

/**
 * Builds the upstream transports; stopping closes their pooled connections.
 *
 * @throws {ConfigError} naming `--upstream-ca` when it cannot be read
 */
export function startTransports(
  config: Config,
  deps: BridgeDeps,
  logger: Logger,
): Started<Transports> {
  const { upstreamCaFiles, bootstrap, upstreamTransport } = config.upstream;
  // Every file is trusted: their certificates together.
  const caPem = upstreamCaFiles.length > 0
    ? upstreamCaFiles.map((file) => readKeyFile(config.origin["upstream-ca"], file)).join("\n")
    : undefined;
  const transports = createTransports({
    caPem,
    fetchFn: deps.fetch,
    logger,
    bootstrap,
    transport: upstreamTransport,
  });
  return { value: transports, stop: () => transports.close() };
}
