/**
 * The HTTP/2 client pool against the bridge's own HTTP/2 server over in-memory sockets (real
 * HTTP/2 both ways, no TLS): connections reused, another opened only while the others have no
 * free stream, the server's SETTINGS_MAX_CONCURRENT_STREAMS kept, failed, closed and rotated
 * connections replaced, idle ones closed, origins apart, and closing.
 */
import { describe, expect, it } from "vitest";
import { H2Error } from "../../src/h2/error.ts";
import { encodeRequestHead } from "../../src/h2/hpack_encode.ts";
import { H2ClientPool, type H2PoolOptions, type H2Target } from "../../src/h2/pool.ts";
import { H2ServerConnection, type H2ServerOptions } from "../../src/h2/server.ts";
import type { ServerRequest } from "../../src/serve/exchange.ts";
import { Channel, channelSocket } from "../support/byte_pipe.ts";
import { FakeClock } from "../support/fake_clock.ts";

const text = new TextEncoder();
const tick = () => new Promise((resolve) => setTimeout(resolve, 1));
const URL_A = new URL("https://a.example/dns-query");
const HEAD = encodeRequestHead({
  method: "GET",
  scheme: "https",
  authority: "a.example",
  path: "/dns-query",
  accept: "application/dns-message",
});

/** One server connection the pool opened, and what its handler has seen. */
interface Served {
  readonly target: H2Target;
  readonly server: H2ServerConnection;
  /** Requests being answered now, and the most at once. */
  open: number;
  most: number;
  answered: number;
  closed: boolean;
}

/**
 * A pool whose connector opens an in-memory socket to a new server connection. Handlers wait
 * while `hold` is set, until {@linkcode release}.
 */
function setUp(pool: Partial<H2PoolOptions> = {}, server: H2ServerOptions = {}) {
  const served: Served[] = [];
  const waiting: (() => void)[] = [];
  const state = { hold: false, refuse: 0 };
  const errors: string[] = [];
  const p = new H2ClientPool({
    connect: (target) => {
      if (state.refuse > 0) {
        state.refuse--;
        return Promise.reject(new Error("connection refused"));
      }
      const [up, down] = [new Channel(), new Channel()];
      const entry = {
        target,
        open: 0,
        most: 0,
        answered: 0,
        closed: false,
      } as Served;
      const handler = async (request: ServerRequest) => {
        entry.most = Math.max(entry.most, ++entry.open);
        if (state.hold) await new Promise<void>((resolve) => waiting.push(resolve));
        entry.open--;
        entry.answered++;
        return {
          status: 200,
          headers: [["content-type", "application/dns-message"]] as [string, string][],
          body: text.encode(request.path),
        };
      };
      (entry as { server: H2ServerConnection }).server = new H2ServerConnection(
        channelSocket(up, down),
        handler,
        { ...server, onClose: () => (entry.closed = true) },
      );
      served.push(entry);
      return Promise.resolve(channelSocket(down, up));
    },
    onConnectionError: (origin, error) => errors.push(`${origin}: ${error.message}`),
    ...pool,
  });
  const get = (url = URL_A) => p.request(url, HEAD, undefined, 65_535, AbortSignal.timeout(2_000));
  const release = () => {
    state.hold = false;
    for (const resolve of waiting.splice(0)) resolve();
  };
  return { pool: p, served, state, errors, get, release };
}

/** Waits until `done` holds (a few ms at a time, at most ~1 s). */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !done(); i++) await tick();
  expect(done()).toBe(true);
}

