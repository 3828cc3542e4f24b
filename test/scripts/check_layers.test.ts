import { describe, expect, it } from "vitest";
import { crossingImports, layerOrder, loops } from "../../scripts/check_layers.ts";

const graph = (edges: Record<string, string[]>) =>
  new Map(Object.entries(edges).map(([k, v]) => [k, new Set(v)]));

describe("check_layers", () => {
  it("finds the imports that cross from one folder of src/ into another", () => {
    const source = [
      'import { a } from "../dns/message.ts";',
      'import type { B } from "./local.ts";',
      'export { c } from "../bytes/concat.ts";',
      'const m = await import("../log/mod.ts");',
      'import x from "npm:thing";',
    ].join("\n");
    expect(crossingImports("src/cache/memory.ts", source).map((i) => i.to)).toEqual([
      "dns",
      "bytes",
      "log",
    ]);
    expect(crossingImports("scripts/bench.ts", source)).toEqual([]);
  });

  it("reports each loop of two or more folders, and none in a one-way graph", () => {
    expect(loops(graph({ a: ["b"], b: ["c"], c: ["a"], d: ["a"] }))).toEqual([["a", "b", "c"]]);
    expect(loops(graph({ a: ["b"], b: ["c"], d: ["a", "c"] }))).toEqual([]);
  });

  it("orders folders from the bottom layer up", () => {
    expect(layerOrder(graph({ deno: ["resolver", "dns"], resolver: ["dns"], dns: [] }))).toEqual([
      "dns",
      "resolver",
      "deno",
    ]);
  });
});
