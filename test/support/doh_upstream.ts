/**
 * A local DoH upstream (RFC 8484) on an ephemeral loopback port, over HTTPS with a test CA,
 * answering the test zone. Its behaviour can be switched per test to inject faults.
 *
 * @module
 */
import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
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
  /** Requests received, in arrival order. */
  readonly requests: UpstreamRequest[];
  close(): Promise<void>;
}

/** What the upstream saw of one request. */
export interface UpstreamRequest {
  method: string;
  /** The DNS message ID the query carried (RFC 8484 wants 0). */
  id: number;
  /** The query's length is a multiple of 128 (RFC 8467 block padding). */
  paddedTo128: boolean;
  /** Query length in bytes. */
  length: number;
  /** The question name, lower case without the trailing dot ("" if it did not parse). */
  name: string;
  /** EDNS option codes in the query's OPT record, in order (empty without OPT). */
  options: number[];
  /** The query carried an EDNS Client Subnet option (code 8). */
  ecs: boolean;
  /** The client gave the request up (reset its stream) before the answer was sent. */
  aborted: boolean;
}

/** Options of {@linkcode startDohUpstream}. */
export interface DohUpstreamOptions {
  /** Port to bind (default 0, an ephemeral port); lets a test restart an upstream in place. */
  port?: number;
}

function describeQuery(query: Uint8Array): { name: string; options: number[] } {
  try {
    const q = dnsPacket.decode(Buffer.from(query));
    const opt = q.additionals?.find((r) => r.type === "OPT") as
      | { options?: { code: number }[] }
      | undefined;
    return {
      name: (q.questions?.[0]?.name ?? "").toLowerCase(),
      options: (opt?.options ?? []).map((o) => o.code),
    };
  } catch {
    return { name: "", options: [] };
  }
}

/** Starts a local DoH upstream serving `/dns-query`. */
export function startDohUpstream(
  pki: TestPki,
  path = "/dns-query",
  options: DohUpstreamOptions = {},
): Promise<LocalDohUpstream> {
  const requests: LocalDohUpstream["requests"] = [];
  const hangs = new Set<() => void>();
  const state = { mode: "ok" as UpstreamMode };
  return new Promise((resolve) => {
    const server = Deno.serve(
      {
        hostname: "127.0.0.1",
        port: options.port ?? 0,
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
        const described = describeQuery(query);
        const seen: UpstreamRequest = {
          method: req.method,
          id: (query[0] << 8) | query[1],
          paddedTo128: query.length % 128 === 0,
          length: query.length,
          name: described.name,
          options: described.options,
          ecs: described.options.includes(8),
          aborted: false,
        };
        requests.push(seen);
        let answered = false;
        req.signal.addEventListener("abort", () => (seen.aborted ||= !answered));
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
        answered = true;
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
