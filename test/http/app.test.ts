import dnsPacket from "dns-packet";
import { Buffer } from "node:buffer";
import { describe, expect, it } from "vitest";
import { answerOf, errorAnswer } from "../../src/dns/answer.ts";
import { Rcode } from "../../src/dns/constants.ts";
import { parseMessage } from "../../src/dns/message.ts";
import { createDohApp, type DohAppDeps } from "../../src/http/app.ts";
import type { DnsJsonResponse } from "../../src/http/json.ts";
import type { Processor } from "../../src/resolver/processor.ts";
import type { QueryContext } from "../../src/pipeline/types.ts";
import { answerFromZone, octetFor } from "../support/zone.ts";

const BASE = "http://doh.test";

function query(name: string, id: number, type: dnsPacket.RecordType = "A"): Uint8Array {
  return new Uint8Array(dnsPacket.encode({
    type: "query",
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: "IN" }],
  }));
}

function b64url(bytes: Uint8Array): string {
  return bytes.toBase64({ alphabet: "base64url", omitPadding: true });
}

function decode(bytes: ArrayBuffer): dnsPacket.DecodedPacket {
  return dnsPacket.decode(Buffer.from(bytes));
}

function rcodeOf(bytes: ArrayBuffer): number {
  return new Uint8Array(bytes)[3] & 0x0f;
}

/**
 * A stand-in processor answering from the test zone (IDs kept), with the processor's contract:
 * `null` for fewer than 12 bytes, SERVFAIL for `servfail.*`, and a throw for `throw.*`.
 */
function fakeProcessor() {
  const calls: { wire: Uint8Array; ctx: QueryContext }[] = [];
  const process: Processor = (wire, ctx) => {
    calls.push({ wire, ctx });
    if (wire.length < 12) return Promise.resolve(null);
    const info = parseMessage(wire);
    const name = info.question?.name ?? "";
    if (name.startsWith("throw.")) return Promise.reject(new Error("processor exploded"));
    if (name.startsWith("servfail.")) {
      return Promise.resolve(errorAnswer(wire, info, Rcode.SERVFAIL));
    }
    return Promise.resolve(answerOf(answerFromZone(wire)));
  };
  return { process, calls };
}

function appWith(deps: Partial<DohAppDeps> = {}) {
  const fake = fakeProcessor();
  const app = createDohApp({ process: fake.process, ...deps });
  return { app, calls: fake.calls };
}

function post(body: BodyInit | null, headers: Record<string, string> = {}): RequestInit {
  return {
    method: "POST",
    body,
    headers: { "content-type": "application/dns-message", ...headers },
  };
}

