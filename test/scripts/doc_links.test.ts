import { describe, expect, it } from "vitest";
import {
  checkDocLinks,
  filesOnDisk,
  headingAnchors,
  markdownLinks,
  type RepoFiles,
  slug,
} from "../../scripts/doc_links.ts";

/** A repository in memory: path -> text (folders exist when a file is under them). */
function repo(files: Record<string, string>): RepoFiles {
  return {
    text: (path) => files[path],
    exists: (path) => path in files || Object.keys(files).some((f) => f.startsWith(`${path}/`)),
    list: () => Object.keys(files),
  };
}

describe("heading anchors", () => {
  it.each([
    ["Discovery (DDR)", "discovery-ddr"],
    [
      "A fleet: N bridges behind HAProxy, one Redis, the DoH face at the edge",
      "a-fleet-n-bridges-behind-haproxy-one-redis-the-doh-face-at-the-edge",
    ],
    ["DoT face on `node:tls`", "dot-face-on-nodetls"],
    [
      "DoH upstreams over the bridge's own HTTP/2 client",
      "doh-upstreams-over-the-bridges-own-http2-client",
    ],
    ["No delay: Nagle and delayed ACK", "no-delay-nagle-and-delayed-ack"],
    ["tcp_nodelay and DoT→DoH", "tcp_nodelay-and-dotdoh"],
  ])("makes %j into #%s, as GitHub does", (heading, anchor) => {
    expect(slug(heading)).toBe(anchor);
  });

  it("reads headings outside code blocks only, numbering repeats", () => {
    const md = "# Title\n\n```\n# redis.conf\n```\n\n## Notes\n\n### Notes\n";
    expect([...headingAnchors(md)]).toEqual(["title", "notes", "notes-1"]);
  });
});

describe("markdown links", () => {
  it("finds relative targets, not URLs, code spans or code blocks", () => {
    const md = [
      "See [the faces](faces.md#the-doh-face) and [x](#local), [web](https://example.com).",
      "`[not](a-link.md)` is code.",
      "```",
      "[also](not-a-link.md)",
      "```",
    ].join("\n");
    expect(markdownLinks(md)).toEqual([
      { target: "faces.md#the-doh-face", line: 1 },
      { target: "#local", line: 1 },
    ]);
  });
});

describe("the reference check", () => {
  const docs = {
    "README.md": "# dotbridge\n\nSee [faces](docs/faces.md#the-doh-face).\n",
    "docs/faces.md": "# Faces\n\n## The DoH face\n\nBack to [the top](../README.md#dotbridge).\n",
  };

  it("accepts links and mentions that resolve", () => {
    expect(checkDocLinks(repo({
      ...docs,
      "src/a.ts": "// see docs/faces.md#the-doh-face and README.md\n",
    }))).toEqual([]);
  });

  it.each([
    [{ "docs/y.md": "[x](gone.md)\n" }, "docs/gone.md does not exist"],
    [{ "docs/y.md": "[x](faces.md#the-dot-face)\n" }, "docs/faces.md has no heading #the-dot-face"],
    [{ "docs/y.md": "Measured: docs/bench.md.\n" }, "docs/bench.md does not exist"],
    [{ "docs/x.md": "# X\n\n[y](#nowhere)\n" }, "docs/x.md has no heading #nowhere"],
    [{ "src/a.ts": "// docs/faces.md#design-notes\n" }, "has no heading #design-notes"],
    [{ "src/a.ts": "// see the README's table\n" }, 'says "README" without a file'],
    [{ "test/a.ts": "// the Nagle lesson in PLATFORM-NOTES\n" }, "PLATFORM-NOTES is not in"],
    [{ "docs/x.md": '# X\n\nAs measured (see "Design notes").\n' }, "link the section"],
  ])("reports %j", (extra, message) => {
    const problems = checkDocLinks(repo({ ...docs, ...extra }));
    expect(problems).toHaveLength(1);
    expect(problems[0].message).toContain(message);
    expect(problems[0].file).toBe(Object.keys(extra)[0]);
  });

  it("finds nothing dangling in this repository", () => {
    const root = new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
    const files = filesOnDisk(root);
    expect(files.list()).toContain("docs/architecture.md");
    expect(checkDocLinks(files)).toEqual([]);
  });
});
