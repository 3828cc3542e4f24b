import { describe, expect, it } from "vitest";
import { detectFormat } from "../../src/records/mod.ts";

describe("detectFormat", () => {
  it.each(
    [
      ["", "10.0.0.1 a", "hosts"],
      ["", "# comment\n::1 localhost", "hosts"],
      ["", "; comment\n$ORIGIN x.\n", "zone"],
      ["", "nas.example. A 10.0.0.1", "zone"],
      ["/etc/hosts", "nas.example. A 10.0.0.1", "hosts"],
      ["lan.hosts", "", "hosts"],
      ["conf/lan.ZONE", "10.0.0.1 a", "zone"],
    ] as const,
  )("file %j with %j is %s", (fileName, text, format) => {
    expect(detectFormat(text, fileName)).toBe(format);
  });
});
