import { describe, expect, it } from "vitest";
import {
  Action,
  buildList,
  DomainSet,
  DomainSetBuilder,
  entryActions,
  fingerprintScratch,
  fingerprintText,
  mergeActions,
  NameHasher,
  wireFingerprints,
} from "../../src/filter/mod.ts";
import { generatedDomains } from "../../scripts/bench/filter_list.ts";
import { concat, wireName } from "../dns/fixtures.ts";

const hasher = new NameHasher([9, 10]);

function textPrint(name: string): [number, number] {
  const out = fingerprintScratch();
  if (!fingerprintText(hasher, name, 0, name.length, out)) throw new Error(`bad name ${name}`);
  return [out.hi[0], out.lo[0]];
}

describe("fingerprints", () => {
  it("gives each suffix of a wire name the fingerprint of its text", () => {
    const out = fingerprintScratch();
    expect(wireFingerprints(hasher, wireName("A.Example.COM"), 0, out)).toBe(3);
    for (const [j, suffix] of ["a.example.com", "example.com", "com"].entries()) {
      expect([out.hi[j], out.lo[j]]).toEqual(textPrint(suffix));
    }
  });

  it("follows compression pointers and refuses loops and overruns", () => {
    const out = fingerprintScratch();
    // "x" then a pointer to "example.com" at offset 0.
    const wire = concat(wireName("example.com"), [1, 0x78, 0xc0, 0]);
    expect(wireFingerprints(hasher, wire, 13, out)).toBe(3);
    expect([out.hi[0], out.lo[0]]).toEqual(textPrint("x.example.com"));
    expect(wireFingerprints(hasher, new Uint8Array([0xc0, 0]), 0, out)).toBe(-1);
    expect(wireFingerprints(hasher, new Uint8Array([5, 0x61]), 0, out)).toBe(-1);
    expect(wireFingerprints(hasher, new Uint8Array([0]), 0, out)).toBe(0);
  });

  it("never matches a label holding a dot with the two labels it looks like", () => {
    const out = fingerprintScratch();
    // One label "a.b" under "example".
    const wire = concat([3, 0x61, 0x2e, 0x62], wireName("example"));
    expect(wireFingerprints(hasher, wire, 0, out)).toBe(2);
    expect([out.hi[0], out.lo[0]]).not.toEqual(textPrint("a.b.example"));
  });

  it("accepts host names only", () => {
    const out = fingerprintScratch();
    for (const bad of ["", ".", "a..b", ".a", "a b", "a/b", "é.example", "a".repeat(64)]) {
      expect(fingerprintText(hasher, bad, 0, bad.length, out), bad).toBe(false);
    }
    for (const good of ["a", "x_y.example", "xn--nicode-2ya.de", "1.2.3.4", "a-b.c"]) {
      expect(fingerprintText(hasher, good, 0, good.length, out), good).toBe(true);
    }
  });
});

describe("DomainSet", () => {
  it("finds every name added and none other, built at once or in steps", () => {
    const names = [...generatedDomains(50_000, 3)];
    const absent = [...generatedDomains(5_000, 4)].filter((n) => !names.includes(n));
    for (const stepped of [false, true]) {
      const b = new DomainSetBuilder();
      for (const n of names) b.add(...textPrint(n), entryActions(Action.BLOCK, Action.BLOCK));
      let set: DomainSet;
      if (stepped) {
        const steps = b.buildSteps(1000);
        let yields = 0;
        for (;;) {
          const s = steps.next();
          if (s.done) {
            set = s.value;
            break;
          }
          yields++;
        }
        expect(yields).toBeGreaterThan(100);
      } else {
        set = b.build();
      }
      expect(set.size).toBe(new Set(names).size);
      expect(names.every((n) => set.get(...textPrint(n)) === 0x11)).toBe(true);
      expect(absent.some((n) => set.get(...textPrint(n)) !== 0)).toBe(false);
    }
  });

  it("merges a name added twice: an allow wins, else the first action", () => {
    expect(mergeActions(entryActions(Action.BLOCK, 0), entryActions(0, Action.NXDOMAIN)))
      .toBe(entryActions(Action.BLOCK, Action.NXDOMAIN));
    expect(mergeActions(entryActions(Action.NODATA, 0), entryActions(Action.ALLOW, 0)))
      .toBe(entryActions(Action.ALLOW, 0));
    const b = new DomainSetBuilder();
    b.add(1, 2, entryActions(Action.BLOCK, Action.BLOCK));
    b.add(1, 2, entryActions(Action.ALLOW, 0));
    b.add(1, 3, entryActions(Action.BLOCK, 0));
    const set = b.build();
    expect(set.size).toBe(2);
    expect(set.get(1, 2)).toBe(entryActions(Action.ALLOW, Action.BLOCK));
  });

  it("answers nothing when empty", () => {
    expect(DomainSet.empty().get(0xffffffff, 1)).toBe(0);
    expect(new DomainSetBuilder().build().get(0x80000000, 0)).toBe(0);
  });
});

describe("buildList", () => {
  it("pauses between slices, and parses the same set as one pass", async () => {
    const text = [...generatedDomains(20_000, 5)].join("\n");
    let clock = 0;
    let pauses = 0;
    const { set } = await buildList([text.slice(0, 100_000), text.slice(100_000)], hasher, {
      pause: () => {
        pauses++;
        return Promise.resolve();
      },
      now: () => (clock += 1), // every slice looks 1 ms long
      sliceMs: 2,
    });
    expect(pauses).toBeGreaterThan(10);
    expect(set.size).toBe(new Set(text.split("\n")).size);
  });

  it("stops when its signal aborts", async () => {
    const controller = new AbortController();
    controller.abort(new Error("closing"));
    await expect(buildList(["a.example\n"], hasher, { signal: controller.signal })).rejects
      .toThrow("closing");
  });
});
