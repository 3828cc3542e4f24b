import { describe, expect, it } from "vitest";
import { summarizeSnapshot } from "../../scripts/bench/heap.ts";
import type { IdleResult } from "../../scripts/bench/idle_memory.ts";
import { renderIdle } from "../../scripts/bench/table.ts";

describe("heap snapshot summary", () => {
  it("sums nodes' own sizes by type and constructor", () => {
    const snapshot = {
      snapshot: {
        meta: {
          node_fields: ["type", "name", "id", "self_size", "edge_count"],
          node_types: [["hidden", "array", "string", "object", "code", "closure"]],
        },
      },
      // type, name (string index), id, self_size, edge_count
      nodes: [
        3,
        0,
        1,
        100,
        0, // object Socket
        3,
        0,
        2,
        50,
        0, // object Socket
        3,
        1,
        3,
        30,
        0, // object Session
        2,
        2,
        4,
        16,
        0, // string (by type only)
        2,
        3,
        5,
        8,
        0, // string
        5,
        4,
        6,
        32,
        0, // closure onData
      ],
      strings: ["Socket", "Session", "abc", "de", "onData"],
    };
    const { classes, totalBytes } = summarizeSnapshot(JSON.stringify(snapshot));
    expect(totalBytes).toBe(236);
    expect(classes[0]).toEqual({ name: "object Socket", count: 2, selfBytes: 150 });
    expect(classes).toContainEqual({ name: "string", count: 2, selfBytes: 24 });
    expect(classes).toContainEqual({ name: "closure onData", count: 1, selfBytes: 32 });
  });
});

describe("idle-memory table", () => {
  const smaps = { anon: 0, file: 0, stack: 0 };
  const result: IdleResult = {
    label: "bridge, default listener",
    steps: [
      { connections: 0, open: 0, rssMb: 64, smaps },
      { connections: 1000, open: 1000, rssMb: 96, smaps },
      { connections: 10000, open: 10000, rssMb: 364, smaps },
    ],
    heap: {
      connections: 2000,
      heapBytes: 8 * 1024,
      externalBytes: 1024,
      top: [["object TLSSocket", 1, 440], ["string", 0.2, 8]],
    },
  };

  it("gives the cost per connection from the first step to the last, and its parts", () => {
    const text = renderIdle([result]).join("\n");
    // (364 - 64) MiB over 10 000 connections = 30.72 KiB; 8 KiB heap, 1 KiB buffers, the rest native.
    expect(text).toContain(
      "| bridge, default listener | 64.0 | 96.0 | 364.0 | 30.7 | 8.0 | 1.0 | 21.7 |",
    );
    expect(text).toContain("object TLSSocket 1.0× 440 B");
    expect(text).not.toContain("string 0.2×"); // under 32 bytes per connection: left out
  });

  it("leaves the heap columns empty without a heap run", () => {
    const text = renderIdle([{ ...result, heap: undefined }]).join("\n");
    expect(text).toContain("| 364.0 | 30.7 | – | – | – |");
  });
});
