/**
 * One table of good and bad DoH requests, sent to every DoH face the project has: the hono app
 * through `app.request()`, the Deno listener (`listenDoh`) over HTTPS as HTTP/2 and as HTTP/1.1,
 * and over plain HTTP as h2c (prior knowledge) and as HTTP/1.1, and the Worker in workerd
 * (`wrangler dev`). Each request must get the same status, content type and body from all six.
 *
 * The Deno faces answer from the test zone through the real face-side processor; the Worker
 * answers through its own pipeline from a plain-HTTP upstream serving the same zone. Answers are
 * compared byte for byte: nothing is normalised.
 *
 * Not in the table: a GET whose `dns` parameter is over the size cap (413), because HTTP clients
 * refuse a URL that long before sending it; `test/http/doh_request.test.ts` covers it.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DohListener, listenDoh } from "../../src/deno/doh_listener.ts";
import { answerOf } from "../../src/dns/answer.ts";
import { DNS_MESSAGE } from "../../src/dns/media_type.ts";
import { createDohApp } from "../../src/http/app.ts";
import { silentLogger } from "../../src/log/mod.ts";
import { createProcessor } from "../../src/resolver/processor.ts";
import { buildQuery, decode, rcodeOf } from "../support/dot_client.ts";
import { testPki } from "../support/pki.ts";
import {
  type PlainDohUpstream,
  startPlainDohUpstream,
  startWorkerDev,
  type WorkerDev,
} from "../support/worker.ts";
import { answerFromZone } from "../support/zone.ts";

const STARTUP_MS = 60_000;
const TEXT = "text/plain; charset=UTF-8";
const DNS_JSON = "application/dns-json";

/** What a face answered. */
interface Reply {
  status: number;
  type: string | null;
  body: Uint8Array;
}

/** One row of the table. */
interface Case {
  what: string;
  method?: string;
  /** Path and query string. */
  target: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  status: number;
  type: string;
  /** The text body of an error, exactly. */
  text?: string;
  /** Checks the body of a success further (the same on every face, so once is enough). */
  check?: (body: Uint8Array) => void;
}

const b64url = (bytes: Uint8Array) => bytes.toBase64({ alphabet: "base64url", omitPadding: true });
const query = (name: string, id = 0x1234) => buildQuery(name, { id });
const post = (body: Uint8Array, type = DNS_MESSAGE) => ({
  method: "POST",
  headers: { "content-type": type },
  body,
});
const isAnswerFor = (name: string) => (body: Uint8Array) => {
  const packet = decode(body);
  expect(packet.id).toBe(0x1234);
  expect(packet.questions?.[0].name).toBe(name);
};

const CASES: Case[] = [
  {
    what: "GET ?dns= (RFC 8484 §4.1)",
    target: `/dns-query?dns=${b64url(query("a.example.test"))}`,
    status: 200,
    type: DNS_MESSAGE,
    check: isAnswerFor("a.example.test"),
  },
  {
    what: "GET ?dns= among other parameters",
    target: `/dns-query?ct=${encodeURIComponent(DNS_MESSAGE)}&dns=${
      b64url(query("b.example.test"))
    }`,
    status: 200,
    type: DNS_MESSAGE,
    check: isAnswerFor("b.example.test"),
  },
  {
    what: "HEAD ?dns=",
    method: "HEAD",
    target: `/dns-query?dns=${b64url(query("a.example.test"))}`,
    status: 200,
    type: DNS_MESSAGE,
    check: (body) => expect(body).toHaveLength(0),
  },
  {
    what: "POST application/dns-message",
    target: "/dns-query",
    ...post(query("c.example.test")),
    status: 200,
    type: DNS_MESSAGE,
    check: isAnswerFor("c.example.test"),
  },
  {
    what: "POST with media type parameters and capitals",
    target: "/dns-query",
    ...post(query("c.example.test"), "Application/DNS-Message; charset=binary"),
    status: 200,
    type: DNS_MESSAGE,
    check: isAnswerFor("c.example.test"),
  },
  {
    what: "GET on a tenant path",
    target: `/dns-query/Kids?dns=${b64url(query("d.example.test"))}`,
    status: 200,
    type: DNS_MESSAGE,
    check: isAnswerFor("d.example.test"),
  },
  {
    what: "an NXDOMAIN answer (still 200, RFC 8484 §4.2.1)",
    target: `/dns-query?dns=${b64url(query("nx.example.test"))}`,
    status: 200,
    type: DNS_MESSAGE,
    check: (body) => expect(rcodeOf(body)).toBe(3),
  },
  {
    what: "GET without a dns parameter",
    target: "/dns-query",
    status: 400,
    type: TEXT,
    text: "missing dns parameter",
  },
  {
    what: "GET with a dns parameter that is not base64url",
    target: "/dns-query?dns=AA+/",
    status: 400,
    type: TEXT,
    text: "dns parameter is not base64url",
  },
  {
    what: "GET with an empty dns parameter",
    target: "/dns-query?dns=",
    status: 400,
    type: TEXT,
    text: "empty DNS query",
  },
  {
    what: "GET with too few bytes for a DNS header",
    target: "/dns-query?dns=AAEC",
    status: 400,
    type: TEXT,
    text: "not a DNS message",
  },
  {
    what: "POST of text/plain",
    target: "/dns-query",
    ...post(query("a.example.test"), "text/plain"),
    status: 415,
    type: TEXT,
    text: `content type must be ${DNS_MESSAGE}`,
  },
  {
    what: "POST with an empty body",
    target: "/dns-query",
    ...post(new Uint8Array(0)),
    status: 400,
    type: TEXT,
    text: "empty DNS query",
  },
  {
    what: "POST of a body over 65535 bytes",
    target: "/dns-query",
    ...post(new Uint8Array(65_536)),
    status: 413,
    type: TEXT,
    text: "DNS query over 65535 bytes",
  },
  {
    what: "PUT",
    method: "PUT",
    target: "/dns-query",
    body: query("a.example.test"),
    headers: { "content-type": DNS_MESSAGE },
    status: 405,
    type: TEXT,
    text: "method not allowed",
  },
  {
    what: "DELETE on a tenant path",
    method: "DELETE",
    target: "/dns-query/kids",
    status: 405,
    type: TEXT,
    text: "method not allowed",
  },
  { what: "an unknown path", target: "/nope", status: 404, type: TEXT, text: "not found" },
  {
    what: "a path below a tenant",
    target: `/dns-query/a/b?dns=${b64url(query("a.example.test"))}`,
    status: 404,
    type: TEXT,
    text: "not found",
  },
  {
    what: "the JSON API (?name=&type=)",
    target: "/dns-query?name=e.example.test&type=AAAA",
    headers: { accept: DNS_JSON },
    status: 200,
    type: DNS_JSON,
    check: (body) => {
      const json = JSON.parse(new TextDecoder().decode(body));
      expect(json.Status).toBe(0);
      expect(json.Answer?.[0]?.name).toBe("e.example.test.");
    },
  },
  {
    what: "the JSON API with a bad type",
    target: "/dns-query?name=e.example.test&type=NOPE",
    status: 400,
    type: DNS_JSON,
  },
];