describe("DoH app: wire format (RFC 8484)", () => {
  it("answers GET ?dns= with the answer, its content type and max-age from the TTL", async () => {
    const { app, calls } = appWith();
    const res = await app.request(
      `${BASE}/dns-query?dns=${b64url(query("a.example.test", 0x1234))}`,
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/dns-message");
    expect(res.headers.get("cache-control")).toBe("max-age=300");
    const answer = decode(await res.arrayBuffer());
    expect(answer.id).toBe(0x1234);
    expect(answer.answers).toMatchObject([{
      type: "A",
      data: `192.0.2.${octetFor("a.example.test")}`,
    }]);
    expect(calls).toHaveLength(1);
    expect(calls[0].ctx.face).toBe("doh");
    expect(calls[0].ctx.signal).toBeInstanceOf(AbortSignal);
  });

  it("answers POST application/dns-message", async () => {
    const { app } = appWith();
    const res = await app.request(`${BASE}/dns-query`, post(query("b.example.test", 77).slice()));
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/dns-message");
    const answer = decode(await res.arrayBuffer());
    expect(answer.id).toBe(77);
    expect(answer.answers).toMatchObject([{ data: `192.0.2.${octetFor("b.example.test")}` }]);
  });

  it("accepts a content type with parameters and in another case", async () => {
    const { app } = appWith();
    const res = await app.request(
      `${BASE}/dns-query`,
      post(query("c.example.test", 5).slice(), { "content-type": "Application/DNS-Message; x=1" }),
    );
    expect(res.status).toBe(200);
  });

  it("keeps ID 0 as 0 and a non-zero ID as sent", async () => {
    const { app } = appWith();
    for (const id of [0, 1, 0xffff]) {
      const res = await app.request(
        `${BASE}/dns-query?dns=${b64url(query("id.example.test", id))}`,
      );
      expect(decode(await res.arrayBuffer()).id).toBe(id);
    }
  });

  it("tolerates base64url padding in ?dns=", async () => {
    const { app } = appWith();
    const q = query("pad.example.test", 9);
    const padded = q.toBase64({ alphabet: "base64url" });
    expect(padded.endsWith("=")).toBe(true);
    const res = await app.request(`${BASE}/dns-query?dns=${padded}`);
    expect(res.status).toBe(200);
    expect(decode(await res.arrayBuffer()).id).toBe(9);
  });

  it("sets max-age from the SOA for NXDOMAIN, and 0 for SERVFAIL", async () => {
    const { app } = appWith();
    const nx = await app.request(`${BASE}/dns-query?dns=${b64url(query("nx.example.test", 1))}`);
    expect(nx.status).toBe(200);
    expect(nx.headers.get("cache-control")).toBe("max-age=60");
    expect(rcodeOf(await nx.arrayBuffer())).toBe(Rcode.NXDOMAIN);
    const sf = await app.request(
      `${BASE}/dns-query?dns=${b64url(query("servfail.example.test", 2))}`,
    );
    expect(sf.status).toBe(200);
    expect(sf.headers.get("cache-control")).toBe("max-age=0");
    expect(rcodeOf(await sf.arrayBuffer())).toBe(Rcode.SERVFAIL);
  });

  it("passes the client address from env.remoteAddr, or from a custom clientAddress", async () => {
    const dflt = appWith();
    await dflt.app.request(
      `${BASE}/dns-query?dns=${b64url(query("a.example.test", 1))}`,
      {},
      { remoteAddr: "198.51.100.7" },
    );
    expect(dflt.calls[0].ctx.client).toEqual({ address: "198.51.100.7" });
    await dflt.app.request(`${BASE}/dns-query?dns=${b64url(query("a.example.test", 1))}`);
    expect(dflt.calls[1].ctx.client).toBeUndefined();

    const custom = appWith({ clientAddress: (c) => c.req.header("x-test-client") });
    await custom.app.request(`${BASE}/dns-query?dns=${b64url(query("a.example.test", 1))}`, {
      headers: { "x-test-client": "203.0.113.9" },
    });
    expect(custom.calls[0].ctx.client).toEqual({ address: "203.0.113.9" });
  });

  it("serves HEAD like GET without a body", async () => {
    const { app, calls } = appWith();
    const res = await app.request(
      `${BASE}/dns-query?dns=${b64url(query("head.example.test", 3))}`,
      { method: "HEAD" },
    );
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/dns-message");
    expect((await res.arrayBuffer()).byteLength).toBe(0);
    expect(calls).toHaveLength(1);
  });

  it("serves a custom path and 404s the default one", async () => {
    const { app } = appWith({ path: "/q" });
    const ok = await app.request(`${BASE}/q?dns=${b64url(query("a.example.test", 1))}`);
    expect(ok.status).toBe(200);
    const gone = await app.request(`${BASE}/dns-query?dns=${b64url(query("a.example.test", 1))}`);
    expect(gone.status).toBe(404);
  });

  const badRequests: { what: string; url: string; init?: RequestInit; body: RegExp }[] = [
    { what: "GET without dns", url: "/dns-query", body: /missing dns/ },
    { what: "GET with an empty dns", url: "/dns-query?dns=", body: /empty/ },
    {
      what: "GET with characters outside base64url",
      url: "/dns-query?dns=AA*A",
      body: /base64url/,
    },
    { what: "GET with standard base64 (+ and /)", url: "/dns-query?dns=AB+/CD", body: /base64url/ },
    { what: "GET with a lone trailing character", url: "/dns-query?dns=AAAAA", body: /base64url/ },
    { what: "GET with too few bytes for a header", url: "/dns-query?dns=AAEC", body: /not a DNS/ },
    { what: "POST with an empty body", url: "/dns-query", init: post(null), body: /empty/ },
    {
      what: "POST with too few bytes for a header",
      url: "/dns-query",
      init: post(new Uint8Array([1, 2, 3])),
      body: /not a DNS/,
    },
  ];
  it.each(badRequests)("answers 400 to $what", async ({ url, init, body }) => {
    const { app } = appWith();
    const res = await app.request(`${BASE}${url}`, init);
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(body);
  });

  it("answers 413 over the size cap: GET, POST by Content-Length, POST streamed", async () => {
    const { app, calls } = appWith({ maxQuerySize: 100 });
    const big = new Uint8Array(101);
    big.set(query("a.example.test", 1));
    const get = await app.request(`${BASE}/dns-query?dns=${b64url(big)}`);
    expect(get.status).toBe(413);
    const declared = await app.request(`${BASE}/dns-query`, post(big));
    expect(declared.status).toBe(413);
    const stream = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(big.subarray(0, 60));
        controller.enqueue(big.subarray(60));
        controller.close();
      },
    });
    const streamed = await app.request(`${BASE}/dns-query`, {
      ...post(stream),
      duplex: "half",
    } as RequestInit);
    expect(streamed.status).toBe(413);
    expect(calls).toHaveLength(0);
    const exact = await app.request(`${BASE}/dns-query`, post(big.subarray(0, 100).slice()));
    expect(exact.status).not.toBe(413);
  });

  it("caps the size at 65535 even when asked for more", async () => {
    const { app } = appWith({ maxQuerySize: 1_000_000 });
    const res = await app.request(`${BASE}/dns-query`, post(new Uint8Array(65536)));
    expect(res.status).toBe(413);
  });

  it.each([
    ["text/plain", { "content-type": "text/plain" }],
    ["application/dns-json", { "content-type": "application/dns-json" }],
    ["no content type", { "content-type": "" }],
  ])("answers 415 to a POST with %s", async (_what, headers) => {
    const { app, calls } = appWith();
    const res = await app.request(
      `${BASE}/dns-query`,
      post(query("a.example.test", 1).slice(), headers),
    );
    expect(res.status).toBe(415);
    expect(calls).toHaveLength(0);
  });

  it.each(["PUT", "DELETE", "PATCH", "OPTIONS"])(
    "answers 405 with Allow to %s on the DoH path",
    async (method) => {
      const { app } = appWith();
      const res = await app.request(`${BASE}/dns-query`, { method });
      expect(res.status).toBe(405);
      expect(res.headers.get("allow")).toBe("GET, POST");
    },
  );

  it.each(["/other", "/dns-query/a/b", "/dns-query/bad_label", "/dns-query.php"])(
    "answers 404 to %s",
    async (path) => {
      const { app } = appWith();
      const res = await app.request(`${BASE}${path}`);
      expect(res.status).toBe(404);
      expect(await res.text()).toBe("not found");
    },
  );

  it("passes the tenant named by /dns-query/<tenant> to the processor, lower-cased", async () => {
    const { app, calls } = appWith();
    const res = await app.request(
      `${BASE}/dns-query/Kids`,
      post(query("t.example.test", 5).slice()),
    );
    expect(res.status).toBe(200);
    const get = await app.request(
      `${BASE}/dns-query/work?dns=${b64url(query("t.example.test", 6))}`,
    );
    expect(get.status).toBe(200);
    const plain = await app.request(`${BASE}/dns-query`, post(query("t.example.test", 7).slice()));
    expect(plain.status).toBe(200);
    expect(calls.map((c) => c.ctx.tenant)).toEqual(["kids", "work", undefined]);
  });

  it("answers 500 when the processor throws, without leaking the error", async () => {
    const { app } = appWith();
    const res = await app.request(
      `${BASE}/dns-query?dns=${b64url(query("throw.example.test", 1))}`,
    );
    expect(res.status).toBe(500);
    expect(await res.text()).not.toMatch(/exploded/);
  });
});

