/**
 * The one way the DoH, DoT and DoQ upstreams turn a bad answer or a failed exchange into the
 * UpstreamError their callers catch.
 */
import { describe, expect, it } from "vitest";
import { parseMessage } from "../../src/dns/message.ts";
import { InvalidAnswerError } from "../../src/dns/response.ts";
import { checkedAnswer, upstreamFailure } from "../../src/upstream/failure.ts";
import { UpstreamError } from "../../src/upstream/types.ts";
import { makeQuery } from "../dns/fixtures.ts";

const NAME = "tls://192.0.2.53:853";
const query = parseMessage(makeQuery({ id: 0, name: "example.com" }));

/** What `fn` throws. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw");
}

describe("checkedAnswer", () => {
  it("returns the parse of a good answer", () => {
    const answer = makeQuery({ id: 0, name: "example.com", response: true });
    const info = checkedAnswer(NAME, query, answer, 0);
    expect(info.question?.name).toBe("example.com");
    expect(info.id).toBe(0);
  });

  it.each([
    [
      "a query instead of an answer",
      makeQuery({ id: 0, name: "example.com" }),
      0,
      /not a response/,
    ],
    ["another ID", makeQuery({ id: 9, name: "example.com", response: true }), 0, /has ID 9/],
    [
      "another question",
      makeQuery({ id: 0, name: "other.example", response: true }),
      0,
      /another question/,
    ],
    ["bytes that do not parse", Uint8Array.of(0, 0, 0x81), 0, /malformed answer/],
  ])("makes %s a bad-answer UpstreamError naming the upstream", (_what, answer, id, text) => {
    const error = thrown(() => checkedAnswer(NAME, query, answer, id));
    expect(error).toBeInstanceOf(UpstreamError);
    expect(error).toMatchObject({ upstream: NAME, kind: "bad-answer" });
    expect((error as Error).message).toMatch(new RegExp(`^upstream ${NAME}: `));
    expect((error as Error).message).toMatch(text);
    expect((error as Error).cause).toBeInstanceOf(InvalidAnswerError);
  });
});

describe("upstreamFailure", () => {
  it("passes an UpstreamError through as it is", () => {
    const original = new UpstreamError(NAME, "http-status", "HTTP 502");
    expect(upstreamFailure("another", original)).toBe(original);
  });

  it.each([
    [
      "a RangeError (oversize, bad framing)",
      new RangeError("answer over 65535 bytes"),
      "bad-answer",
    ],
    ["a connection error", new Error("connection refused"), "network"],
    ["a TypeError from fetch", new TypeError("fetch failed"), "network"],
    ["a thrown string", "reset", "network"],
  ])("makes %s a %s failure with the cause kept", (_what, cause, kind) => {
    const error = upstreamFailure(NAME, cause);
    expect(error).toMatchObject({ upstream: NAME, kind });
    expect(error.message).toBe(
      `upstream ${NAME}: ${cause instanceof Error ? cause.message : cause}`,
    );
    expect(error.cause).toBe(cause);
  });
});
