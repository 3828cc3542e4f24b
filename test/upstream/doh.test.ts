/**
 * The DoH upstream (RFC 8484) against real HTTP servers in this process: a plain-HTTP one on a
 * loopback port whose answer each test sets (to check every rule an answer must pass: status,
 * content type, size cap, ID, question), and the HTTPS test upstream reached through both
 * transports the edges use (`fetch`, and the bridge's own HTTP/2 client), with GET and POST.
 *
 * @module
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Rcode } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { classifyQuery, type Query } from "../../src/dns/query.ts";
import { createH2Transport } from "../../src/deno/h2_transport.ts";
import { DohUpstream, type DohUpstreamOptions } from "../../src/upstream/doh.ts";
import {
  type DohTransport,
  fetchTransport,
  TransportError,
} from "../../src/upstream/doh_transport.ts";
import { UpstreamError } from "../../src/upstream/types.ts";
import { decodePacket, encodePacket, makeQuery } from "../dns/fixtures.ts";
import { type LocalDohUpstream, startDohUpstream } from "../support/doh_upstream.ts";
import { type TestPki, testPki } from "../support/pki.ts";
import { answerFromZone, octetFor } from "../support/zone.ts";

function query(name = "www.example.test", id = 0x2b2b): Query {
  const c = classifyQuery(makeQuery({ id, name, opt: {} }));
  if (c.kind !== "query") throw new Error("fixture is not a query");
  return c.query;
}

/** What the plain-HTTP server saw of one request. */
interface Seen {
  method: string;
  search: URLSearchParams;
  contentType: string | null;
  accept: string | null;
  /** The DNS query, from the body (POST) or `?dns=` (GET). */
  query: Uint8Array;
}

/** How the server answers a query: a Response, or a body to send as `application/dns-message`. */
type Respond = (query: Uint8Array, request: Request) => Response | Uint8Array | Promise<Response>;

/** A plain-HTTP DoH server on a loopback port; `respond` decides each answer. */
function startServer() {
  const seen: Seen[] = [];
  const state: { respond: Respond } = { respond: (q) => answerFromZone(q) };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const url = new URL(req.url);
    const query = req.method === "GET"
      ? Uint8Array.fromBase64(url.searchParams.get("dns") ?? "", { alphabet: "base64url" })
      : new Uint8Array(await req.arrayBuffer());
    seen.push({
      method: req.method,
      search: url.searchParams,
      contentType: req.headers.get("content-type"),
      accept: req.headers.get("accept"),
      query,
    });
    const out = await state.respond(query, req);
    if (out instanceof Response) return out;
    return new Response(out.slice(), { headers: { "content-type": "application/dns-message" } });
  });
  const port = (server.addr as Deno.NetAddr).port;
  return { server, port, url: `http://127.0.0.1:${port}/dns-query`, seen, state };
}

let local: ReturnType<typeof startServer>;
const upstreams: DohUpstream[] = [];

function upstream(options: Partial<DohUpstreamOptions> = {}): DohUpstream {
  const u = new DohUpstream({ url: local.url, ...options });
  upstreams.push(u);
  return u;
}

