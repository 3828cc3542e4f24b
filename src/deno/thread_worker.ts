/**
 * One serving thread (a Web Worker): a whole bridge — listeners, resolver, cache, upstream
 * connections — bound to the shared ports with SO_REUSEPORT. The main thread
 * ({@linkcode startThreads} in `threads.ts`) starts, scrapes, reloads and stops it by message.
 *
 * @module
 */
/// <reference lib="deno.worker" />
import type { Config } from "../config/parse.ts";
import { ConfigError } from "../config/parse.ts";
import { type Bridge, startBridge } from "./bridge.ts";
import { messageOf } from "../errors/message_of.ts";

/** Messages from the main thread. */
export type ToThread =
  | { type: "start"; config: Config; index: number }
  /** `render` false: readiness only (a `/ready` probe), no exposition rendered. */
  | { type: "metrics"; id: number; render?: boolean }
  | { type: "reload"; reason: string }
  | { type: "shutdown" };

/** Messages to the main thread. */
export type FromThread =
  | {
    type: "started";
    dot: { hostname: string; port: number };
    doh?: { hostname: string; port: number; tls: boolean };
    /** The plain DNS face, and whether this thread serves its UDP. */
    dns?: { hostname: string; port: number; udp: boolean };
    certificate: Bridge["certificate"];
  }
  | { type: "failed"; message: string; key?: string }
  | { type: "metrics"; id: number; text: string; ready: boolean }
  | { type: "stopped" };

let bridge: Bridge | undefined;
const post = (message: FromThread) => self.postMessage(message);

self.onmessage = async (event: MessageEvent<ToThread>) => {
  const message = event.data;
  switch (message.type) {
    case "start":
      try {
        bridge = await startBridge(message.config, {
          reusePort: true,
          sighup: false,
          metricsListener: false,
          // Deno's UDP sockets cannot share a port: the first thread serves the plain face's UDP.
          dnsUdp: message.index === 0,
        });
        post({
          type: "started",
          dot: bridge.dot.addr,
          doh: bridge.doh ? { ...bridge.doh.addr, tls: bridge.doh.tls } : undefined,
          dns: bridge.dns ? { ...bridge.dns.addr, udp: bridge.dns.udp } : undefined,
          certificate: { ...bridge.certificate },
        });
      } catch (e) {
        post({
          type: "failed",
          message: messageOf(e),
          key: e instanceof ConfigError ? e.key : undefined,
        });
      }
      break;
    case "metrics":
      post({
        type: "metrics",
        id: message.id,
        text: message.render === false ? "" : bridge?.metrics.registry.render() ?? "",
        ready: bridge?.ready() ?? false,
      });
      break;
    case "reload":
      // SIGHUP at the main thread: the certificate, and the query log's file (logrotate).
      bridge?.reopenLogs();
      await bridge?.reloadCertificate(message.reason);
      break;
    case "shutdown":
      await bridge?.shutdown();
      post({ type: "stopped" });
      self.close();
      break;
  }
};
