/**
 * Step: seeing what the bridge answers (docs/observability.md): the query log (`--query-log`,
 * its writer, rotation and SIGHUP reopen) and dnstap (`--dnstap`, the Frame Streams sender). Both
 * hear every answered query through one processor tap, and dnstap every upstream exchange through
 * the resolver's report hook. With neither on, there is no tap: the processor makes no trace.
 *
 * @module
 */
import { createHmac } from "node:crypto";
import type { Config } from "../../config/config.ts";
import { ConfigError } from "../../config/parse.ts";
import type { TenantsConfig } from "../../config/tenants.ts";
import type { Logger } from "../../log/mod.ts";
import type { BridgeMetrics } from "../../metrics/bridge.ts";
import { clientField } from "../../observe/client_field.ts";
import { dnstapReporter, dnstapTap } from "../../observe/dnstap.ts";
import { queryLogTap } from "../../observe/query_log.ts";
import type { Face } from "../../pipeline/types.ts";
import type { QueryTap } from "../../resolver/processor.ts";
import type { ExchangeReport } from "../../upstream/instrumented.ts";
import { messageOf } from "../../errors/message_of.ts";
import { type DnstapSender, parseDnstapTarget, startDnstapSender } from "../dnstap_sender.ts";
import { openQueryLog, type QueryLogFile } from "../query_log_file.ts";
import { VERSION } from "../version.ts";
import type { BridgeDeps } from "./context.ts";
import type { Started } from "./steps.ts";

/** What the faces and the resolver are given. */
export interface Observing {
  /** The processor tap; unset when neither the query log nor dnstap is on. */
  readonly tap?: QueryTap;
  /** The resolver's extra report hook (dnstap's forwarder messages); unset without dnstap. */
  readonly report?: (r: ExchangeReport) => void;
  /** 1 while the dnstap collector is connected, 0 while not; `undefined` without dnstap. */
  dnstapUp(): number | undefined;
  /** Reopens the query log file (SIGHUP, after logrotate moved it). */
  reopen(): void;
}

/**
 * Starts the query log writer and the dnstap sender, as configured; stopping flushes and closes
 * both.
 *
 * @param local each face's listening address, once it listens (dnstap's response address)
 * @throws {ConfigError} naming `--query-log` (cannot be opened) or `--dnstap` (not
 *   `unix:PATH|tcp:HOST:PORT`)
 */
export function startObserve(
  config: Config,
  pieces: {
    deps: BridgeDeps;
    logger: Logger;
    metrics: BridgeMetrics;
    local: (face: Face) => { address: string; port: number } | undefined;
    /** The parsed `--tenants` file, if any (its `queryLog: false` tenants are left out). */
    tenants?: TenantsConfig;
  },
): Started<Observing> {
  const { queryLog, queryLogClient, queryLogMaxBytes, queryLogFiles, dnstap } = config.log;
  const { logger, metrics } = pieces;
  const taps: QueryTap[] = [];
  let file: QueryLogFile | undefined;
  let sender: DnstapSender | undefined;
  let report: ((r: ExchangeReport) => void) | undefined;

  if (queryLog !== undefined) {
    const optedOut = new Set<string>();
    for (const t of pieces.tenants?.tenants.values() ?? []) if (!t.queryLog) optedOut.add(t.name);
    const dropped = metrics.queryLogDropped.labels();
    dropped.inc(0);
    try {
      file = openQueryLog({
        path: queryLog,
        maxBytes: queryLogMaxBytes,
        files: queryLogFiles,
        onDrop: () => dropped.inc(),
        logger,
      });
    } catch (e) {
      throw new ConfigError(
        config.origin["query-log"],
        `cannot open "${queryLog}": ${messageOf(e)}`,
      );
    }
    const queue = file.queue;
    taps.push(queryLogTap({
      client: clientField(queryLogClient, {
        randomKey: () => crypto.getRandomValues(new Uint8Array(32)),
        hmac: (key, text) => createHmac("sha256", key).update(text).digest("hex"),
      }),
      write: (line) => queue.push(line),
      optedOut,
    }));
  }

  if (dnstap !== undefined) {
    let target;
    try {
      target = parseDnstapTarget(dnstap);
    } catch (e) {
      throw new ConfigError(config.origin.dnstap, messageOf(e));
    }
    const dropped = metrics.dnstapDropped.labels();
    dropped.inc(0);
    sender = startDnstapSender({ target, logger, onDrop: (n) => dropped.inc(n) });
    const queue = sender.queue;
    const options = {
      send: (frame: Uint8Array) => queue.push(frame),
      version: `dotbridge ${VERSION}`,
      local: pieces.local,
    };
    taps.push(dnstapTap(options));
    report = dnstapReporter(options);
  }

  const tap: QueryTap | undefined = taps.length === 0
    ? undefined
    : taps.length === 1
    ? taps[0]
    : (q) => {
      for (const t of taps) t(q);
    };
  const reopen = () => file?.reopen();
  const sighup = file !== undefined && queryLog !== "-" && (pieces.deps.sighup ?? true);
  const onHup = () => {
    reopen();
    pieces.logger.info("query log reopened", { reason: "SIGHUP" });
  };
  if (sighup) Deno.addSignalListener("SIGHUP", onHup);
  return {
    value: {
      tap,
      report,
      dnstapUp: () => sender === undefined ? undefined : sender.up ? 1 : 0,
      reopen,
    },
    stop: async () => {
      if (sighup) Deno.removeSignalListener("SIGHUP", onHup);
      await Promise.all([file?.close(), sender?.close()]);
    },
  };
}