/** The UpstreamError `exchange` rejects with (fails the test if it resolves or throws another). */
async function failure(u: DohUpstream, q = query()): Promise<UpstreamError> {
  const error = await u.exchange(q, AbortSignal.timeout(5_000)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(UpstreamError);
  return error as UpstreamError;
}

/** The zone's answer to `q`, changed by `edit` (a copy). */
function edited(q: Uint8Array, edit: (answer: Uint8Array) => void): Uint8Array {
  const answer = answerFromZone(q).slice();
  edit(answer);
  return answer;
}

beforeAll(() => {
  local = startServer();
});

afterEach(async () => {
  await Promise.all(upstreams.splice(0).map((u) => u.close()));
  local.seen.length = 0;
  local.state.respond = (q) => answerFromZone(q);
});

afterAll(async () => {
  await local.server.shutdown();
});

describe("DohUpstream: what goes on the wire", () => {
  it("POSTs the query with ID 0 as application/dns-message (RFC 8484 §4.1)", async () => {
    const q = query("post.example.test", 0x1234);
    await upstream().exchange(q, AbortSignal.timeout(5_000));
    const [s] = local.seen;
    expect(s.method).toBe("POST");
    expect(s.contentType).toBe("application/dns-message");
    expect(s.accept).toBe("application/dns-message");
    expect(Array.from(s.query.subarray(0, 2))).toEqual([0, 0]);
    expect(s.query.subarray(2)).toEqual(q.wire.subarray(2));
    expect(s.search.has("dns")).toBe(false);
  });

  it("GETs ?dns= as unpadded base64url of the query with ID 0, keeping the URL's own query", async () => {
    const q = query("get.example.test", 0x1234);
    await upstream({ method: "GET", url: `${local.url}?tenant=7` }).exchange(
      q,
      AbortSignal.timeout(5_000),
    );
    const [s] = local.seen;
    expect(s.method).toBe("GET");
    expect(s.contentType).toBeNull();
    expect(s.accept).toBe("application/dns-message");
    expect(s.search.get("tenant")).toBe("7");
    const dns = s.search.get("dns")!;
    expect(dns).not.toMatch(/[=+/]/);
    const sent = Uint8Array.fromBase64(dns, { alphabet: "base64url" });
    expect(Array.from(sent.subarray(0, 2))).toEqual([0, 0]);
    expect(sent.subarray(2)).toEqual(q.wire.subarray(2));
  });

  it("does not modify the client's query", async () => {
    const q = query("untouched.example.test", 0x4321);
    const before = q.wire.slice();
    await upstream().exchange(q, AbortSignal.timeout(5_000));
    expect(q.wire).toEqual(before);
  });

  it("gives the answer the client's ID back, with its parse", async () => {
    const q = query("answer.example.test", 0x7777);
    const answer = await upstream().exchange(q, AbortSignal.timeout(5_000));
    expect(answer.info.id).toBe(0x7777);
    expect(answer.info).toEqual(parseMessage(answer.wire));
    expect(answer.info.minTtl).toBeGreaterThan(0);
    const packet = decodePacket(answer.wire);
    const a = packet.answers?.[0];
    expect(a?.type === "A" ? a.data : undefined).toBe(`192.0.2.${octetFor("answer.example.test")}`);
  });
});

describe("DohUpstream: every answer is checked", () => {
  it("accepts application/dns-message with parameters or in another case", async () => {
    for (const type of ["application/dns-message; charset=binary", "Application/DNS-Message"]) {
      local.state.respond = (q) =>
        new Response(answerFromZone(q).slice(), { headers: { "content-type": type } });
      const answer = await upstream().exchange(query(), AbortSignal.timeout(5_000));
      expect(answer.info.id).toBe(0x2b2b);
    }
  });

  const rejected: {
    what: string;
    respond: Respond;
    kind: UpstreamError["kind"];
    message: RegExp;
    options?: Partial<DohUpstreamOptions>;
  }[] = [
    {
      what: "an HTTP status other than 200",
      respond: () => new Response("busy", { status: 503 }),
      kind: "http-status",
      message: /: HTTP 503$/,
    },
    {
      what: "another content type",
      respond: (q) =>
        new Response(answerFromZone(q).slice(), { headers: { "content-type": "text/html" } }),
      kind: "bad-answer",
      message: /content type "text\/html"/,
    },
    {
      what: "no content type",
      respond: (q) => new Response(new Blob([answerFromZone(q).slice()]).stream()),
      kind: "bad-answer",
      message: /content type ""/,
    },
    {
      what: "an answer over the size cap",
      respond: (q) => answerFromZone(q),
      kind: "bad-answer",
      message: /body (of \d+ bytes )?exceeds 20/,
      options: { maxAnswerSize: 20 },
    },
    {
      what: "an answer whose ID is not 0",
      respond: (q) => edited(q, (a) => (a[1] = 9)),
      kind: "bad-answer",
      message: /answer has ID 9, expected 0/,
    },
    {
      what: "an answer for another question",
      respond: () => answerFromZone(makeQuery({ id: 0, name: "other.example.test", opt: {} })),
      kind: "bad-answer",
      message: /answer is for another question/,
    },
    {
      what: "a message that is not a response",
      respond: (q) => q,
      kind: "bad-answer",
      message: /answer is not a response/,
    },
    {
      what: "a malformed answer",
      respond: (q) => answerFromZone(q).subarray(0, 20),
      kind: "bad-answer",
      message: /malformed answer/,
    },
    {
      what: "an empty body",
      respond: () => new Uint8Array(0),
      kind: "bad-answer",
      message: /malformed answer/,
    },
    {
      what: "a NOERROR answer without a question",
      respond: () =>
        encodePacket({ type: "response", id: 0, flags: 0x8180, questions: [], answers: [] }),
      kind: "bad-answer",
      message: /answer has no question section/,
    },
  ];
  it.each(rejected)("rejects $what as an UpstreamError", async (c) => {
    local.state.respond = c.respond;
    const error = await failure(upstream(c.options));
    expect(error.kind).toBe(c.kind);
    expect(error.message).toMatch(c.message);
    expect(error.message.startsWith(`upstream http://127.0.0.1:${local.port}: `)).toBe(true);
  });

  it("accepts an error answer without a question (some servers omit it in REFUSED)", async () => {
    local.state.respond = () =>
      encodePacket({ type: "response", id: 0, flags: 0x8180 | Rcode.REFUSED, questions: [] });
    const answer = await upstream().exchange(query(), AbortSignal.timeout(5_000));
    expect(answer.info.flags & 0x0f).toBe(Rcode.REFUSED);
    expect(answer.info.id).toBe(0x2b2b);
  });
});

describe("DohUpstream: failures, named", () => {
  it("names the upstream by scheme, host and port only: no credentials, path or query", async () => {
    local.state.respond = () => new Response("no", { status: 403 });
    const port = local.port;
    const u = upstream({ url: `http://user:secret@127.0.0.1:${port}/dns-query/acct42?token=t0k` });
    expect(u.name).toBe(`http://127.0.0.1:${port}`);
    const error = await failure(u);
    expect(error.upstream).toBe(`http://127.0.0.1:${port}`);
    expect(error.message).not.toMatch(/secret|acct42|t0k/);
  });

  it("takes the name it is given", () => {
    expect(upstream({ name: "primary" }).name).toBe("primary");
  });

  it("refuses a URL that is not http(s), naming it without credentials", () => {
    expect(() => new DohUpstream({ url: "ftp://user:pw@dns.example/dns-query" })).toThrow(
      /^upstream ftp:\/\/dns\.example: scheme must be https$/,
    );
  });

  it("reports a server nobody listens on as a network failure", async () => {
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (closed.addr as Deno.NetAddr).port;
    closed.close();
    const error = await failure(upstream({ url: `http://127.0.0.1:${port}/dns-query` }));
    expect(error.kind).toBe("network");
    expect(error.cause).toBeDefined();
  });

  it("retries once after a retryable transport failure (a stale pooled connection)", async () => {
    const real = fetchTransport();
    let calls = 0;
    const flaky: DohTransport = (request) =>
      ++calls === 1 ? Promise.reject(new TransportError("stale", true)) : real(request);
    const answer = await upstream({ transport: flaky }).exchange(
      query(),
      AbortSignal.timeout(5_000),
    );
    expect(answer.info.id).toBe(0x2b2b);
    expect(calls).toBe(2);
    expect(local.seen).toHaveLength(1);
  });

  it("does not retry a failure a fresh connection would not fix, nor a second one", async () => {
    for (const errors of [[false], [true, true]]) {
      let calls = 0;
      const failing: DohTransport = () =>
        Promise.reject(new TransportError(`refused ${calls}`, errors[calls++]));
      const error = await failure(upstream({ transport: failing }));
      expect(calls).toBe(errors.length);
      expect(error.kind).toBe("network");
      expect(error.message).toMatch(new RegExp(`refused ${errors.length - 1}$`));
    }
  });

  it("rejects with the signal's reason when the caller gives up, unwrapped", async () => {
    local.state.respond = (_q, req) =>
      new Promise((resolve) => req.signal.addEventListener("abort", () => resolve(new Response())));
    const controller = new AbortController();
    const reason = new Error("client left");
    const pending = upstream().exchange(query(), controller.signal);
    setTimeout(() => controller.abort(reason), 20);
    await expect(pending).rejects.toBe(reason);
  });

  it("fails every exchange after close as unavailable, without sending", async () => {
    const u = upstream();
    await u.close();
    const error = await failure(u);
    expect(error.kind).toBe("unavailable");
    expect(local.seen).toHaveLength(0);
  });
});

describe("DohUpstream over HTTPS, through both transports the edges use", () => {
  let pki: TestPki;
  let tls: LocalDohUpstream;
  let h2: ReturnType<typeof createH2Transport>;
  let http: Deno.HttpClient;

  beforeAll(async () => {
    pki = await testPki();
    tls = await startDohUpstream(pki);
    h2 = createH2Transport({ caCerts: [pki.ca.certPem] });
    http = Deno.createHttpClient({ caCerts: [pki.ca.certPem] });
  });

  afterAll(async () => {
    h2.close();
    http.close();
    await tls.close();
  });

  const cases = [
    { transport: "fetch", method: "POST" },
    { transport: "fetch", method: "GET" },
    { transport: "http2 client", method: "POST" },
    { transport: "http2 client", method: "GET" },
  ] as const;
  it.each(cases)("answers over $transport with $method", async ({ transport, method }) => {
    tls.mode = "ok";
    const u = upstream({
      url: tls.url,
      method,
      transport: transport === "fetch"
        ? fetchTransport((input, init) => fetch(input, { ...init, client: http }))
        : h2.transport,
    });
    const name = `${transport.replace(" ", "-")}-${method}.example.test`.toLowerCase();
    const answer = await u.exchange(query(name, 0x0a0b), AbortSignal.timeout(5_000));
    expect(answer.info.id).toBe(0x0a0b);
    expect(answer.info.question?.name).toBe(name);
    const seen = tls.requests.at(-1)!;
    expect([seen.method, seen.id, seen.name]).toEqual([method, 0, name]);
  });

  it.each(["fetch", "http2 client"] as const)(
    "turns the server's faults into named failures over %s",
    async (transport) => {
      const u = upstream({
        url: tls.url,
        transport: transport === "fetch"
          ? fetchTransport((input, init) => fetch(input, { ...init, client: http }))
          : h2.transport,
      });
      const kinds: Record<string, string> = {};
      for (const mode of ["http-500", "wrong-content-type", "wrong-id", "truncated", "oversize"]) {
        tls.mode = mode as LocalDohUpstream["mode"];
        kinds[mode] = (await failure(u)).kind;
      }
      tls.mode = "ok";
      expect(kinds).toEqual({
        "http-500": "http-status",
        "wrong-content-type": "bad-answer",
        "wrong-id": "bad-answer",
        "truncated": "bad-answer",
        "oversize": "bad-answer",
      });
    },
  );
});