describe("DoH app: JSON API", () => {
  async function json(app: ReturnType<typeof appWith>["app"], qs: string, accept = true) {
    const res = await app.request(`${BASE}/dns-query?${qs}`, {
      headers: accept ? { accept: "application/dns-json" } : {},
    });
    return { res, body: await res.json() as DnsJsonResponse & { error?: string } };
  }

  it("answers an A query in Google's shape, with max-age", async () => {
    const { app, calls } = appWith();
    const { res, body } = await json(app, "name=json.example.test");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/dns-json");
    expect(res.headers.get("cache-control")).toBe("max-age=300");
    expect(body).toEqual({
      Status: 0,
      TC: false,
      RD: true,
      RA: true,
      AD: false,
      CD: false,
      Question: [{ name: "json.example.test.", type: 1 }],
      Answer: [{
        name: "json.example.test.",
        type: 1,
        TTL: 300,
        data: `192.0.2.${octetFor("json.example.test")}`,
      }],
    });
    expect(calls[0].ctx.face).toBe("doh");
  });

  it("answers AAAA asked by ?ct= without an Accept header", async () => {
    const { app } = appWith();
    const { res, body } = await json(
      app,
      "name=six.example.test&type=AAAA&ct=application/dns-json",
      false,
    );
    expect(res.status).toBe(200);
    expect(body.Answer).toEqual([{
      name: "six.example.test.",
      type: 28,
      TTL: 300,
      data: `2001:db8::${octetFor("six.example.test").toString(16)}`,
    }]);
  });

  it("answers NXDOMAIN with Status 3 and the SOA under Authority", async () => {
    const { app } = appWith();
    const { res, body } = await json(app, "name=nx.example.test&type=A");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("max-age=60");
    expect(body.Status).toBe(3);
    expect(body.Answer).toBeUndefined();
    expect(body.Authority).toEqual([{
      name: "example.test.",
      type: 6,
      TTL: 300,
      data: "ns.example.test. hostmaster.example.test. 1 3600 600 86400 60",
    }]);
  });

  it("answers TXT with the quoted string, by type number", async () => {
    const { app } = appWith();
    const { body } = await json(app, "name=text.example.test&type=16");
    expect(body.Question).toEqual([{ name: "text.example.test.", type: 16 }]);
    expect(body.Answer).toEqual([{
      name: "text.example.test.",
      type: 16,
      TTL: 60,
      data: '"text.example.test"',
    }]);
  });

  it("sends DO and CD to the processor when asked", async () => {
    const { app, calls } = appWith();
    await json(app, "name=flags.example.test&do=1&cd=1");
    const q = decode(calls[0].wire.slice().buffer);
    expect(q.flag_cd).toBe(true);
    expect(q.flag_rd).toBe(true);
    expect((q.additionals!.find((r) => r.type === "OPT") as dnsPacket.OptAnswer).flag_do).toBe(
      true,
    );
  });

  it.each([
    ["a bad type", "name=example.test&type=NOPE", /invalid type/],
    ["a bad name", "name=bad..example.test", /invalid name/],
    ["no name with Accept: application/dns-json", "type=A", /missing name/],
  ])("answers 400 with a JSON error to %s", async (_what, qs, error) => {
    const { app, calls } = appWith();
    const { res, body } = await json(app, qs);
    expect(res.status).toBe(400);
    expect(body.error).toMatch(error);
    expect(calls).toHaveLength(0);
  });

  it("is off with jsonApi: false (a ?name= request is then a 400)", async () => {
    const { app, calls } = appWith({ jsonApi: false });
    const res = await app.request(`${BASE}/dns-query?name=example.test`, {
      headers: { accept: "application/dns-json" },
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/missing dns/);
    expect(calls).toHaveLength(0);
  });

  it("answers 500 in JSON when the processor fails", async () => {
    const { app } = appWith();
    const { res, body } = await json(app, "name=throw.example.test");
    expect(res.status).toBe(500);
    expect(body.error).toBe("internal error");
  });
});

describe("DoH app: health and landing page", () => {
  it("answers /health with status ok and the extra fields", async () => {
    const { app } = appWith({ health: () => ({ dotConnections: 3 }) });
    const res = await app.request(`${BASE}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", dotConnections: 3 });
  });

  it("describes the endpoint at / with the DoH URL, DoT port and SPKI pin", async () => {
    const { app } = appWith({ landing: () => ({ dotPort: 853, spkiPin: "PIN=" }) });
    const res = await app.request("https://dns.example:8443/");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain("https://dns.example:8443/dns-query");
    expect(text).toContain("dns.example port 853");
    expect(text).toContain("SPKI pin (sha256): PIN=");
    expect(text).toContain("application/dns-json");
  });

  it("uses a static landing object as given", async () => {
    const { app } = appWith({
      jsonApi: false,
      landing: { dohUrl: "https://x.example/dns-query", dotHost: "x.example", dotPort: 853 },
    });
    const text = await (await app.request(`${BASE}/`)).text();
    expect(text).toContain("DNS over HTTPS:  https://x.example/dns-query");
    expect(text).toContain("x.example port 853");
    expect(text).not.toContain("application/dns-json");
  });
});
