import { describe, expect, it } from "vitest";
import {
  ALLOWED,
  type FilterList,
  FilterPolicy,
  ListParser,
  NameHasher,
  parseList,
} from "../../src/filter/mod.ts";
import { wireName } from "../dns/fixtures.ts";

const hasher = new NameHasher([1, 2]);

/** The verdict of a list holding `text` on `name`: block, nxdomain, nodata, allow or pass. */
function verdict(text: string, name: string): string {
  const list: FilterList = { name: "l", set: parseList(text, hasher).set };
  const v = new FilterPolicy({ hasher, blocklists: [list] }).check(wireName(name), 0);
  if (v === null) return "pass";
  if (v === ALLOWED || v.allowed) return "allow";
  return ["", "block", "nxdomain", "nodata"][v.action];
}

describe("list formats", () => {
  // [line, name, verdict]: one line of a list, a name asked, what it gets.
  const cases: [string, string, string][] = [
    // plain names: the name and everything under it
    ["ads.example", "ads.example", "block"],
    ["ads.example", "x.y.ads.example", "block"],
    ["ads.example", "example", "pass"],
    ["ads.example", "badads.example", "pass"],
    ["ADS.Example.", "ads.EXAMPLE", "block"],
    ["ads.example   # trailing comment", "ads.example", "block"],
    ["  ads.example", "ads.example", "pass"], // indented: an RPZ continuation, not a name
    // wildcards: only what is under the name
    ["*.ads.example", "x.ads.example", "block"],
    ["*.ads.example", "ads.example", "pass"],
    // hosts
    ["0.0.0.0 ads.example", "ads.example", "block"],
    ["127.0.0.1\tads.example", "sub.ads.example", "block"],
    [":: ads.example", "ads.example", "block"],
    ["::1 ads.example", "ads.example", "block"],
    ["0 ads.example", "ads.example", "block"],
    ["0.0.0.0 a.example b.example # two", "b.example", "block"],
    ["0.0.0.0 localhost", "localhost", "pass"],
    ["127.0.0.1 localhost.localdomain", "localhost.localdomain", "pass"],
    ["192.168.1.10 nas.example", "nas.example", "pass"], // a redirect: local records' job
    // Adblock-style
    ["||ads.example^", "ads.example", "block"],
    ["||ads.example^", "cdn.ads.example", "block"],
    ["||ads.example^|", "ads.example", "block"],
    ["||ads.example^$important", "ads.example", "pass"],
    ["||ads.example", "ads.example", "pass"],
    ["||ads.example/banner^", "ads.example", "pass"],
    ["|https://ads.example^", "ads.example", "pass"],
    ["example.com##.banner", "example.com", "pass"],
    ["! ads.example", "ads.example", "pass"],
    ["[Adblock Plus 2.0]", "adblock", "pass"],
    ["@@||ads.example^", "ads.example", "allow"],
    ["@@||ads.example^", "x.ads.example", "allow"],
    // RPZ: exact triggers, wildcards for what is under
    ["ads.example CNAME .", "ads.example", "nxdomain"],
    ["ads.example CNAME .", "x.ads.example", "pass"],
    ["*.ads.example CNAME .", "x.ads.example", "nxdomain"],
    ["*.ads.example CNAME .", "ads.example", "pass"],
    ["ads.example 300 IN CNAME *.", "ads.example", "nodata"],
    ["ads.example IN 300 CNAME *.", "ads.example", "nodata"],
    ["ads.example CNAME rpz-passthru.", "ads.example", "allow"],
    ["ads.example CNAME rpz-drop.", "ads.example", "pass"],
    ["ads.example CNAME walled.example.", "ads.example", "pass"],
    ["ads.example A 10.0.0.1", "ads.example", "pass"],
    ["32.1.2.0.192.rpz-ip CNAME .", "32.1.2.0.192", "pass"],
    ["ns.example.rpz-nsdname CNAME .", "ns.example", "pass"],
    ["ads.example CNAME . ; why", "ads.example", "nxdomain"],
    // malformed names are skipped
    ["ads..example", "ads.example", "pass"],
    ["-", "x", "pass"],
    ["ads.ex ample", "ads.ex", "pass"],
    ["ünicode.example", "xn--nicode-2ya.example", "pass"],
    [`${"a".repeat(64)}.example`, `${"a".repeat(64)}.example`, "pass"],
  ];
  for (const [line, name, expected] of cases) {
    it(`${JSON.stringify(line)}: ${name} → ${expected}`, () => {
      expect(verdict(line + "\n", name)).toBe(expected);
    });
  }
});

