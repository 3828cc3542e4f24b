/**
 * A local HTTP server for blocklists, on an ephemeral loopback port: serves each path's current
 * text with an ETag and Last-Modified, answers `If-None-Match` with 304, and can be switched per
 * path to fail (HTTP 500), to send more than it announces, or to hang.
 *
 * @module
 */

/** What a path serves. */
export interface ServedList {
  text: string;
  /** `ok` (default), `fail` (500), `hang` (never answers), `no-length` (chunked, no length). */
  mode?: "ok" | "fail" | "hang" | "no-length";
}

/** One request the server saw. */
export interface ListRequest {
  path: string;
  ifNoneMatch: string | null;
  ifModifiedSince: string | null;
  status: number;
}

/** A running list server. */
export interface ListServer {
  readonly origin: string;
  /** Lists by path (`/ads.txt`); edit them between requests. */
  readonly lists: Map<string, ServedList>;
  readonly requests: ListRequest[];
  close(): Promise<void>;
}

/** The ETag of a text: changes whenever the text does. */
async function etagOf(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return `"${new Uint8Array(digest).toHex().slice(0, 16)}"`;
}

/** Starts the server on 127.0.0.1. */
export function startListServer(): Promise<ListServer> {
  const lists = new Map<string, ServedList>();
  const requests: ListRequest[] = [];
  const hanging = new Set<() => void>();
  const modified = new Date(Date.UTC(2026, 0, 1)).toUTCString();
  return new Promise((resolve) => {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      async (req) => {
        const path = new URL(req.url).pathname;
        const seen: ListRequest = {
          path,
          ifNoneMatch: req.headers.get("if-none-match"),
          ifModifiedSince: req.headers.get("if-modified-since"),
          status: 0,
        };
        requests.push(seen);
        const list = lists.get(path);
        const reply = (status: number, body?: BodyInit | null, headers?: HeadersInit) => {
          seen.status = status;
          return new Response(body, { status, headers });
        };
        if (!list) return reply(404, "not found");
        if (list.mode === "fail") return reply(500, "broken");
        if (list.mode === "hang") {
          await new Promise<void>((r) => {
            hanging.add(r);
            req.signal.addEventListener("abort", () => r());
          });
          return reply(503);
        }
        const etag = await etagOf(list.text);
        if (seen.ifNoneMatch === etag) return reply(304, null, { etag });
        const headers = { etag, "last-modified": modified, "content-type": "text/plain" };
        if (list.mode === "no-length") {
          const bytes = new TextEncoder().encode(list.text);
          const body = new ReadableStream<Uint8Array>({
            start(controller) {
              for (let i = 0; i < bytes.length; i += 512) {
                controller.enqueue(bytes.subarray(i, i + 512));
              }
              controller.close();
            },
          });
          return reply(200, body, headers);
        }
        return reply(200, list.text, headers);
      },
    );
    resolve({
      origin: `http://127.0.0.1:${server.addr.port}`,
      lists,
      requests,
      async close() {
        for (const r of hanging) r();
        await server.shutdown();
      },
    });
  });
}
