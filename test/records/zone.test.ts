import { describe, expect, it } from "vitest";
import { type LocalRecord, parseZone } from "../../src/records/mod.ts";
import { enc, ZONE } from "./fixtures.ts";

describe("parseZone", () => {
  const byName = (records: LocalRecord[], name: string) => records.filter((r) => r.name === name);

  it("applies $ORIGIN, $TTL, @, relative names, blank owners and TTL/class in either order", () => {
    const records = parseZone(ZONE);
    expect(byName(records, "home.arpa")).toEqual([
      { name: "home.arpa", ttl: 3600, line: 4, type: "TXT", strings: [enc("v=spf1 -all")] },
    ]);
    expect(byName(records, "nas.home.arpa")).toEqual([
      { name: "nas.home.arpa", ttl: 60, line: 5, type: "A", address: "192.168.1.10" },
      { name: "nas.home.arpa", ttl: 60, line: 6, type: "AAAA", address: "fd00::10" },
    ]);
    expect(byName(records, "media.home.arpa")[0]).toMatchObject({ target: "nas.home.arpa" });
    expect(byName(records, "www.home.arpa")[0]).toMatchObject({ target: "media.home.arpa" });
    expect(byName(records, "deep.sub.home.arpa")).toHaveLength(1);
    expect(byName(records, "10.1.168.192.in-addr.arpa")[0]).toMatchObject({
      type: "PTR",
      target: "nas.home.arpa",
    });
  });

  it("decodes quoted strings with escapes", () => {
    const txt = byName(parseZone(ZONE), "txt.home.arpa")[0];
    expect(txt.type === "TXT" && txt.strings.map((s) => new TextDecoder().decode(s as Uint8Array)))
      .toEqual(['a "quoted" word', "second", "ABC"]);
  });

  it("uses the given default TTL before any $TTL", () => {
    expect(parseZone("a.example. A 10.0.0.1\n", 42)[0].ttl).toBe(42);
    expect(parseZone("a.example. 1h30m A 10.0.0.1\n")[0].ttl).toBe(5400);
  });

  it.each([
    [
      "$ORIGIN x.\n\n\n\n\n\n\n\n\n\n\nh AAAA 2001:db8::zz",
      'line 12: bad AAAA address "2001:db8::zz"',
    ],
    ["a.example. A 10.0.0.256", 'line 1: bad A address "10.0.0.256"'],
    ["a.example. A 10.0.0.1 10.0.0.2", 'line 1: unexpected "10.0.0.2"'],
    ["a.example. MX 10 mail.example.", 'line 1: unsupported type "MX"'],
    ['a.example. CH TXT "x"', 'line 1: unsupported class "CH"'],
    ["nas A 10.0.0.1", 'line 1: relative name "nas" with no $ORIGIN'],
    ["@ A 10.0.0.1", 'line 1: "@" with no $ORIGIN'],
    ['a.example. TXT "open', "line 1: unterminated quoted string"],
    ["a.example. TXT unquoted", "line 1: TXT data must be quoted strings"],
    [`a.example. TXT "${"x".repeat(256)}"`, "line 1: TXT string of 256 bytes"],
    ["a.example. SOA ( ns. host. 1 2 3 4 5 )", "line 1: parentheses"],
    ["$INCLUDE other.zone", 'line 1: unsupported directive "$INCLUDE"'],
    ["$TTL forever", 'line 1: bad TTL "forever"'],
    ["$TTL 9999999999", 'line 1: bad TTL "9999999999"'],
    ["a.example. 300 IN", "line 1: missing record type"],
    ["a.example. CNAME", "line 1: missing CNAME data"],
    ["  A 10.0.0.1", "line 1: indented record with no previous owner"],
    ["bad_\u00e9.example. A 10.0.0.1", 'line 1: bad name "bad_\u00e9.example."'],
  ])("rejects %j", (text, message) => {
    expect(() => parseZone(text)).toThrow(message);
  });
});
