/**
 * A separate plain-HTTP listener for Prometheus scrapes (`GET /metrics`), so metrics need not
 * be public on the DoH face. Bind it to loopback or a private address.
 *
 * @module
 */
import http from "node:http";
import type { AddressInfo } from "node:net";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/registry.ts";
import { messageOf } from "../errors/message_of.ts";

/** A running metrics listener. */
export interface MetricsListener {
  readonly addr: { hostname: string; port: number };
  close(): Promise<void>;
}

/**
 * Serves `render()` on `GET /metrics` (and 404 elsewhere); `render` may be asynchronous.
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
): Promise<MetricsListener> {
  const server = http.createServer(async (req, res) => {
    if (req.method === "GET" && req.url?.split("?")[0] === "/metrics") {
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
