/** Field names, values and `:authority` as RFC 9113 §8.2.1 and §8.3.1 take them. */
import { describe, expect, it } from "vitest";
import { validAuthority, validFieldName, validFieldValue } from "../../src/h2/fields.ts";

describe("validFieldName", () => {
  const cases: [string, boolean][] = [
    ["content-type", true],
    [":authority", true],
    ["x-a_b.c~!#$%&'*+^`|", true],
    ["Content-Type", false],
    ["x y", false],
    ["x:y", false],
    ["::path", false],
    [":", false],
    ["", false],
    ["caf\xe9", false],
    ["x\x7f", false],
  ];
  for (const [name, ok] of cases) {
    it(`${ok ? "takes" : "refuses"} ${JSON.stringify(name)}`, () => {
      expect(validFieldName(name)).toBe(ok);
    });
  }
});

describe("validFieldValue", () => {
  const cases: [string, boolean][] = [
    ["", true],
    ["a b", true],
    ["a\tb", true],
    ["caf\xe9", true],
    [" a", false],
    ["a ", false],
    ["\ta", false],
    ["a\t", false],
    ["a\0b", false],
    ["a\nb", false],
    ["a\rb", false],
  ];
  for (const [value, ok] of cases) {
    it(`${ok ? "takes" : "refuses"} ${JSON.stringify(value)}`, () => {
      expect(validFieldValue(value)).toBe(ok);
    });
  }
});

describe("validAuthority", () => {
  const cases: [string, boolean][] = [
    ["", true],
    ["dns.example", true],
    ["dns.example:443", true],
    ["192.0.2.1:8443", true],
    ["[2001:db8::1]", true],
    ["[2001:db8::1]:443", true],
    ["dns%2Dexample", true],
    ["user@dns.example", false],
    ["dns.example/x", false],
    ["dns.example?x", false],
    ["dns.example#x", false],
    ["dns example", false],
    ["dns.example:4a", false],
    ["dns.example:443:1", false],
    ["2001:db8::1", false],
    ["[2001:db8::1", false],
    ["dns%2", false],
  ];
  for (const [authority, ok] of cases) {
    it(`${ok ? "takes" : "refuses"} ${JSON.stringify(authority)}`, () => {
      expect(validAuthority(authority)).toBe(ok);
    });
  }
});