/** A DoH server under test, by the name the table reports. */
interface Face {
  name: string;
  send(c: Case): Promise<Reply>;
}

let upstream: PlainDohUpstream | undefined;
let worker: WorkerDev | undefined;
const listeners: DohListener[] = [];
const clients: Deno.HttpClient[] = [];
const faces: Face[] = [];

async function replyOf(response: Response): Promise<Reply> {
  return {
    status: response.status,
    type: response.headers.get("content-type"),
    body: new Uint8Array(await response.arrayBuffer()),
  };
}

function init(c: Case): RequestInit {
  return { method: c.method ?? "GET", headers: c.headers, body: c.body?.slice() };
}

beforeAll(async () => {
  const pki = await testPki();
  upstream = startPlainDohUpstream();
  const workerStarting = startWorkerDev({
    startupMs: STARTUP_MS,
    vars: { DOTBRIDGE_UPSTREAM: upstream.url, DOTBRIDGE_JSON_API: "true" },
  });

  const process = createProcessor({
    handler: (q) => Promise.resolve(answerOf(answerFromZone(q.wire))),
    logger: silentLogger,
  });
  const app = createDohApp({ process, path: "/dns-query", jsonApi: true, logger: silentLogger });
  const common = {
    hostname: "127.0.0.1",
    port: 0,
    cert: pki.server.chainPem,
    key: pki.server.keyPem,
    app,
    fast: { process, path: "/dns-query" },
    logger: silentLogger,
  };
  const [secure, plain] = await Promise.all([
    listenDoh(common),
    listenDoh({ ...common, cert: undefined, key: undefined }),
  ]);
  listeners.push(secure, plain);
  const h2 = Deno.createHttpClient({ caCerts: [pki.ca.certPem], http1: false, http2: true });
  const h1 = Deno.createHttpClient({ caCerts: [pki.ca.certPem], http1: true, http2: false });
  clients.push(h2, h1);
  const over =
    (scheme: string, listener: DohListener, client: Deno.HttpClient) => async (c: Case) =>
      await replyOf(
        await fetch(`${scheme}://127.0.0.1:${listener.addr.port}${c.target}`, {
          ...init(c),
          client,
        }),
      );
  faces.push(
    { name: "hono app", send: async (c) => await replyOf(await app.request(c.target, init(c))) },
    { name: "HTTP/2 over TLS", send: over("https", secure, h2) },
    { name: "HTTP/1.1 over TLS", send: over("https", secure, h1) },
    { name: "h2c", send: over("http", plain, h2) },
    { name: "HTTP/1.1", send: over("http", plain, h1) },
  );
  worker = await workerStarting;
  const url = worker.url;
  faces.push({
    name: "Worker",
    send: async (c) => await replyOf(await fetch(`${url}${c.target}`, init(c))),
  });
}, STARTUP_MS + 30_000);

afterAll(async () => {
  await Promise.all(listeners.map((l) => l.shutdown(1_000)));
  for (const client of clients) client.close();
  await worker?.stop();
  await upstream?.close();
}, 30_000);

describe("every DoH face answers the same request the same way", () => {
  it("runs on six faces", () => {
    expect(faces.map((f) => f.name)).toEqual([
      "hono app",
      "HTTP/2 over TLS",
      "HTTP/1.1 over TLS",
      "h2c",
      "HTTP/1.1",
      "Worker",
    ]);
  });

  it.each(CASES)("$what: $status $type", async (c) => {
    const replies = [];
    for (const face of faces) replies.push({ face: face.name, ...(await face.send(c)) });
    const [first] = replies;
    for (const reply of replies) {
      expect({ face: reply.face, status: reply.status, type: reply.type }).toEqual({
        face: reply.face,
        status: c.status,
        type: c.type,
      });
      expect(reply.body, `${reply.face}'s body differs from ${first.face}'s`).toEqual(first.body);
    }
    if (c.text !== undefined) expect(new TextDecoder().decode(first.body)).toBe(c.text);
    c.check?.(first.body);
  });
});
