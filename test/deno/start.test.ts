/**
 * The start-up steps: the runner stops what was started, in reverse, when a later step fails;
 * listen failures are told by the error's type and name the key; a bridge whose last step
 * fails releases its ports.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "../../src/config/parse.ts";
import { startBridge } from "../../src/deno/bridge.ts";
import { listenError } from "../../src/deno/start/listen_error.ts";
import { Slot, type Started, StartUp } from "../../src/deno/start/steps.ts";
import { createLogger } from "../../src/log/mod.ts";
import { freePort } from "../support/ports.ts";

const silent = createLogger({ level: "error", sink: () => {} });

/** A step that records its stop (and its grace) in `log`. */
function recorded(
  log: string[],
  name: string,
  options: { face?: boolean; stopMs?: number } = {},
): () => Started<string> {
  return () => ({
    value: name,
    face: options.face,
    stop: async (graceMs) => {
      log.push(`stop ${name} ${graceMs}`);
      if (options.stopMs) await new Promise((r) => setTimeout(r, options.stopMs));
      log.push(`stopped ${name}`);
    },
  });
}

describe("StartUp", () => {
  it("returns each step's value and stops the steps in reverse order", async () => {
    const log: string[] = [];
    const steps = new StartUp(silent);
    expect(await steps.step("a", recorded(log, "a"))).toBe("a");
    expect(await steps.step("b", () => Promise.resolve({ value: 2 }))).toBe(2); // nothing to stop
    expect(await steps.step("c", recorded(log, "c"))).toBe("c");
    await steps.stop(100);
    expect(log).toEqual(["stop c 100", "stopped c", "stop a 100", "stopped a"]);
  });

  it("stops the steps already done, without grace, when one throws, and rethrows its error", async () => {
    const log: string[] = [];
    const steps = new StartUp(silent);
    await steps.step("a", recorded(log, "a"));
    await steps.step("b", recorded(log, "b"));
    const failure = new ConfigError("--metrics-listen", "cannot listen");
    await expect(steps.step("c", () => Promise.reject(failure))).rejects.toBe(failure);
    expect(log).toEqual(["stop b 0", "stopped b", "stop a 0", "stopped a"]);
  });

  it("stops adjacent faces together, then the rest", async () => {
    const log: string[] = [];
    const steps = new StartUp(silent);
    await steps.step("resolver", recorded(log, "resolver"));
    await steps.step("dot", recorded(log, "dot", { face: true, stopMs: 30 }));
    await steps.step("doh", recorded(log, "doh", { face: true, stopMs: 10 }));
    await steps.step("watch", recorded(log, "watch"));
    await steps.stop(500);
    expect(log).toEqual([
      "stop watch 500",
      "stopped watch",
      "stop doh 500",
      "stop dot 500",
      "stopped doh",
      "stopped dot",
      "stop resolver 500",
      "stopped resolver",
    ]);
  });

  it("stops once, keeps stopping past a failing stop, and refuses steps after", async () => {
    const log: string[] = [];
    const steps = new StartUp(silent);
    await steps.step("a", recorded(log, "a"));
    await steps.step("b", () => ({ value: 0, stop: () => Promise.reject(new Error("boom")) }));
    await Promise.all([steps.stop(0), steps.stop(0)]);
    expect(log).toEqual(["stop a 0", "stopped a"]);
    await expect(steps.step("late", recorded(log, "late"))).rejects.toThrow(/after stop/);
  });
});

describe("Slot", () => {
  it("is undefined until filled, then holds the value; a second fill throws", () => {
    const slot = new Slot<number>();
    expect(slot.value).toBeUndefined();
    expect(slot.fill(7)).toBe(7);
    expect(slot.value).toBe(7);
    expect(() => slot.fill(8)).toThrow();
  });
});

