/**
 * A local DoH upstream (RFC 8484) on an ephemeral loopback port, over HTTPS with a test CA,
 * answering the test zone. Its behaviour can be switched per test to inject faults.
 *
 * @module
 */
import { answerFromZone, delayFor } from "./zone.ts";
import type { TestPki } from "./pki.ts";

/** What the upstream does with the next requests. */
export type UpstreamMode =
  | "ok"
  | "http-500"
  | "wrong-content-type"
  | "hang"
  | "wrong-id"
  | "truncated"
  | "oversize";

/** A running local DoH upstream. */
export interface LocalDohUpstream {
  readonly url: string;
  readonly port: number;
  mode: UpstreamMode;
  /** Requests received, by method. */
  readonly requests: { method: string; id: number; paddedTo128: boolean }[];
  close(): Promise<void>;
}

/** Starts a local DoH upstream serving `/dns-query`. */
export function startDohUpstream(pki: TestPki, path = "/dns-query"): Promise<LocalDohUpstream> {
  const requests: LocalDohUpstream["requests"] = [];
  const hangs = new Set<() => void>();
  const state = { mode: "ok" as UpstreamMode };
  return new Promise((resolve) => {
    const server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: 0,
        cert: pki.server.chainPem,
        key: pki.server.keyPem,
        onListen: () => {},
      },
      async (req) => {
        const url = new URL(req.url);
        if (url.pathname !== path) return new Response("not found", { status: 404 });
        let query: Uint8Array;
        if (req.method === "GET") {
          query = Uint8Array.fromBase64(url.searchParams.get("dns") ?? "", {
            alphabet: "base64url",
          });
        } else {
          query = new Uint8Array(await req.arrayBuffer());
        }
        requests.push({
          method: req.method,
          id: (query[0] << 8) | query[1],
          paddedTo128: query.length % 128 === 0,
        });
        const mode = state.mode;
        if (mode === "hang") {
          await new Promise<void>((r) => {
            hangs.add(r);
            req.signal.addEventListener("abort", () => r());
          });
          return new Response("gone", { status: 503 });
        }
        if (mode === "http-500") return new Response("boom", { status: 500 });
        let answer = answerFromZone(query);
        const name = new TextDecoder().decode(query.subarray(13, 13 + query[12]));
        const delay = delayFor(name + ".");
        if (delay > 0) await new Promise((r) => setTimeout(r, delay));
        let type = "application/dns-message";
        if (mode === "wrong-content-type") type = "text/html";
        if (mode === "wrong-id") answer[1] ^= 0x55;
        if (mode === "truncated") answer = answer.subarray(0, answer.length - 3);
        if (mode === "oversize") answer = new Uint8Array(70_000);
        return new Response(answer.slice(), { headers: { "content-type": type } });
      },
    );
    const port = (server.addr as Deno.NetAddr).port;
    resolve({
      url: `https://localhost:${port}${path}`,
      port,
      requests,
      get mode() {
        return state.mode;
      },
      set mode(m: UpstreamMode) {
        state.mode = m;
      },
      async close() {
        for (const r of hangs) r();
        await server.shutdown();
      },
    });
  });
}
