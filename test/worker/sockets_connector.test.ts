import { describe, expect, it } from "vitest";
import { parseDotUrl } from "../../src/upstream/dot_url.ts";
import {
  createSocketsConnector,
  type SocketsConnect,
  socketsLimitation,
  type SocketsSocket,
} from "../../src/worker/sockets_connector.ts";

/** A stand-in for a cloudflare:sockets Socket whose `opened` the test settles. */
function fakeSocket() {
  let open!: () => void;
  let fail!: (e: Error) => void;
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    fail = reject;
  });
  let closes = 0;
  const socket: SocketsSocket = {
    readable: new ReadableStream<Uint8Array>(),
    writable: new WritableStream<Uint8Array>(),
    opened,
    closed: Promise.resolve(),
    close() {
      closes++;
      return Promise.resolve();
    },
  };
  return { socket, open, fail, closes: () => closes };
}

function recordingConnect(socket: SocketsSocket) {
  const calls: Parameters<SocketsConnect>[] = [];
  const connect: SocketsConnect = (...args) => {
    calls.push(args);
    return socket;
  };
  return { connect, calls };
}

const target = (signal = new AbortController().signal) => ({
  hostname: "dns.example",
  port: 853,
  servername: "dns.example",
  signal,
});

describe("createSocketsConnector", () => {
  it("dials the name with TLS on and no half-open, and hands back the socket's streams", async () => {
    const fake = fakeSocket();
    const { connect, calls } = recordingConnect(fake.socket);
    const pending = createSocketsConnector({ connect })(target());
    fake.open();
    const stream = await pending;
    expect(calls).toEqual([[
      { hostname: "dns.example", port: 853 },
      { secureTransport: "on", allowHalfOpen: false },
    ]]);
    expect(stream.readable).toBe(fake.socket.readable);
    expect(stream.writable).toBe(fake.socket.writable);
    await stream.close();
    expect(fake.closes()).toBe(1);
  });

  it("rejects with the target named when the socket cannot open, and closes it", async () => {
    const fake = fakeSocket();
    const { connect } = recordingConnect(fake.socket);
    const pending = createSocketsConnector({ connect })(target());
    fake.fail(new Error("proxy request failed, cannot connect to the specified address"));
    await expect(pending).rejects.toThrow(
      "TLS to dns.example:853: proxy request failed, cannot connect to the specified address",
    );
    expect(fake.closes()).toBe(1);
  });

  it("rejects with the signal's reason when aborted while opening, and closes the socket", async () => {
    const fake = fakeSocket();
    const { connect } = recordingConnect(fake.socket);
    const controller = new AbortController();
    const pending = createSocketsConnector({ connect })(target(controller.signal));
    await new Promise((r) => setTimeout(r, 0));
    const reason = new Error("connect timeout");
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
    expect(fake.closes()).toBe(1);
  });

  it("does not dial when the signal has already aborted", async () => {
    const { connect, calls } = recordingConnect(fakeSocket().socket);
    const signal = AbortSignal.abort(new Error("gone"));
    await expect(createSocketsConnector({ connect })(target(signal))).rejects.toThrow("gone");
    expect(calls).toHaveLength(0);
  });

  it("refuses to dial one name and authenticate another", async () => {
    const { connect, calls } = recordingConnect(fakeSocket().socket);
    const pending = createSocketsConnector({ connect })({
      ...target(),
      hostname: "192.0.2.1",
    });
    await expect(pending).rejects.toThrow(TypeError);
    expect(calls).toHaveLength(0);
  });

  it("says cloudflare:sockets is missing outside workerd", async () => {
    await expect(createSocketsConnector()(target())).rejects.toThrow(
      /cloudflare:sockets is not available here/,
    );
  });
});

describe("socketsLimitation", () => {
  const cases: { url: string; problem?: RegExp }[] = [
    { url: "tls://dns.example" },
    { url: "tls://192.0.2.1:8853" },
    { url: "tls://[2001:db8::1]" },
    { url: "tls://dns.example#dns.example" },
    { url: "tls://192.0.2.1#dns.example", problem: /authenticates the name it dials/ },
    {
      url: "tls://dns.example?pin=n76lpRo2fEf6w3mX2J1zYKKI6jBKPlgqVbxMU6SvZL4=",
      problem: /SPKI pins/,
    },
    { url: "tls://dns.example?opportunistic=1", problem: /opportunistic/ },
  ];
  for (const c of cases) {
    it(`${c.problem ? "refuses" : "accepts"} ${c.url}`, () => {
      const problem = socketsLimitation(parseDotUrl(c.url));
      if (c.problem) expect(problem).toMatch(c.problem);
      else expect(problem).toBeUndefined();
    });
  }
});
