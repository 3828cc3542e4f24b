/**
 * An in-memory socket for the HTTP/1.1 server connection, a reader of what it wrote, and a
 * scripted setup with a handler that records requests.
 */
import { H1ServerConnection, type H1ServerOptions } from "../../src/h1/server.ts";
import type { H1Socket } from "../../src/h1/socket.ts";
import type { ServerHandler, ServerRequest } from "../../src/serve/exchange.ts";
import { isomorphicDecode, isomorphicEncode } from "../../src/bytes/isomorphic.ts";

/** The server's side of a connection: records writes, pauses and the close. */
export class Peer {
  readonly writes: Uint8Array[] = [];
  closed = false;
  pauses = 0;
  resumes = 0;
  /** While set, writes wait for it (a client that does not read). */
  gate: Promise<void> | undefined;
  readonly socket: H1Socket = {
    write: (bytes) => {
      if (this.closed) return Promise.reject(new Error("socket closed"));
      this.writes.push(bytes.slice());
      return this.gate ?? Promise.resolve();
    },
    close: () => {
      this.closed = true;
    },
    pause: () => {
      this.pauses++;
    },
    resume: () => {
      this.resumes++;
    },
  };

  /** Everything written, as a binary string. */
  get text(): string {
    return this.writes.map((w) => isomorphicDecode(w)).join("");
  }

  /** Everything written, read as responses. */
  responses(noBody: readonly boolean[] = []): Response1[] {
    return readResponses(this.text, noBody);
  }
}

/** One response as the client reads it. */
export interface Response1 {
  status: number;
  reason: string;
  headers: [string, string][];
  body: string;
}

/** The first field named `name`, if any. */
export function field(response: Response1, name: string): string | undefined {
  return response.headers.find(([n]) => n === name)?.[1];
}

/**
 * Reads responses (interim 1xx ones included) from `text`; `noBody[i]` marks the i-th final
 * response as one to HEAD (no body whatever its Content-Length).
 */
export function readResponses(text: string, noBody: readonly boolean[] = []): Response1[] {
  const out: Response1[] = [];
  let at = 0;
  let final = 0;
  while (at < text.length) {
    const end = text.indexOf("\r\n\r\n", at);
    if (end < 0) throw new Error(`incomplete response head: ${JSON.stringify(text.slice(at))}`);
    const [line, ...lines] = text.slice(at, end).split("\r\n");
    const match = /^HTTP\/1\.1 (\d{3}) (.*)$/.exec(line);
    if (!match) throw new Error(`bad status line: ${JSON.stringify(line)}`);
    const headers = lines.map((l): [string, string] => {
      const colon = l.indexOf(": ");
      return [l.slice(0, colon), l.slice(colon + 2)];
    });
    const status = Number(match[1]);
    at = end + 4;
    let body = "";
    if (status >= 200) {
      const length = Number(headers.find(([n]) => n === "content-length")?.[1] ?? 0);
      if (!noBody[final]) {
        body = text.slice(at, at + length);
        if (body.length < length) throw new Error("incomplete body");
        at += length;
      }
      final++;
    }
    out.push({ status, reason: match[2], headers, body });
  }
  return out;
}

/** Bytes of a binary string. */
export const bytes = (text: string): Uint8Array => isomorphicEncode(text);

/** Lets timers and promise chains run. */
export const wait = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** A GET for `path`. */
export const get = (path = "/dns-query", extra = ""): string =>
  `GET ${path} HTTP/1.1\r\nHost: dns.example\r\n${extra}\r\n`;

/** A POST of `body`. */
export const post = (body: string, path = "/dns-query", extra = ""): string =>
  `POST ${path} HTTP/1.1\r\nHost: dns.example\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

/** The default handler: echoes method, path and body length. */
export const echo: ServerHandler = (request) =>
  Promise.resolve({
    status: 200,
    headers: [["content-type", "text/plain"]],
    body: bytes(`${request.method} ${request.path} ${request.body?.length ?? "-"}`),
  });

/** A connection on a {@linkcode Peer} that records requests and the close reason. */
export function setUp(options: H1ServerOptions = {}, handler: ServerHandler = echo) {
  const peer = new Peer();
  const seen: ServerRequest[] = [];
  const reasons: string[] = [];
  const connection = new H1ServerConnection(peer.socket, (request) => {
    seen.push(request);
    return handler(request);
  }, { ...options, onClose: (reason) => reasons.push(reason) });
  return { peer, connection, seen, reasons };
}
