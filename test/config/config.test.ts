import { describe, expect, expectTypeOf, it } from "vitest";
import {
  alwaysSet,
  type Config,
  fitsOption,
  isConfig,
  type ListenAddress,
} from "../../src/config/config.ts";
import { OPTIONS } from "../../src/config/options.ts";
import { parseConfig } from "../../src/config/parse.ts";

function parsed(args: string[] = []): Config {
  const result = parseConfig({ args, env: {} });
  if (result.help) throw new Error("unexpected help");
  return result.config;
}

describe("the option table", () => {
  it("gives every key but config a group and a field", () => {
    for (const o of OPTIONS) {
      if (o.name === "config") continue;
      expect(o.group, o.name).toBeDefined();
      expect(o.field, o.name).toBeDefined();
    }
  });

  it("names no field twice", () => {
    const seen = OPTIONS.filter((o) => o.field).map((o) => `${o.group}.${o.field}`);
    expect(new Set(seen).size).toBe(seen.length);
  });
});

describe("the Config derived from the table", () => {
  it("puts every key at config[group][field] with the type its kind gives", () => {
    const c = parsed(["--cert", "c.pem", "--key", "k.pem", "--metrics-listen", ":9100"]);
    for (const o of OPTIONS) {
      if (!o.group || !o.field) continue;
      const group: unknown = Reflect.get(c, o.group);
      expect(group, o.group).toBeTypeOf("object");
      expect(fitsOption(o, Reflect.get(group as object, o.field)), o.name).toBe(true);
    }
    expect(isConfig(c)).toBe(true);
  });

  it("holds a value in every field the type makes required", () => {
    const c = parsed();
    for (const o of OPTIONS) {
      if (!o.group || !o.field || !alwaysSet(o)) continue;
      const group = Reflect.get(c, o.group) as object;
      expect(Reflect.get(group, o.field), o.name).toBeDefined();
    }
  });

  it("refuses a shape that misses a field or holds the wrong type", () => {
    const c = parsed();
    expect(isConfig({ ...c, dot: { ...c.dot, maxInFlight: "128" } })).toBe(false);
    expect(isConfig({ ...c, upstream: { ...c.upstream, upstreamStrategy: "random" } })).toBe(false);
    const { listen: _, ...noListen } = c.dot;
    expect(isConfig({ ...c, dot: noListen })).toBe(false);
    expect(isConfig({ ...c, origin: {} })).toBe(false);
  });

  it("computes rate-limit-burst from rate-limit when unset", () => {
    expect(parsed(["--rate-limit", "7"]).resolver.rateLimitBurst).toBe(14);
    expect(parsed(["--rate-limit", "7", "--rate-limit-burst", "3"]).resolver.rateLimitBurst)
      .toBe(3);
  });

  it("types fields by kind, choices and whether they may be unset", () => {
    expectTypeOf<Config["dot"]["listen"]>().toEqualTypeOf<ListenAddress>();
    expectTypeOf<Config["doh"]["httpListen"]>().toEqualTypeOf<ListenAddress | undefined>();
    expectTypeOf<Config["dot"]["dotServer"]>().toEqualTypeOf<"node" | "native">();
    expectTypeOf<Config["upstream"]["upstreams"]>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<Config["upstream"]["bootstrap"]>()
      .toEqualTypeOf<Readonly<Record<string, string>>>();
    expectTypeOf<Config["upstream"]["upstreamCaFiles"]>().toEqualTypeOf<readonly string[]>();
    expectTypeOf<Config["resolver"]["rateLimitBurst"]>().toEqualTypeOf<number>();
    expectTypeOf<Config["resolver"]["cache"]>().toEqualTypeOf<boolean>();
    expectTypeOf<Config["log"]["logLevel"]>().toEqualTypeOf<
      "debug" | "info" | "warn" | "error"
    >();
    expectTypeOf<Config["origin"]["upstream-ca"]>().toEqualTypeOf<string>();
  });
});