describe("H2ClientPool", () => {
  it("reuses one connection for requests one after another and at once", async () => {
    const { get, served } = setUp();
    expect((await get()).status).toBe(200);
    expect((await get()).status).toBe(200);
    const answers = await Promise.all(Array.from({ length: 20 }, () => get()));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(served.length).toBe(1);
    expect(served[0].target).toMatchObject({ hostname: "a.example", port: 443 });
  });

  it("opens another connection only while the others have no free stream, up to connectionsPerOrigin, each within the server's stream limit", async () => {
    const { get, served, state, release } = setUp({ connectionsPerOrigin: 2 }, { maxStreams: 2 });
    await get(); // the server's SETTINGS (2 streams) are known on the first connection
    state.hold = true;
    const first = Array.from({ length: 3 }, () => get());
    await until(() => served.length === 2 && served[1].open === 1);
    release();
    await Promise.all(first); // now known on the second one too
    state.hold = true;
    const answers = Array.from({ length: 8 }, () => get());
    await until(() => served[0].open === 2 && served[1].open === 2);
    expect(served.length).toBe(2); // the rest wait for a free stream
    release();
    expect((await Promise.all(answers)).every((a) => a.status === 200)).toBe(true);
    expect(served.map((s) => s.most)).toEqual([2, 2]);
    expect(served.reduce((n, s) => n + s.answered, 0)).toBe(12);
  });

  it("queues on the one connection allowed when the server's stream limit is reached", async () => {
    const { get, served, state, release } = setUp({ connectionsPerOrigin: 1 }, { maxStreams: 1 });
    await get();
    state.hold = true;
    const answers = Array.from({ length: 5 }, () => get());
    await until(() => served[0].open === 1);
    await tick();
    expect(served[0].open).toBe(1); // the others wait for the stream
    release();
    expect((await Promise.all(answers)).every((a) => a.status === 200)).toBe(true);
    expect([served.length, served[0].most, served[0].answered]).toEqual([1, 1, 6]);
  });

  it("fails a request when the connection cannot be opened (retryable), and opens a new one for the next", async () => {
    const { get, served, state, errors } = setUp();
    state.refuse = 1;
    const error = await get().catch((e) => e);
    expect(error).toBeInstanceOf(H2Error);
    expect(error.retryable).toBe(true);
    expect(errors).toEqual(["https://a.example: connection refused"]);
    expect((await get()).status).toBe(200);
    expect(served.length).toBe(1);
  });

  it("replaces a connection the server closed", async () => {
    const { get, served, errors } = setUp();
    await get();
    served[0].server.destroy();
    await until(() => errors.length === 1);
    expect(errors[0]).toMatch(/^https:\/\/a\.example: the server closed the connection/);
    expect((await get()).status).toBe(200);
    expect(served.length).toBe(2);
  });

  it("sends new requests to a new connection once the server sends GOAWAY, and lets the old one finish", async () => {
    const { get, served, state, release } = setUp();
    await get();
    state.hold = true;
    const before = get();
    await until(() => served[0].open === 1);
    void served[0].server.shutdown(5_000); // GOAWAY; the open request is still answered
    await tick();
    const after = get();
    await until(() => served.length === 2 && served[1].open === 1);
    release();
    expect([(await before).status, (await after).status]).toEqual([200, 200]);
    await until(() => served[0].closed);
  });

  it("rotates a connection after maxRequestsPerConnection", async () => {
    const { get, served } = setUp({ maxRequestsPerConnection: 3 });
    for (let i = 0; i < 7; i++) expect((await get()).status).toBe(200);
    expect(served.map((s) => s.answered)).toEqual([3, 3, 1]);
    await until(() => served[0].closed && served[1].closed);
  });

  it("closes a connection idle for idleTimeoutMs, and opens a new one for the next request", async () => {
    const clock = new FakeClock();
    const { get, served, errors } = setUp({ idleTimeoutMs: 25_000, clock });
    await get();
    clock.advance(24_999);
    await tick();
    expect(served[0].closed).toBe(false);
    clock.advance(1);
    await until(() => served[0].closed);
    expect(errors).toEqual([]); // drained, not failed
    expect((await get()).status).toBe(200);
    expect(served.length).toBe(2);
  });

  it("keeps connections per origin", async () => {
    const { get, served } = setUp();
    await get(new URL("https://a.example/q"));
    await get(new URL("https://b.example:8443/q"));
    await get(new URL("https://[2001:db8::1]/q"));
    await get(new URL("https://a.example/other"));
    expect(served.map((s) => [s.target.hostname, s.target.port])).toEqual([
      ["a.example", 443],
      ["b.example", 8443],
      ["2001:db8::1", 443],
    ]);
  });

  it("on close, lets open requests finish, refuses new ones and drains its connections", async () => {
    const { pool, get, served, state, release } = setUp();
    await get();
    state.hold = true;
    const open = get();
    await until(() => served[0].open === 1);
    pool.close();
    const refused = await get().catch((e) => e);
    expect(refused).toBeInstanceOf(H2Error);
    expect(refused.message).toBe("pool closed");
    release();
    expect((await open).status).toBe(200);
    await until(() => served[0].closed);
    expect(served.length).toBe(1);
  });
});
