import { describe, expect, it } from "vitest";
import { joinedHeaderOf, type ServerRequest } from "../../src/http/exchange.ts";
import { addressFromHeader } from "../../src/http/face.ts";

function request(headers: [string, string][]): ServerRequest {
  return {
    method: "GET",
    path: "/",
    authority: "localhost",
    headers,
    body: undefined,
    signal: new AbortController().signal,
  };
}

describe("joinedHeaderOf", () => {
  it("joins every field line of the name, in order", () => {
    const r = request([
      ["x-forwarded-for", "198.51.100.7"],
      ["accept", "*/*"],
      ["x-forwarded-for", "203.0.113.1, 192.0.2.9"],
    ]);
    expect(joinedHeaderOf(r, "x-forwarded-for")).toBe("198.51.100.7, 203.0.113.1, 192.0.2.9");
    expect(joinedHeaderOf(r, "accept")).toBe("*/*");
    expect(joinedHeaderOf(r, "x-real-ip")).toBeUndefined();
  });
});

describe("addressFromHeader", () => {
  it.each([
    // A client's forged line first, the proxy's own line (HAProxy `option forwardfor`) last.
    ["198.51.100.7, 192.0.2.9", "192.0.2.9"],
    // The proxy extended the client's line (nginx `$proxy_add_x_forwarded_for`).
    ["198.51.100.7,192.0.2.9", "192.0.2.9"],
    ["  2001:db8::1  ", "2001:db8::1"],
    ["192.0.2.9", "192.0.2.9"],
    ["198.51.100.7, ", "127.0.0.1"],
    ["", "127.0.0.1"],
    [undefined, "127.0.0.1"],
  ])("%j names %s", (value, expected) => {
    expect(addressFromHeader(value, "127.0.0.1")).toBe(expected);
  });
});
