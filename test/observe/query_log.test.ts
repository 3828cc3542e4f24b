/**
 * The query log's core: client privacy levels, the line format, the tenant opt-out, and the
 * bounded queue that drops (and counts) instead of waiting.
 *
 * @module
 */
import { createHmac } from "node:crypto";
import { describe, expect, it } from "vitest";
import { answerOf } from "../../src/dns/answer.ts";
import { clientField, truncateAddress } from "../../src/observe/client_field.ts";
import { LineQueue } from "../../src/observe/line_queue.ts";
import { queryLogLine, queryLogTap, typeName } from "../../src/observe/query_log.ts";
import type { QueryTrace } from "../../src/pipeline/types.ts";
import type { TappedQuery } from "../../src/resolver/processor.ts";
import { makeQuery } from "../dns/fixtures.ts";
import { answerFromZone } from "../support/zone.ts";

function tapped(
  name: string,
  trace: QueryTrace,
  address = "192.0.2.77",
  type = "A",
): TappedQuery {
  const query = makeQuery({ name, type });
  const answer = answerOf(answerFromZone(query));
  return {
    ctx: { face: "dot", signal: new AbortController().signal, client: { address, port: 5300 } },
    trace,
    query,
    question: answer.info.question,
    answer,
    startedAt: 0,
    ms: 1.23456,
  };
}

describe("client privacy", () => {
  it.each([
    ["192.0.2.77", "192.0.2.0/24"],
    ["::ffff:198.51.100.9", "198.51.100.0/24"],
    ["2001:db8:1:2ab::1", "2001:db8:1:200::/56"],
    ["2001:db8::1", "2001:db8::/56"],
    ["[2001:db8:aaaa:bbff:1::2]", "2001:db8:aaaa:bb00::/56"],
    ["fe80::1%eth0", "fe80::/56"],
    ["::1", "::/56"],
    ["not an address", "?"],
    ["300.1.1.1", "?"],
  ])("truncates %s to %s", (address, network) => {
    expect(truncateAddress(address)).toBe(network);
  });

  it("writes no client for none, the address for full", () => {
    expect(clientField("none")("192.0.2.1")).toBeUndefined();
    expect(clientField("full")("192.0.2.1")).toBe("192.0.2.1");
  });

  it("hashes with a key that changes every day, the same within a day", () => {
    let now = Date.UTC(2026, 11, 6, 10);
    let keys = 0;
    const field = clientField("hashed", {
      randomKey: () => Uint8Array.of(++keys),
      hmac: (key, text) => createHmac("sha256", key).update(text).digest("hex"),
      now: () => now,
    });
    const a = field("192.0.2.1");
    expect(a).toHaveLength(16);
    expect(a).not.toContain("192.0.2.1");
    expect(field("192.0.2.1")).toBe(a);
    now += 15 * 3_600_000; // 01:00 the next UTC day
    expect(field("192.0.2.1")).not.toBe(a);
    expect(keys).toBe(2);
  });
});

describe("query log lines", () => {
  it("holds every field as JSON", () => {
    const line = queryLogLine(
      tapped("a.example.test", { source: "upstream", upstream: "https://dns.example [2]" }),
      "192.0.2.0/24",
      "2026-12-06T16:40:00.123Z",
    );
    expect(line.endsWith("}\n")).toBe(true);
    expect(JSON.parse(line)).toEqual({
      time: "2026-12-06T16:40:00.123Z",
      face: "dot",
      tenant: "",
      client: "192.0.2.0/24",
      name: "a.example.test",
      type: "A",
      rcode: "NOERROR",
      source: "upstream",
      upstream: "https://dns.example [2]",
      ms: 1.23,
    });
  });

  it("escapes names that need it and names unknown types by number", () => {
    const q = tapped(
      'we"ird\\\\.example.test',
      { source: "blocked", list: "ads" },
      "192.0.2.1",
      "A",
    );
    const parsed = JSON.parse(queryLogLine(q, undefined, "t"));
    expect(parsed.name).toBe(q.question!.name);
    expect(parsed.list).toBe("ads");
    expect(parsed).not.toHaveProperty("client");
    const typed = tapped("t.example.test", { source: "cache" }, "192.0.2.1", "AAAA");
    expect(JSON.parse(queryLogLine(typed, undefined, "t")).type).toBe("AAAA");
    expect([typeName(65), typeName(64), typeName(4711)]).toEqual(["HTTPS", "SVCB", "TYPE4711"]);
  });

  it("never writes the full address unless full", () => {
    for (const privacy of ["none", "truncated", "hashed"] as const) {
      const lines: string[] = [];
      const tap = queryLogTap({
        client: clientField(privacy, {
          randomKey: () => crypto.getRandomValues(new Uint8Array(32)),
          hmac: (_k, t) => [...t].map((c) => c.charCodeAt(0).toString(16)).join("").padEnd(32, "f"),
        }),
        write: (l) => lines.push(l),
      });
      tap(tapped("p.example.test", { source: "cache" }, "192.0.2.77"));
      tap(tapped("p.example.test", { source: "cache" }, "2001:db8:1:2ab::1"));
      for (const line of lines) {
        expect(line).not.toContain("192.0.2.77");
        expect(line).not.toContain("2ab::1");
      }
    }
  });

  it("leaves out the queries of tenants that opted out", () => {
    const lines: string[] = [];
    const tap = queryLogTap({
      client: clientField("truncated"),
      write: (l) => lines.push(l),
      optedOut: new Set(["private"]),
    });
    tap(tapped("x.example.test", { source: "cache", tenant: "private" }));
    tap(tapped("y.example.test", { source: "cache", tenant: "kids" }));
    tap(tapped("z.example.test", { source: "cache" }));
    expect(lines.map((l) => JSON.parse(l).name)).toEqual(["y.example.test", "z.example.test"]);
    expect(JSON.parse(lines[0]).tenant).toBe("kids");
  });

  it("writes the time of the answer in ISO 8601", () => {
    const lines: string[] = [];
    const tap = queryLogTap({
      client: clientField("none"),
      write: (l) => lines.push(l),
      now: () => Date.UTC(2026, 11, 6, 16, 40, 0, 7),
    });
    tap(tapped("x.example.test", { source: "cache" }));
    expect(JSON.parse(lines[0]).time).toBe("2026-12-06T16:40:00.007Z");
  });
});

describe("LineQueue", () => {
  it("drops and counts what does not fit, and says when a batch is ready", () => {
    let drops = 0;
    let ready = 0;
    const q = new LineQueue({ maxChars: 10, onDrop: () => drops++, onReady: () => ready++ });
    expect(q.push("12345\n")).toBe(true);
    expect(q.push("1234\n")).toBe(false);
    expect(q.push("123\n")).toBe(true);
    expect([q.dropped, drops, ready]).toEqual([1, 1, 1]);
    expect(q.take()).toBe("12345\n123\n");
    expect(q.take()).toBe("");
    q.push("a\n");
    expect(ready).toBe(2);
  });
});