describe("listenError", () => {
  const address = { hostname: "127.0.0.1", port: 853 };
  const nodeError = (code: string) =>
    Object.assign(new Error(`listen ${code}: whatever`), { code });
  const cases: [what: string, error: unknown, reason: string][] = [
    ["Deno.errors.AddrInUse", new Deno.errors.AddrInUse("x"), "address already in use"],
    ["node EADDRINUSE", nodeError("EADDRINUSE"), "address already in use"],
    ["Deno.errors.PermissionDenied", new Deno.errors.PermissionDenied("x"), "permission denied"],
    ["node EACCES", nodeError("EACCES"), "permission denied"],
    [
      "Deno.errors.AddrNotAvailable",
      new Deno.errors.AddrNotAvailable("x"),
      "no local interface has this address",
    ],
    ["node EADDRNOTAVAIL", nodeError("EADDRNOTAVAIL"), "no local interface has this address"],
    ["node ENOTFOUND", nodeError("ENOTFOUND"), "the host name does not resolve"],
    ["anything else", new Error("odd failure"), "odd failure"],
  ];
  for (const [what, error, reason] of cases) {
    it(`tells ${what} by its type`, () => {
      const e = listenError(error, "--listen", address);
      expect(e).toBeInstanceOf(ConfigError);
      expect(e.key).toBe("--listen");
      expect(e.message.startsWith(`--listen: cannot listen on 127.0.0.1:853: ${reason}`)).toBe(
        true,
      );
    });
  }

  it("brackets an IPv6 address", () => {
    const e = listenError(new Deno.errors.AddrInUse("x"), "DOTBRIDGE_LISTEN", {
      hostname: "::1",
      port: 853,
    });
    expect(e.message).toBe("DOTBRIDGE_LISTEN: cannot listen on [::1]:853: address already in use");
  });
});

describe("startBridge: a failing later step releases the earlier ones", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await Deno.makeTempDir({ prefix: "dotbridge-start-" });
  });
  afterAll(async () => {
    await Deno.remove(dir, { recursive: true });
  });

  function config(args: string[]) {
    const parsed = parseConfig({
      args: [
        ...["--state-dir", `${dir}/state`, "--upstream", "http://127.0.0.1:9/dns-query"],
        ...args,
      ],
      env: {},
    });
    if (parsed.help) throw new Error("unexpected --help");
    return parsed.config;
  }

  it("--metrics-listen on a port in use: ConfigError naming it, DoT and DoH ports free again", async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const takenPort = (taken.addr as Deno.NetAddr).port;
      const dotPort = freePort();
      const dohPort = freePort();
      const failure = await startBridge(
        config([
          ...["--listen", `127.0.0.1:${dotPort}`, "--http-listen", `127.0.0.1:${dohPort}`],
          ...["--metrics-listen", `127.0.0.1:${takenPort}`],
        ]),
        { logger: silent, sighup: false },
      ).then(() => undefined, (e) => e);
      expect(failure).toBeInstanceOf(ConfigError);
      expect(failure.key).toBe("--metrics-listen");
      expect(failure.message).toBe(
        `--metrics-listen: cannot listen on 127.0.0.1:${takenPort}: address already in use`,
      );
      // Both faces were stopped: their ports bind again, without SO_REUSEPORT.
      Deno.listen({ hostname: "127.0.0.1", port: dotPort }).close();
      Deno.listen({ hostname: "127.0.0.1", port: dohPort }).close();
    } finally {
      taken.close();
    }
  });

  it("--http-listen on a port in use: ConfigError naming it, the DoT port free again", async () => {
    const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    try {
      const takenPort = (taken.addr as Deno.NetAddr).port;
      const dotPort = freePort();
      const failure = await startBridge(
        config(["--listen", `127.0.0.1:${dotPort}`, "--http-listen", `127.0.0.1:${takenPort}`]),
        { logger: silent, sighup: false },
      ).then(() => undefined, (e) => e);
      expect(failure).toBeInstanceOf(ConfigError);
      expect(failure.message).toBe(
        `--http-listen: cannot listen on 127.0.0.1:${takenPort}: address already in use`,
      );
      Deno.listen({ hostname: "127.0.0.1", port: dotPort }).close();
    } finally {
      taken.close();
    }
  });
});
