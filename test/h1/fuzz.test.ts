/**
 * The HTTP/1.1 server connection under random input: arbitrary bytes, and valid pipelined
 * requests with random octets replaced, inserted or deleted, each delivered in random pieces.
 * Whatever comes in, `receive` never throws, every request handed to the handler is answered in
 * order, a refusal is the last reply and closes the connection, and the end of input closes it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bytes, field, get, post, setUp, wait } from "./support.ts";

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;

/** Feeds `input` in pieces cut at `cuts`, then ends it, and checks what came out. */
async function check(input: Uint8Array, cuts: number[]): Promise<void> {
  const { peer, connection, seen } = setUp({ maxHeaderBytes: 512, maxBodyBytes: 256 });
  let at = 0;
  for (const cut of [...cuts.map((c) => c % (input.length + 1))].sort((a, b) => a - b)) {
    connection.receive(input.subarray(at, Math.max(at, cut)));
    at = Math.max(at, cut);
  }
  connection.receive(input.subarray(at));
  await wait();

  for (const request of seen) {
    expect(request.method).toMatch(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/);
    expect(request.path.startsWith("/")).toBe(true);
    for (const [name] of request.headers) expect(name).toMatch(TOKEN);
  }
  const noBody = seen.map((r) => r.method === "HEAD");
  const finals = peer.responses(noBody).filter((r) => r.status >= 200);
  const answered = finals.filter((r) => r.status === 200);
  expect(answered.length).toBe(seen.length);
  const refusals = finals.filter((r) => r.status !== 200);
  expect(refusals.length).toBeLessThanOrEqual(1);
  if (refusals.length === 1) {
    expect(finals.at(-1)).toBe(refusals[0]);
    expect([400, 413, 431, 501, 505]).toContain(refusals[0].status);
    expect(field(refusals[0], "connection")).toBe("close");
    expect(peer.closed).toBe(true);
  }
  connection.receiveEnd();
  await wait();
  expect(peer.closed).toBe(true);
  expect(connection.activeRequests).toBe(0);
}

const valid = [
  get("/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB", "Accept: */*\r\n"),
  post("\x00\x01body\r\n"),
  "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: v\r\n\r\n",
  "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n",
  "GET /old HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
  "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
  "GET http://abs.example/p?q HTTP/1.1\r\nHost: x\r\n\r\n",
];

const mutation = fc.record({
  at: fc.nat(),
  kind: fc.constantFrom("replace", "insert", "delete"),
  byte: fc.constantFrom(
    0x00,
    0x0a,
    0x0d,
    0x20,
    0x3a,
    0x2c,
    0x30,
    0x39,
    0x41,
    0x7f,
    0xff,
    0x3b,
    0x09,
  ),
});

describe("H1ServerConnection under random input", () => {
  it("survives arbitrary bytes in random pieces", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 2048 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (input, cuts) => check(input, cuts),
      ),
      { numRuns: 300 },
    );
  });

  it("survives arbitrary text around a request line", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.string({ unit: "binary-ascii", maxLength: 300 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (tail, cuts) => check(bytes("GET / HTTP/1.1\r\nHost: a\r\n" + tail), cuts),
      ),
      { numRuns: 300 },
    );
  });

  it("survives mutated pipelined requests in random pieces", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...valid), { minLength: 1, maxLength: 6 }),
        fc.array(mutation, { maxLength: 4 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        (requests, mutations, cuts) => {
          const octets = [...bytes(requests.join(""))];
          for (const m of mutations) {
            const at = m.at % (octets.length + 1);
            if (m.kind === "insert") octets.splice(at, 0, m.byte);
            else if (at < octets.length) {
              if (m.kind === "replace") octets[at] = m.byte;
              else octets.splice(at, 1);
            }
          }
          return check(Uint8Array.from(octets), cuts);
        },
      ),
      { numRuns: 400 },
    );
  });

  it("answers every unmutated pipeline in full", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...valid), { minLength: 1, maxLength: 6 }),
        fc.array(fc.nat(), { maxLength: 8 }),
        async (requests, cuts) => {
          const { peer, connection, seen } = setUp();
          const input = bytes(requests.join(""));
          let at = 0;
          for (const cut of cuts.map((c) => c % (input.length + 1)).sort((a, b) => a - b)) {
            connection.receive(input.subarray(at, cut));
            at = cut;
          }
          connection.receive(input.subarray(at));
          await wait();
          expect(seen.length).toBe(requests.length);
          const finals = peer.responses(seen.map((r) => r.method === "HEAD"))
            .filter((r) => r.status >= 200);
          expect(finals.map((r) => r.status)).toEqual(requests.map(() => 200));
          connection.destroy();
        },
      ),
      { numRuns: 200 },
    );
  });
});
