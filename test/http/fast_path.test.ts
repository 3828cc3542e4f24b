import { describe, expect, it } from "vitest";
import { wireRequest } from "../../src/http/fast_path.ts";

const Q = "AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB"; // RFC 8484's example query
const wire = Uint8Array.fromBase64(Q, { alphabet: "base64url" });

describe("wireRequest (the DoH fast path)", () => {
  it("recognises GET ?dns= and POST application/dns-message, with or without a tenant", () => {
    expect(wireRequest("GET", `/dns-query?dns=${Q}`)).toEqual({ wire, tenant: undefined });
    expect(wireRequest("GET", `/dns-query/Kids?dns=${Q}`)?.tenant).toBe("kids");
    expect(wireRequest("POST", "/dns-query", "application/dns-message", wire)?.wire).toBe(wire);
    expect(wireRequest("POST", "/dns-query/work", "Application/DNS-Message", wire)?.tenant).toBe(
      "work",
    );
  });

  it.each([
    ["another path", "GET", "/other?dns=" + Q, undefined],
    ["a nested path", "GET", `/dns-query/a/b?dns=${Q}`, undefined],
    ["no query string", "GET", "/dns-query", undefined],
    ["no dns parameter", "GET", "/dns-query?name=example.com", undefined],
    ["two dns parameters", "GET", `/dns-query?dns=${Q}&dns=${Q}`, undefined],
    ["bad base64url", "GET", "/dns-query?dns=AA+/", undefined],
    ["too short", "GET", "/dns-query?dns=AAAB", undefined],
    ["HEAD", "HEAD", `/dns-query?dns=${Q}`, undefined],
    ["PUT", "PUT", "/dns-query", "application/dns-message"],
    ["POST with another type", "POST", "/dns-query", "text/plain"],
  ])("leaves %s to the app", (_what, method, target, type) => {
    expect(wireRequest(method, target, type, wire)).toBeUndefined();
  });
});
