/**
 * The HPACK tables: the indexes the encoders use agree with RFC 7541 Appendix A, and the dynamic
 * table indexes, sizes and evicts as RFC 7541 §2.3.3, §4.1 and §4.4 say.
 */
import { describe, expect, it } from "vitest";
import {
  DynamicTable,
  ENTRY_OVERHEAD,
  INDEX,
  NAME_INDEX,
  STATIC_TABLE,
  STATUS_INDEX,
} from "../../src/h2/hpack_table.ts";

describe("the static table", () => {
  it("has Appendix A's 61 entries, from :authority to www-authenticate", () => {
    expect(STATIC_TABLE.length).toBe(62); // index 0 unused
    expect(STATIC_TABLE[1]).toEqual([":authority", ""]);
    expect(STATIC_TABLE[61]).toEqual(["www-authenticate", ""]);
  });

  const cases: [string, number, string, string?][] = [
    ...Object.entries(STATUS_INDEX).map(([status, i]) =>
      ["status " + status, i, ":status", status] as [string, number, string, string]
    ),
    ...Object.entries(NAME_INDEX).map(([name, i]) =>
      ["name " + name, i, name] as [string, number, string]
    ),
    ["GET", INDEX.get, ":method", "GET"],
    ["POST", INDEX.post, ":method", "POST"],
    ["https", INDEX.https, ":scheme", "https"],
    ["http", INDEX.http, ":scheme", "http"],
    ["path", INDEX.path, ":path"],
    ["authority", INDEX.authority, ":authority"],
    ["accept", INDEX.accept, "accept"],
    ["content-length", INDEX.contentLength, "content-length"],
    ["content-type", INDEX.contentType, "content-type"],
  ];
  for (const [what, index, name, value] of cases) {
    it(`indexes ${what} where Appendix A has it (${index})`, () => {
      expect(STATIC_TABLE[index][0]).toBe(name);
      if (value !== undefined) expect(STATIC_TABLE[index][1]).toBe(value);
    });
  }
});

describe("DynamicTable", () => {
  it("looks up the static table below 62 and nothing at 0", () => {
    const table = new DynamicTable(4_096);
    expect(table.entry(0)).toBeUndefined();
    expect(table.entry(8)).toEqual([":status", "200"]);
    expect(table.entry(62)).toBeUndefined();
  });

  it("indexes the newest entry 62 and sizes entries in octets plus 32", () => {
    const table = new DynamicTable(4_096);
    table.insert("x-a", "1");
    table.insert("x-b", "\u00ff\u00fe"); // two octets as a binary string
    expect(table.entry(62)).toEqual(["x-b", "\u00ff\u00fe"]);
    expect(table.entry(63)).toEqual(["x-a", "1"]);
    expect(table.length).toBe(2);
    expect(table.size).toBe(3 + 1 + ENTRY_OVERHEAD + 3 + 2 + ENTRY_OVERHEAD);
  });

  it("evicts the oldest entries to make room", () => {
    const table = new DynamicTable(2 * (ENTRY_OVERHEAD + 4)); // room for two 4-octet entries
    table.insert("a", "111");
    table.insert("b", "222");
    table.insert("c", "333");
    expect(table.length).toBe(2);
    expect(table.entry(62)).toEqual(["c", "333"]);
    expect(table.entry(63)).toEqual(["b", "222"]);
    expect(table.entry(64)).toBeUndefined();
  });

  it("empties itself for an entry larger than the table, which is not added (§4.4)", () => {
    const table = new DynamicTable(100);
    table.insert("a", "1");
    table.insert("big", "x".repeat(100));
    expect(table.length).toBe(0);
    expect(table.size).toBe(0);
  });

  it("evicts down to a smaller size on a size update, and takes a larger one again", () => {
    const table = new DynamicTable(4_096);
    for (let i = 0; i < 10; i++) table.insert(`x-${i}`, "v");
    table.resize(2 * (ENTRY_OVERHEAD + 4));
    expect(table.limit).toBe(2 * (ENTRY_OVERHEAD + 4));
    expect(table.length).toBe(2);
    expect(table.entry(62)).toEqual(["x-9", "v"]);
    table.resize(0);
    expect(table.length).toBe(0);
    table.resize(4_096);
    table.insert("x-new", "v");
    expect(table.entry(62)).toEqual(["x-new", "v"]);
  });
});