describe("RPZ zones", () => {
  const zone = `$TTL 300
$ORIGIN rpz.example.
@ IN SOA localhost. hostmaster.localhost. (
        1 ; serial
        3600 600 86400 60 )
  IN NS localhost.
ads.example         CNAME .
*.ads.example       CNAME .
tracker.example.rpz.example. CNAME *.
                    IN A 10.0.0.1
ok.ads.example      CNAME rpz-passthru.
other.example.zone.example. CNAME .
`;

  it("reads owners relative to $ORIGIN and absolute ones under it", () => {
    expect(verdict(zone, "ads.example")).toBe("nxdomain");
    expect(verdict(zone, "x.ads.example")).toBe("nxdomain");
    expect(verdict(zone, "tracker.example")).toBe("nodata");
    expect(verdict(zone, "ok.ads.example")).toBe("allow");
    expect(verdict(zone, "other.example")).toBe("pass");
  });

  it("counts what it cannot use and passes over the SOA, NS and directives", () => {
    const { stats, set } = parseList(zone, hasher);
    // the local-data A record and the owner outside the zone; ads.example and *.ads.example
    // are one name with two actions
    expect(stats).toMatchObject({ skipped: 2, entries: 4 });
    expect(set.size).toBe(3);
  });

  it("takes the origin from an absolute SOA owner when there is no $ORIGIN", () => {
    const text = "rpz.example. SOA a. b. 1 2 3 4 5\nads.example.rpz.example. CNAME .\n";
    expect(verdict(text, "ads.example")).toBe("nxdomain");
  });
});

describe("ListParser", () => {
  it("counts lines, entries, skipped lines and modifiers", () => {
    const { stats } = parseList(
      "! comment\n# comment\n\n||a.example^\n||b.example^$important\n0.0.0.0 c.example\n/re/\n",
      hasher,
    );
    expect(stats).toEqual({ lines: 7, entries: 2, skipped: 2, modifiers: 1 });
  });

  it("merges a name listed twice, and an allow wins in the merge", () => {
    const { set } = parseList("a.example\n||a.example^\n@@||b.example^\nb.example\n", hasher);
    expect(set.size).toBe(2);
    expect(verdict("a.example\n||a.example^\n@@||b.example^\nb.example\n", "b.example"))
      .toBe("allow");
  });

  it("reads lines that straddle chunks, CRLF endings and a last line without a newline", () => {
    const text = "0.0.0.0 one.example\r\n||two.example^\r\nthree.example";
    for (let size = 1; size <= 7; size++) {
      const parser = new ListParser(hasher);
      for (let i = 0; i < text.length; i += size) parser.push(text.slice(i, i + size));
      const { set, stats } = parser.end();
      expect(stats.entries).toBe(3);
      expect(set.size).toBe(3);
    }
    expect(verdict(text, "three.example")).toBe("block");
  });

  it("builds sets that only a hasher with the same seeds can look up in", () => {
    const list = { name: "l", set: parseList("ads.example\n", hasher).set };
    const other = new FilterPolicy({ hasher: new NameHasher([3, 4]), blocklists: [list] });
    expect(other.check(wireName("ads.example"), 0)).toBe(null);
  });
});

describe("FilterPolicy's recent verdicts", () => {
  it("forgets them when a list's set is swapped by a reload", () => {
    const list: { name: string; set: ReturnType<typeof parseList>["set"] | undefined } = {
      name: "l",
      set: parseList("ads.example\n", hasher).set,
    };
    const allow: typeof list = { name: "a", set: undefined };
    const policy = new FilterPolicy({ hasher, blocklists: [list], allowlists: [allow] });
    const ask = () => policy.check(wireName("x.ads.example"), 0);
    expect(ask()?.allowed).toBe(false);
    expect(ask()?.allowed).toBe(false); // from the recent verdicts
    list.set = parseList("other.example\n", hasher).set;
    expect(ask()).toBe(null);
    list.set = parseList("ads.example\n", hasher).set;
    expect(ask()?.allowed).toBe(false);
    allow.set = parseList("x.ads.example\n", hasher).set;
    expect(ask()?.allowed).toBe(true);
  });
});
