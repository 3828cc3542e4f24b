/**
 * The HTTP/1.1 server connection against scripted input on an in-memory socket: requests split
 * at every byte, pipelining, keep-alive rules, framing refusals, limits, deadlines, shutdown.
 * Garbage input is in fuzz.test.ts.
 */
import { describe, expect, it } from "vitest";
import type { ServerReply } from "../../src/serve/exchange.ts";
import { bytes, field, get, post, readResponses, setUp, wait } from "./support.ts";

describe("H1ServerConnection: requests and replies", () => {
  it("answers a GET with status line, the handler's fields, content-length and date", async () => {
    const { peer, connection, seen } = setUp();
    connection.receive(bytes(get("/dns-query?dns=AAAB", "Accept: application/dns-message\r\n")));
    await wait();
    expect(peer.text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    const [response] = peer.responses();
    expect(field(response, "content-type")).toBe("text/plain");
    expect(field(response, "content-length")).toBe(String(response.body.length));
    expect(field(response, "date")).toMatch(/^\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$/);
    expect(field(response, "connection")).toBeUndefined();
    expect(response.body).toBe("GET /dns-query?dns=AAAB -");
    expect(seen[0]).toMatchObject({
      method: "GET",
      path: "/dns-query?dns=AAAB",
      authority: "dns.example",
      body: undefined,
    });
    expect(seen[0].headers).toEqual([["host", "dns.example"], [
      "accept",
      "application/dns-message",
    ]]);
    expect(peer.closed).toBe(false);
    expect(connection.activeRequests).toBe(0);
    connection.destroy();
  });

  it("lower-cases names and keeps value octets as one char each (binary strings)", async () => {
    const { connection, seen } = setUp();
    connection.receive(bytes(get("/", "X-Mixed-Case:  caf\xe9 \xff\t \r\nX-Empty:\r\n")));
    await wait();
    expect(seen[0].headers).toContainEqual(["x-mixed-case", "caf\u00e9 \u00ff"]);
    expect(seen[0].headers).toContainEqual(["x-empty", ""]);
    connection.destroy();
  });

  it("passes a POST body, and an empty one for a POST without Content-Length", async () => {
    const { peer, connection, seen } = setUp();
    connection.receive(bytes(post("\x00\x01\xff") + post("")));
    await wait();
    expect([...seen[0].body!]).toEqual([0, 1, 255]);
    expect(seen[1].body!.length).toBe(0);
    expect(peer.responses().map((r) => r.body)).toEqual(["POST /dns-query 3", "POST /dns-query 0"]);
    connection.destroy();
  });

  it("reads node Buffers from a shared pool (views with an offset)", async () => {
    const { Buffer } = await import("node:buffer");
    const pool = Buffer.from("xxxx" + post("\xe9!") + "yyyy", "latin1");
    const { peer, connection, seen } = setUp();
    const request = pool.subarray(4, pool.length - 4);
    connection.receive(request.subarray(0, 20));
    connection.receive(request.subarray(20));
    await wait();
    expect([...seen[0].body!]).toEqual([0xe9, 0x21]);
    expect(peer.responses()[0].status).toBe(200);
    connection.destroy();
  });

  it("turns an absolute-form target into path and authority", async () => {
    const { connection, seen } = setUp();
    connection.receive(
      bytes(
        "GET https://dns.example:8443/dns-query?dns=AA HTTP/1.1\r\nHost: other\r\n\r\n" +
          "GET HTTP://h.example?x=1 HTTP/1.1\r\nHost: h.example\r\n\r\n" +
          "GET http://h.example HTTP/1.1\r\nHost: h.example\r\n\r\n",
      ),
    );
    await wait();
    expect(seen.map((r) => [r.path, r.authority])).toEqual([
      ["/dns-query?dns=AA", "dns.example:8443"],
      ["/?x=1", "h.example"],
      ["/", "h.example"],
    ]);
    connection.destroy();
  });

  it("reads chunked bodies, with extensions and trailers", async () => {
    const { peer, connection, seen } = setUp();
    connection.receive(
      bytes(
        "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n" +
          "3;name=value\r\nabc\r\nA \r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n" + get("/next"),
      ),
    );
    await wait();
    expect(new TextDecoder().decode(seen[0].body)).toBe("abc0123456789");
    expect(peer.responses().map((r) => r.body)).toEqual(["POST /c 13", "GET /next -"]);
    connection.destroy();
  });

  it("ignores empty lines before a request", async () => {
    const { peer, connection } = setUp();
    connection.receive(bytes("\r\n\r\n" + get("/a")));
    connection.receive(bytes("\r"));
    connection.receive(bytes("\n" + get("/b")));
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([200, 200]);
    connection.destroy();
  });

  it("answers HEAD with the fields only", async () => {
    const { peer, connection } = setUp();
    connection.receive(bytes("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n" + get("/y")));
    await wait();
    const [head, next] = peer.responses([true, false]);
    expect(field(head, "content-length")).toBe(String("HEAD /x -".length));
    expect(head.body).toBe("");
    expect(next.body).toBe("GET /y -");
    connection.destroy();
  });

  it("drops the handler's framing fields and sets its own", async () => {
    const { peer, connection } = setUp({ date: false }, () =>
      Promise.resolve({
        status: 200,
        headers: [
          ["Content-Length", "999"],
          ["connection", "close"],
          ["transfer-encoding", "chunked"],
          ["keep-alive", "timeout=5"],
          ["X-Kept", "yes"],
        ],
        body: bytes("ok"),
      }));
    connection.receive(bytes(get()));
    await wait();
    expect(peer.text).toBe("HTTP/1.1 200 OK\r\nx-kept: yes\r\ncontent-length: 2\r\n\r\nok");
    expect(peer.closed).toBe(false);
    connection.destroy();
  });

  it("sends no body and no content-length for 204 and 304", async () => {
    let status = 204;
    const { peer, connection } = setUp(
      { date: false },
      () =>
        Promise.resolve({ status: status++ === 204 ? 204 : 304, headers: [], body: bytes("x") }),
    );
    connection.receive(bytes(get() + get()));
    await wait();
    expect(peer.text).toBe("HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\n\r\n");
    connection.destroy();
  });

  it("answers 500 to a handler that rejects, throws, or replies with an unsendable field", async () => {
    const replies: (() => Promise<ServerReply>)[] = [
      () => Promise.reject(new Error("boom")),
      () => {
        throw new Error("sync boom");
      },
      () =>
        Promise.resolve({ status: 200, headers: [["x-a", "1\r\nx-injected: 1"]], body: bytes("") }),
      () => Promise.resolve({ status: 200, headers: [["bad name", "1"]], body: bytes("") }),
      () => Promise.resolve({ status: 200, headers: [["x-a", "\u0100"]], body: bytes("") }),
      () => Promise.resolve({ status: 42, headers: [], body: bytes("") }),
      () => Promise.resolve(undefined as unknown as ServerReply),
    ];
    let i = 0;
    const { peer, connection } = setUp({}, () => replies[i++]());
    connection.receive(bytes(get().repeat(replies.length)));
    await wait();
    const responses = peer.responses();
    expect(responses.map((r) => r.status)).toEqual(replies.map(() => 500));
    expect(peer.text).not.toContain("x-injected");
    expect(peer.closed).toBe(false);
    connection.destroy();
  });
});

describe("H1ServerConnection: split reads", () => {
  const requests: [string, string][] = [
    ["GET", get("/dns-query?dns=AAABAAABAAAAAAAAA3d3dwdleGFtcGxlA2NvbQAAAQAB", "Accept: x\r\n")],
    ["POST", post("hello body")],
    [
      "chunked",
      "POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5;e=1\r\nhello\r\n1\r\n!\r\n0\r\nT: 1\r\n\r\n",
    ],
  ];
  for (const [name, request] of requests) {
    it(`parses a ${name} split at every byte boundary, then a second request after it`, async () => {
      const whole = request + get("/after");
      for (let cut = 1; cut < whole.length; cut++) {
        const { peer, connection, seen } = setUp({ date: false });
        connection.receive(bytes(whole.slice(0, cut)));
        connection.receive(bytes(whole.slice(cut)));
        await wait();
        expect(seen.length, `cut at ${cut}`).toBe(2);
        expect(peer.responses().map((r) => r.status), `cut at ${cut}`).toEqual([200, 200]);
        expect(seen[1].path).toBe("/after");
        connection.destroy();
      }
    });

    it(`parses a ${name} delivered one byte at a time`, async () => {
      const { peer, connection, seen } = setUp({ date: false });
      for (const c of request + request) connection.receive(bytes(c));
      await wait();
      expect(seen.length).toBe(2);
      expect(seen[0]).toMatchObject({ method: seen[1].method, path: seen[1].path });
      expect(peer.responses().map((r) => r.body)).toEqual([
        peer.responses()[0].body,
        peer.responses()[0].body,
      ]);
      connection.destroy();
    });
  }

  it("answers a body split at every byte with the same octets", () => {
    const body = "\x00\r\n\r\n\xffGET / HTTP/1.1\r\n";
    const whole = post(body);
    for (let cut = 1; cut < whole.length; cut++) {
      const { connection, seen } = setUp();
      connection.receive(bytes(whole.slice(0, cut)));
      connection.receive(bytes(whole.slice(cut)));
      expect([...seen[0].body!]).toEqual([...bytes(body)]);
      connection.destroy();
    }
  });
});

describe("H1ServerConnection: pipelining", () => {
  it("answers pipelined requests in order when handlers finish out of order, in one write", async () => {
    const delays: Record<string, number> = { "/1": 60, "/2": 10, "/3": 30 };
    const { peer, connection } = setUp({}, async (request) => {
      await wait(delays[request.path]);
      return { status: 200, headers: [], body: bytes(request.path) };
    });
    connection.receive(bytes(get("/1") + get("/2") + get("/3")));
    expect(connection.activeRequests).toBe(3);
    await wait(100);
    expect(peer.responses().map((r) => r.body)).toEqual(["/1", "/2", "/3"]);
    expect(peer.writes.length).toBe(1);
    connection.destroy();
  });

  it("writes the replies that are ready together in one write", async () => {
    const { peer, connection } = setUp();
    connection.receive(bytes(get("/a").repeat(10)));
    await wait();
    expect(peer.responses().length).toBe(10);
    expect(peer.writes.length).toBe(1);
    connection.destroy();
  });

  it("stops reading past maxPipelined and resumes as replies go out", async () => {
    const releases: (() => void)[] = [];
    const { peer, connection, seen } = setUp({ maxPipelined: 2 }, async (request) => {
      await new Promise<void>((r) => releases.push(r));
      return { status: 200, headers: [], body: bytes(request.path) };
    });
    connection.receive(bytes([1, 2, 3, 4, 5].map((n) => get(`/${n}`)).join("")));
    connection.receive(bytes(get("/6")));
    expect(seen.length).toBe(2);
    expect(peer.pauses).toBe(1);
    expect(connection.activeRequests).toBe(2);
    for (let round = 0; round < 10 && seen.length < 6; round++) {
      releases.splice(0).forEach((r) => r());
      await wait();
    }
    releases.splice(0).forEach((r) => r());
    await wait();
    expect(peer.responses().map((r) => r.body)).toEqual(["/1", "/2", "/3", "/4", "/5", "/6"]);
    expect(peer.resumes).toBeGreaterThanOrEqual(1);
    expect(peer.pauses).toBe(peer.resumes);
    connection.destroy();
  });

  it("answers a large burst delivered in one read after a partial head", async () => {
    const { peer, connection } = setUp({ date: false });
    connection.receive(bytes("GET /0 HT"));
    const burst = "TP/1.1\r\nHost: a\r\n\r\n" +
      Array.from({ length: 4000 }, (_, i) => get(`/${i + 1}`)).join("");
    expect(burst.length).toBeGreaterThan(128 * 1024);
    connection.receive(bytes(burst));
    for (let i = 0; i < 500 && peer.responses().length < 4001; i++) await wait();
    const bodies = peer.responses().map((r) => r.body);
    expect(bodies.length).toBe(4001);
    expect(bodies.every((b, i) => b === `GET /${i} -`)).toBe(true);
    expect(peer.closed).toBe(false);
    connection.destroy();
  });

  it("closes a connection that keeps sending while paused past the bound", () => {
    const { peer, connection, reasons } = setUp(
      { maxPipelined: 1 },
      () => new Promise(() => {}),
    );
    connection.receive(bytes(get()));
    const junk = bytes(get().repeat(1000));
    for (let i = 0; i < 20 && !peer.closed; i++) connection.receive(junk);
    expect(peer.closed).toBe(true);
    expect(reasons[0]).toMatch(/too much input/);
  });
});

describe("H1ServerConnection: keep-alive and close", () => {
  it("keeps an HTTP/1.1 connection open and closes after `Connection: close`", async () => {
    const { peer, connection, seen, reasons } = setUp();
    connection.receive(bytes(get("/1")));
    await wait();
    expect(peer.closed).toBe(false);
    connection.receive(bytes(get("/2", "Connection: keep-alive, Close\r\n") + get("/3")));
    await wait();
    const responses = peer.responses();
    expect(responses.map((r) => r.body)).toEqual(["GET /1 -", "GET /2 -"]);
    expect(field(responses[1], "connection")).toBe("close");
    expect(seen.length).toBe(2);
    expect(peer.closed).toBe(true);
    expect(reasons).toEqual(["closed after the reply"]);
  });

  it("closes HTTP/1.0 after the reply unless it asks for keep-alive", async () => {
    const one = setUp();
    one.connection.receive(bytes("GET /a HTTP/1.0\r\n\r\n"));
    await wait();
    expect(field(one.peer.responses()[0], "connection")).toBe("close");
    expect(one.peer.closed).toBe(true);

    const two = setUp();
    two.connection.receive(bytes("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    two.connection.receive(bytes("GET /b HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"));
    await wait();
    const responses = two.peer.responses();
    expect(responses.map((r) => field(r, "connection"))).toEqual(["keep-alive", "keep-alive"]);
    expect(two.peer.closed).toBe(false);
    expect(two.seen[0].authority).toBe("");
    two.connection.destroy();
  });

  it("treats HTTP/1.2 as 1.1", async () => {
    const { peer, connection } = setUp();
    connection.receive(bytes("GET / HTTP/1.2\r\nHost: a\r\n\r\n"));
    await wait();
    expect(peer.responses()[0].status).toBe(200);
    expect(peer.closed).toBe(false);
    connection.destroy();
  });

  it("answers what was read when the peer ends its side, then closes", async () => {
    const { peer, connection, reasons } = setUp({}, async (r) => {
      await wait(20);
      return { status: 200, headers: [], body: bytes(r.path) };
    });
    connection.receive(bytes(get("/1") + get("/2") + "GET /partial HTTP/1.1\r\n"));
    connection.receiveEnd();
    expect(peer.closed).toBe(false);
    await wait(50);
    const responses = peer.responses();
    expect(responses.map((r) => r.body)).toEqual(["/1", "/2"]);
    expect(field(responses[1], "connection")).toBe("close");
    expect(peer.closed).toBe(true);
    expect(reasons).toEqual(["peer closed"]);
  });

  it("answers requests still waiting behind maxPipelined when the peer ends", async () => {
    const { peer, connection } = setUp({ maxPipelined: 2 }, async (r) => {
      await wait(5);
      return { status: 200, headers: [], body: bytes(r.path) };
    });
    connection.receive(bytes(get("/1") + get("/2") + get("/3") + get("/4") + get("/5")));
    connection.receiveEnd();
    for (let i = 0; i < 50 && !peer.closed; i++) await wait(5);
    const responses = peer.responses();
    expect(responses.map((r) => r.body)).toEqual(["/1", "/2", "/3", "/4", "/5"]);
    expect(field(responses[4], "connection")).toBe("close");
    expect(peer.closed).toBe(true);
  });

  it("aborts the requests' signal when the connection goes", () => {
    const { connection, seen, reasons } = setUp({}, () => new Promise(() => {}));
    connection.receive(bytes(get()));
    expect(seen[0].signal.aborted).toBe(false);
    connection.receiveEnd(new Error("ECONNRESET"));
    expect(seen[0].signal.aborted).toBe(true);
    expect(reasons).toEqual(["read failed: ECONNRESET"]);
  });

  it("closes when a write fails, and calls onClose once", async () => {
    const { peer, connection, reasons } = setUp();
    peer.closed = true;
    connection.receive(bytes(get()));
    await wait();
    expect(connection.closed).toBe(true);
    connection.destroy();
    expect(reasons).toEqual(["write failed: socket closed"]);
  });
});

describe("H1ServerConnection: Expect: 100-continue", () => {
  const head = "POST /e HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";

  it("sends 100 Continue before the body is read", async () => {
    const { peer, connection } = setUp({ date: false });
    connection.receive(bytes(head));
    await wait();
    expect(peer.text).toBe("HTTP/1.1 100 Continue\r\n\r\n");
    connection.receive(bytes("abc"));
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([100, 200]);
    connection.destroy();
  });

  it("sends no 100 when the body came with the head, or to HTTP/1.0", async () => {
    const { peer, connection } = setUp();
    connection.receive(bytes(head + "abc"));
    connection.receive(
      bytes(
        head.replace("HTTP/1.1", "HTTP/1.0").replace(
          "\r\n\r\n",
          "\r\nConnection: keep-alive\r\n\r\n",
        ),
      ),
    );
    await wait();
    connection.receive(bytes("abc"));
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([200, 200]);
    connection.destroy();
  });

  it("sends the 100 after the replies to earlier requests", async () => {
    let release!: () => void;
    const { peer, connection } = setUp({ date: false }, async (r) => {
      if (r.path === "/slow") await new Promise<void>((resolve) => (release = resolve));
      return { status: 200, headers: [], body: bytes(r.path) };
    });
    connection.receive(bytes(get("/slow") + head));
    await wait();
    expect(peer.text).toBe("");
    release();
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([200, 100]);
    connection.receive(bytes("abc"));
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([200, 100, 200]);
    connection.destroy();
  });

  it("answers 413 instead of 100 when the declared body is too large", async () => {
    const { peer, connection } = setUp({ maxBodyBytes: 2 });
    connection.receive(bytes(head));
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([413]);
    expect(peer.closed).toBe(true);
  });
});

describe("H1ServerConnection: refused requests", () => {
  const cases: [string, string, number][] = [
    ["a lowercase-version request line", "GET / http/1.1\r\nHost: a\r\n\r\n", 400],
    ["two spaces in the request line", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["a request line without a version", "GET /\r\nHost: a\r\n\r\n", 400],
    ["a method with a bad char", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["a control char in the target", "GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["an octet above 0x7f in the target", "GET /\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["a fragment in the target", "GET /#f HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["an asterisk-form target", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["an authority-form target", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["an ftp absolute target", "GET ftp://a/ HTTP/1.1\r\nHost: a\r\n\r\n", 400],
    ["HTTP/2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505],
    ["HTTP/0.9", "GET / HTTP/0.9\r\nHost: a\r\n\r\n", 505],
    ["space before the colon", "GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400],
    ["an empty field name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\n\r\n", 400],
    ["a field line without a colon", "GET / HTTP/1.1\r\nHost: a\r\nnocolon\r\n\r\n", 400],
    ["obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n", 400],
    ["a bare LF", "GET / HTTP/1.1\nHost: a\r\n\r\n", 400],
    ["bare LFs only", "GET / HTTP/1.1\nHost: a\n\n", 400],
    ["a bare CR in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400],
    ["a NUL in a value", "GET / HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n", 400],
    ["no Host in HTTP/1.1", "GET / HTTP/1.1\r\nX: a\r\n\r\n", 400],
    ["two Hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400],
    ["a Host with a space", "GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400],
    ["a Host with a slash", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400],
    [
      "Content-Length and Transfer-Encoding",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "a non-numeric Content-Length",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n",
      400,
    ],
    ["a negative Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400],
    ["a signed Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n", 400],
    ["a hex Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x1\r\n\r\n", 400],
    [
      "an exponent Content-Length",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1e1\r\n\r\n",
      400,
    ],
    ["an empty Content-Length", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400],
    [
      "differing Content-Length fields",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      400,
    ],
    [
      "a differing Content-Length list",
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1, 2\r\n\r\nab",
      400,
    ],
    [
      "Transfer-Encoding gzip",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc",
      501,
    ],
    [
      "Transfer-Encoding gzip, chunked",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
      501,
    ],
    [
      "chunked twice",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "an empty Transfer-Encoding",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \r\n\r\n",
      400,
    ],
    [
      "Transfer-Encoding in HTTP/1.0",
      "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      400,
    ],
    [
      "a chunk size that is not hex",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      400,
    ],
    [
      "a negative chunk size",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n-1\r\n",
      400,
    ],
    [
      "an empty chunk size",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n\r\n",
      400,
    ],
    [
      "a huge chunk size",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffff\r\n",
      400,
    ],
    [
      "chunk data without CRLF",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nabc",
      400,
    ],
    [
      "a chunk size line with a bare LF",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\n",
      400,
    ],
    [
      "a trailer with a control char",
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \x01\r\n\r\n",
      400,
    ],
    ["a request starting with a bare LF", "\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400],
  ];
  for (const [what, request, status] of cases) {
    it(`answers ${status} to ${what} and closes`, async () => {
      const { peer, connection, seen } = setUp();
      connection.receive(bytes(get("/before") + request + get("/after")));
      await wait();
      const responses = peer.responses();
      expect(responses.map((r) => r.status)).toEqual([200, status]);
      expect(field(responses[1], "connection")).toBe("close");
      expect(field(responses[1], "content-type")).toMatch(/^text\/plain/);
      expect(seen.map((r) => r.path)).toEqual(["/before"]);
      expect(peer.closed).toBe(true);
      expect(connection.activeRequests).toBe(0);
    });
  }

  const accepted: [string, string][] = [
    ["repeated equal Content-Length fields", "Content-Length: 2\r\nContent-Length: 2\r\n"],
    ["an equal Content-Length list", "Content-Length: 2, 2\r\n"],
    ["Transfer-Encoding Chunked in any case", "Transfer-Encoding: ChUnKeD\r\n"],
  ];
  for (const [what, fields] of accepted) {
    it(`accepts ${what}`, async () => {
      const { peer, connection, seen } = setUp();
      const body = fields.startsWith("Transfer") ? "2\r\nab\r\n0\r\n\r\n" : "ab";
      connection.receive(bytes(`POST / HTTP/1.1\r\nHost: a\r\n${fields}\r\n${body}` + get()));
      await wait();
      expect(peer.responses().map((r) => r.status)).toEqual([200, 200]);
      expect(new TextDecoder().decode(seen[0].body)).toBe("ab");
      connection.destroy();
    });
  }
});

describe("H1ServerConnection: limits", () => {
  it("answers 431 to a head over maxHeaderBytes, complete or not", async () => {
    for (const ending of ["\r\n\r\n", "\r\n"]) {
      const { peer, connection, seen } = setUp({ maxHeaderBytes: 200 });
      connection.receive(bytes(get("/ok")));
      connection.receive(bytes(`GET / HTTP/1.1\r\nHost: a\r\nX: ${"a".repeat(200)}${ending}`));
      await wait();
      expect(peer.responses().map((r) => r.status)).toEqual([200, 431]);
      expect(peer.closed).toBe(true);
      expect(seen.length).toBe(1);
    }
  });

  it("counts a head's bytes across reads", async () => {
    const { peer, connection } = setUp({ maxHeaderBytes: 200 });
    connection.receive(bytes("GET / HTTP/1.1\r\nHost: a\r\n"));
    for (let i = 0; i < 20 && !peer.closed; i++) {
      connection.receive(bytes("X-Filler: 0123456789\r\n"));
      await wait();
    }
    expect(peer.responses().map((r) => r.status)).toEqual([431]);
  });

  it("accepts a head of exactly maxHeaderBytes", async () => {
    const request = get("/", "X: \r\n");
    const padded = request.replace("X: ", `X: ${"a".repeat(200 - request.length)}`);
    expect(padded.length).toBe(200);
    const { peer, connection } = setUp({ maxHeaderBytes: 200 });
    connection.receive(bytes(padded));
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([200]);
    connection.destroy();
  });

  it("answers 413 (or the given reply) to a body over maxBodyBytes without reading it", async () => {
    const { peer, connection, seen } = setUp({ maxBodyBytes: 4 });
    connection.receive(bytes(post("12345")));
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([413]);
    expect(peer.closed).toBe(true);
    expect(seen.length).toBe(0);

    const tooLargeReply = {
      status: 413,
      headers: [["content-type", "text/plain"]],
      body: bytes("too big\n"),
    } as const;
    const chunked = setUp({ maxBodyBytes: 4, tooLargeReply });
    chunked.connection.receive(
      bytes(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
      ),
    );
    await wait();
    const [response] = chunked.peer.responses();
    expect(response.body).toBe("too big\n");
    expect(field(response, "connection")).toBe("close");
    expect(chunked.seen.length).toBe(0);
  });

  it("accepts a body of exactly maxBodyBytes, chunked too", async () => {
    const { peer, connection } = setUp({ maxBodyBytes: 4 });
    connection.receive(bytes(post("1234")));
    connection.receive(
      bytes(
        "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n3\r\nbcd\r\n0\r\n\r\n",
      ),
    );
    await wait();
    expect(peer.responses().map((r) => r.status)).toEqual([200, 200]);
    connection.destroy();
  });

  it("caps chunked framing (tiny chunks, long extensions, trailers) at maxHeaderBytes", async () => {
    const start = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    const floods = [
      "1\r\na\r\n".repeat(100),
      `1;${"e".repeat(100)}\r\na\r\n`.repeat(3),
      `0\r\n${"X-T: 0123456789\r\n".repeat(20)}\r\n`,
    ];
    for (const flood of floods) {
      const { peer, connection, seen } = setUp({ maxHeaderBytes: 256, maxBodyBytes: 1000 });
      connection.receive(bytes(start + flood));
      await wait();
      expect(peer.responses().map((r) => r.status)[0]).toBeGreaterThanOrEqual(400);
      expect(peer.closed).toBe(true);
      expect(seen.length).toBe(0);
    }
  });
});

describe("H1ServerConnection: deadlines", () => {
  it("answers 408 to a head that does not arrive in time", async () => {
    const { peer, connection, reasons } = setUp({ requestTimeoutMs: 80 });
    connection.receive(bytes("GET / HTTP/1.1\r\nHost: a\r\n"));
    await wait(40);
    expect(peer.text).toBe("");
    await wait(80);
    expect(peer.responses().map((r) => r.status)).toEqual([408]);
    expect(peer.closed).toBe(true);
    expect(reasons).toEqual(["closed after the reply"]);
  });

  it("does not extend the deadline for a client that drips bytes (slowloris)", async () => {
    const { peer, connection } = setUp({ requestTimeoutMs: 150, idleTimeoutMs: 10_000 });
    const request = get("/", "X-Slow: " + "a".repeat(100) + "\r\n");
    const started = Date.now();
    for (let i = 0; i < request.length - 1 && !peer.closed; i++) {
      connection.receive(bytes(request[i]));
      await wait(5);
    }
    const elapsed = Date.now() - started;
    expect(peer.responses().map((r) => r.status)).toEqual([408]);
    expect(elapsed).toBeLessThan(400);
    expect(elapsed).toBeGreaterThanOrEqual(140);
  });

  it("answers 408 to a body that stops arriving", async () => {
    const { peer, connection } = setUp({ requestTimeoutMs: 80 });
    connection.receive(bytes(post("abcdef").slice(0, -3)));
    await wait(150);
    expect(peer.responses().map((r) => r.status)).toEqual([408]);
    expect(peer.closed).toBe(true);
  });

  it("times each request from its own first byte on a kept-alive connection", async () => {
    const { peer, connection } = setUp({ requestTimeoutMs: 100, idleTimeoutMs: 10_000 });
    for (let i = 0; i < 5; i++) {
      connection.receive(bytes(get().slice(0, 10)));
      await wait(50);
      connection.receive(bytes(get().slice(10)));
      await wait(10);
    }
    expect(peer.responses().map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(peer.closed).toBe(false);
    connection.destroy();
  });

  it("closes an idle connection without a reply, and only when idle", async () => {
    const { peer, connection, reasons } = setUp({ idleTimeoutMs: 100 });
    for (let i = 0; i < 4; i++) {
      await wait(50);
      connection.receive(bytes(get()));
    }
    expect(peer.closed).toBe(false);
    await wait(150);
    expect(peer.closed).toBe(true);
    expect(peer.responses().length).toBe(4);
    expect(reasons).toEqual(["idle"]);
  });

  it("does not time out a request whose handler is still working", async () => {
    const { peer, connection } = setUp({ requestTimeoutMs: 50, idleTimeoutMs: 50 }, async () => {
      await wait(150);
      return { status: 200, headers: [], body: bytes("late") };
    });
    connection.receive(bytes(get()));
    await wait(200);
    expect(peer.responses().map((r) => r.body)).toEqual(["late"]);
    connection.destroy();
  });

  it("closes a connection whose writes do not complete (a client that does not read)", async () => {
    const { peer, connection, reasons } = setUp({ idleTimeoutMs: 80 });
    peer.gate = new Promise(() => {});
    connection.receive(bytes(get()));
    await wait(150);
    expect(peer.closed).toBe(true);
    expect(reasons).toEqual(["write timed out"]);
  });
});

describe("H1ServerConnection: shutdown", () => {
  it("closes an idle connection at once", async () => {
    const { peer, connection, reasons } = setUp();
    await connection.shutdown(1000);
    expect(peer.closed).toBe(true);
    expect(reasons).toEqual(["shutdown"]);
  });

  it("finishes the requests in flight, the last reply saying connection: close", async () => {
    const { peer, connection, seen } = setUp({}, async (r) => {
      await wait(30);
      return { status: 200, headers: [], body: bytes(r.path) };
    });
    connection.receive(bytes(get("/1") + get("/2")));
    const done = connection.shutdown(1000);
    connection.receive(bytes(get("/3")));
    await done;
    const responses = peer.responses();
    expect(responses.map((r) => r.body)).toEqual(["/1", "/2"]);
    expect(responses.map((r) => field(r, "connection"))).toEqual([undefined, "close"]);
    expect(seen.length).toBe(2);
    expect(peer.closed).toBe(true);
  });

  it("finishes a request already partly received", async () => {
    const { peer, connection } = setUp();
    connection.receive(bytes(post("abc").slice(0, -1)));
    const done = connection.shutdown(1000);
    connection.receive(bytes("c"));
    await done;
    const [response] = peer.responses();
    expect(response.body).toBe("POST /dns-query 3");
    expect(field(response, "connection")).toBe("close");
  });

  it("closes after the grace period when a handler never answers", async () => {
    const { peer, connection, seen } = setUp({}, () => new Promise(() => {}));
    connection.receive(bytes(get()));
    const started = Date.now();
    await connection.shutdown(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(peer.closed).toBe(true);
    expect(seen[0].signal.aborted).toBe(true);
  });

  it("reads nothing after shutdown began", async () => {
    const { peer, connection, seen } = setUp();
    void connection.shutdown(1000);
    connection.receive(bytes(get()));
    await wait();
    expect(seen.length).toBe(0);
    expect(peer.closed).toBe(true);
  });
});

describe("readResponses (test helper)", () => {
  it("reads interim and final responses", () => {
    expect(
      readResponses("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        .map((r) => [r.status, r.body]),
    ).toEqual([[100, ""], [200, "ok"]]);
  });
});
