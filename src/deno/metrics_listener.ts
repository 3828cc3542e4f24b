/**
 * A separate plain-HTTP listener for Prometheus scrapes (`GET /metrics`), so metrics need not
 * be public on the DoH face. Bind it to loopback or a private address.
 *
 * @module
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import { readyText, STATUS_PAGE_CSP } from "../http/status_page.ts";
import { messageOf } from "../errors/message_of.ts";

/** What the metrics listener serves besides `/metrics`. */
export interface MetricsListenerExtras {
  /** `/ready`: 200 while true, 503 while false; unset: 200 (no upstream health known). */
  ready?: () => boolean | Promise<boolean>;
  /** `/status`: this HTML page (text/html); unset: 404. */
  status?: string;
}

/** A running metrics listener. */
export interface MetricsListener {
  readonly addr: { hostname: string; port: number };
  close(): Promise<void>;
}

/**
 * Serves `render()` on `GET /metrics`, `/health` (liveness: 200 while the process serves),
 * `/ready` and `/status` (see {@linkcode MetricsListenerExtras}), and 404 elsewhere; `render` may
 * be asynchronous.
 *
 * @example
 * ```ts
 * const m = await listenMetrics("127.0.0.1", 9153, () => metrics.registry.render());
 * ```
 */
export async function listenMetrics(
  hostname: string,
  port: number,
  render: () => string | Promise<string>,
  extras: MetricsListenerExtras = {},
): Promise<MetricsListener> {
  const server = http.createServer(async (req, res) => {
    const path = req.url?.split("?")[0];
    const get = req.method === "GET" || req.method === "HEAD";
    if (get && path === "/health") {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end("ok\n");
    } else if (get && path === "/ready") {
      let ready = true;
      try {
        ready = (await extras.ready?.()) ?? true;
      } catch {
        ready = false;
      }
      res.writeHead(ready ? 200 : 503, {
        "content-type": "text/plain",
        "cache-control": "no-store",
      });
      res.end(readyText(ready));
    } else if (get && path === "/status" && extras.status !== undefined) {
      res.writeHead(200, {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": STATUS_PAGE_CSP,
      });
      res.end(extras.status);
    } else if (req.method === "GET" && path === "/metrics") {
      let body: string;
      try {
        body = await render();
      } catch (e) {
        res.writeHead(500, { "content-type": "text/plain" });
        res.end(`metrics unavailable: ${messageOf(e)}\n`);
        return;
      }
      res.writeHead(200, { "content-type": PROMETHEUS_CONTENT_TYPE });
      res.end(body);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const bound = server.address() as AddressInfo;
  return {
    addr: { hostname: bound.address, port: bound.port },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
