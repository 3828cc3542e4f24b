/**
 * The DoH face's handler (`dohFaceHandler`) as the own servers call it, with a logger that keeps
 * its lines: an authority no URL can hold is a 400 (never a 500 with the URL in an error line),
 * an error line never holds a query string, and a client that goes away (its signal aborted) is
 * not an error in the log, on the wire-format path, the JSON API and the app's other routes.
 */
import { describe, expect, it } from "vitest";
import { answerOf } from "../../src/dns/answer.ts";
import { createDohApp } from "../../src/http/app.ts";
import { joinedHeaderOf, type ServerRequest } from "../../src/serve/exchange.ts";
import { addressFromHeader, dohFaceHandler, type FetchApp } from "../../src/http/face.ts";
import { withoutQueries } from "../../src/http/redact.ts";
import { createLogger } from "../../src/log/mod.ts";
import type { Processor } from "../../src/resolver/processor.ts";
import { buildQuery } from "../support/dot_client.ts";
import { answerFromZone } from "../support/zone.ts";

const b64url = (bytes: Uint8Array) => bytes.toBase64({ alphabet: "base64url", omitPadding: true });
const text = new TextDecoder();

/** A processor that answers from the zone, or waits until the client goes away. */
const zone: Processor = (wire) => Promise.resolve(answerOf(answerFromZone(wire)));
const waitsForAbort: Processor = (_wire, ctx) =>
  new Promise((_, reject) =>
    ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason), { once: true })
  );

function setUp(process: Processor, app?: FetchApp) {
  const lines: string[] = [];
  const logger = createLogger({ level: "debug", sink: (line) => lines.push(line) });
  const handle = dohFaceHandler({
    app: app ?? createDohApp({ process, logger }),
    fast: { process, path: "/dns-query" },
    logger,
  });
  return { handle, lines };
}

function request(path: string, authority = "dns.example", signal = new AbortController().signal) {
  return { method: "GET", path, authority, headers: [], body: undefined, signal } as ServerRequest;
}

describe("dohFaceHandler: what reaches the log", () => {
  for (const authority of ["xn--a", "256.1.1.1", "a%2Fb", "dns.example:99999"]) {
    it(`answers 400 to the :authority ${authority}, which no URL takes, and logs nothing`, async () => {
      const { handle, lines } = setUp(zone);
      const reply = await handle(
        request("/dns-query?name=secret.example.test&type=A", authority),
        "192.0.2.1",
      );
      expect(reply.status).toBe(400);
      expect(text.decode(reply.body)).toBe("malformed :authority or Host");
      expect(lines).toEqual([]);
    });
  }

  it("keeps the query string out of an error line", async () => {
    const failing: FetchApp = {
      fetch: () => {
        throw new TypeError(
          "Invalid URL: 'https://dns.example/dns-query?name=secret.example.test'",
        );
      },
    };
    const { handle, lines } = setUp(zone, failing);
    const reply = await handle(request("/dns-query?name=secret.example.test"), "192.0.2.1");
    expect(reply.status).toBe(500);
    expect(lines.length).toBe(1);
    expect(lines[0]).toMatch(/level=error/);
    expect(lines[0]).not.toMatch(/secret/);
  });

  for (
    const [what, path] of [
      ["a wire-format query", `/dns-query?dns=${b64url(buildQuery("gone.example.test"))}`],
      ["a JSON API query", "/dns-query?name=gone.example.test&type=A"],
    ]
  ) {
    it(`logs ${what} whose client went away at debug, not as an error`, async () => {
      const { handle, lines } = setUp(waitsForAbort);
      const controller = new AbortController();
      const reply = handle(request(path, "dns.example", controller.signal), "192.0.2.1");
      await new Promise((r) => setTimeout(r, 5));
      controller.abort(new Error("the client reset the stream"));
      await reply.catch(() => undefined);
      expect(lines.filter((l) => !/level=debug/.test(l))).toEqual([]);
      expect(lines.join("\n")).not.toMatch(/gone\.example/);
    });
  }
});

describe("withoutQueries", () => {
  const cases: [string, string][] = [
    ["Invalid URL: 'https://a b/dns-query?name=secret'", "Invalid URL: 'https://a b/dns-query?…'"],
    ["GET /dns-query?dns=AAAB failed", "GET /dns-query?… failed"],
    ["upstream https://u.example/q?key=k1 timed out", "upstream https://u.example/q?… timed out"],
    ["what? nothing here", "what? nothing here"],
  ];
  for (const [input, output] of cases) {
    it(`turns ${JSON.stringify(input)} into ${JSON.stringify(output)}`, () => {
      expect(withoutQueries(input)).toBe(output);
    });
  }
});

function withHeaders(headers: [string, string][]): ServerRequest {
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
    const r = withHeaders([
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
