import { describe, expect, it } from "vitest";
import { readName } from "../../src/dns/message.ts";
import { encodeName, nameWireLength, nextLabel } from "../../src/dns/name.ts";

describe("encodeName", () => {
  it.each([
    ["", [0]],
    ["lan", [3, 0x6c, 0x61, 0x6e, 0]],
    ["nas.lan", [3, 0x6e, 0x61, 0x73, 3, 0x6c, 0x61, 0x6e, 0]],
  ])("encodes %j uncompressed", (name, bytes) => {
    expect([...encodeName(name)]).toEqual(bytes);
    expect(nameWireLength(name)).toBe(bytes.length);
  });

  it("reads back with readName", () => {
    for (const name of ["a", "nas.home.arpa", "10.1.168.192.in-addr.arpa", "x".repeat(63) + ".y"]) {
      expect(readName(encodeName(name), 0)).toEqual({ name, end: nameWireLength(name) });
    }
  });

  it.each([
    ["a..b", "bad label length 0"],
    [".a", "bad label length 0"],
    ["x".repeat(64), "bad label length 64"],
    [Array(128).fill("a").join("."), "over 255 bytes"],
    ["caf\u0100", "not plain ASCII"],
  ])("rejects %j", (name, message) => {
    expect(() => encodeName(name)).toThrow(RangeError);
    expect(() => encodeName(name)).toThrow(message);
  });
});

describe("nextLabel", () => {
  it("walks a name's suffixes, at the offsets of their length bytes", () => {
    const name = "nas.home.arpa";
    const suffixes: [string, number][] = [];
    for (let k = 0; k >= 0; k = nextLabel(name, k)) suffixes.push([name.slice(k), k]);
    expect(suffixes).toEqual([["nas.home.arpa", 0], ["home.arpa", 4], ["arpa", 9]]);
    const wire = encodeName(name);
    for (const [suffix, k] of suffixes) expect(readName(wire, k).name).toBe(suffix);
  });
});
