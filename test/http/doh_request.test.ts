import { describe, expect, it } from "vitest";
import { type DohRequestParts, parseDohRequest } from "../../src/http/doh_request.ts";

const Q = "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"; // RFC 8484's example query
const wire = Uint8Array.fromBase64(Q, { alphabet: "base64url" });
const OPTIONS = { path: "/dns-query", maxQuerySize: 65535, jsonApi: true };
const DNS_MESSAGE = "application/dns-message";

function parse(parts: DohRequestParts, options = OPTIONS) {
  return parseDohRequest(parts, options);
}

describe("parseDohRequest", () => {
  it("recognises GET ?dns= and POST application/dns-message, with or without a tenant", () => {
    expect(parse({ method: "GET", target: `/dns-query?dns=${Q}` })).toEqual({
      kind: "query",
      wire,
      tenant: undefined,
    });
    expect(parse({ method: "GET", target: `/dns-query/Kids?dns=${Q}` })).toMatchObject({
      kind: "query",
      tenant: "kids",
    });
    expect(parse({ method: "HEAD", target: `/dns-query?dns=${Q}` })).toMatchObject({
      kind: "query",
    });
    expect(parse({ method: "GET", target: `/dns-query?ct=&dns=${Q}` })).toMatchObject({
      kind: "query",
      wire,
    });
    const post = parse({
      method: "POST",
      target: "/dns-query",
      contentType: DNS_MESSAGE,
      body: wire,
    });
    expect(post).toEqual({ kind: "query", wire, tenant: undefined });
    const typed = parse({
      method: "POST",
      target: "/dns-query/work",
      contentType: "Application/DNS-Message; x=1",
      body: wire,
    });
    expect(typed).toMatchObject({ kind: "query", tenant: "work" });
  });

  it("reads a POST body through a capped reader, and only after the headers pass", async () => {
    const limits: number[] = [];
    const body = (limit: number) => {
      limits.push(limit);
      return Promise.resolve(wire);
    };
    const parsed = parse({ method: "POST", target: "/dns-query", contentType: DNS_MESSAGE, body });
    expect(parsed).toBeInstanceOf(Promise);
    expect(await parsed).toMatchObject({ kind: "query", wire });
    expect(parse({ method: "POST", target: "/dns-query", contentType: "text/plain", body }))
      .toMatchObject({ kind: "error", status: 415 });
    const over = parse({
      method: "POST",
      target: "/dns-query",
      contentType: DNS_MESSAGE,
      body: () => Promise.resolve(undefined),
    });
    expect(await over).toMatchObject({ kind: "error", status: 413 });
    expect(limits).toEqual([65535]);
  });

  it.each([
    ["another path", "GET", "/other?dns=" + Q],
    ["a nested path", "GET", `/dns-query/a/b?dns=${Q}`],
    ["a bad tenant label", "GET", `/dns-query/bad_label?dns=${Q}`],
    ["a longer path", "GET", `/dns-query.php?dns=${Q}`],
  ])("leaves %s to the app's other routes", (_what, method, target) => {
    expect(parse({ method, target })).toEqual({ kind: "elsewhere" });
  });

  it("hands JSON API requests to the app, by ?name= or by Accept", () => {
    expect(parse({ method: "GET", target: "/dns-query/kids?name=example.com" })).toEqual({
      kind: "json",
      tenant: "kids",
    });
    expect(parse({ method: "GET", target: "/dns-query", accept: "application/dns-json" }))
      .toMatchObject({ kind: "json" });
    expect(parse({ method: "GET", target: "/dns-query?name=x" }, { ...OPTIONS, jsonApi: false }))
      .toMatchObject({ kind: "error", status: 400, message: "missing dns parameter" });
  });

  it.each([
    ["no query string", "GET", "/dns-query", 400, "missing dns parameter"],
    ["no dns parameter", "GET", "/dns-query?type=A", 400, "missing dns parameter"],
    ["bad base64url", "GET", "/dns-query?dns=AA+/", 400, "dns parameter is not base64url"],
    ["a lone trailing character", "GET", "/dns-query?dns=AAAAA", 400, /base64url/],
    ["an empty dns parameter", "GET", "/dns-query?dns=", 400, "empty DNS query"],
    ["an oversized dns parameter", "GET", `/dns-query?dns=${"A".repeat(90_000)}`, 413, /over/],
    ["PUT", "PUT", "/dns-query", 405, "method not allowed"],
    ["DELETE on a tenant path", "DELETE", "/dns-query/kids", 405, "method not allowed"],
  ])("answers %s with an error that says why", (_what, method, target, status, message) => {
    const parsed = parse({ method, target });
    expect(parsed).toMatchObject({ kind: "error", status });
    expect((parsed as { message: string }).message).toMatch(message);
  });

  it("answers 413 for a declared, a read or an encoded size over the cap", () => {
    const small = { ...OPTIONS, maxQuerySize: 20 };
    const post = { method: "POST", target: "/dns-query", contentType: DNS_MESSAGE };
    expect(parse({ ...post, contentLength: "21", body: wire }, small)).toMatchObject({
      status: 413,
      message: "DNS query over 20 bytes",
    });
    expect(parse({ ...post, body: wire }, small)).toMatchObject({ status: 413 });
    expect(parse({ method: "GET", target: `/dns-query?dns=${Q}` }, small)).toMatchObject({
      status: 413,
    });
    expect(parse({ ...post, body: new Uint8Array(0) })).toMatchObject({
      status: 400,
      message: "empty DNS query",
    });
  });
});
