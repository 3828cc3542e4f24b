/**
 * The query log file's writer: what queued during one write is cut into file-sized pieces of
 * whole lines, so a burst never makes one file outgrow --query-log-max-size.
 */
import { describe, expect, it } from "vitest";
import { linePieces, openQueryLog } from "../../src/deno/query_log_file.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (pieces: Uint8Array[]) => pieces.map((p) => decoder.decode(p));

describe("linePieces", () => {
  it("cuts at line ends, each piece at most max bytes", () => {
    expect(text(linePieces(encoder.encode("aa\nbb\ncc\n"), 6))).toEqual(["aa\nbb\n", "cc\n"]);
    expect(text(linePieces(encoder.encode("aa\nbb\ncc\n"), 3))).toEqual(["aa\n", "bb\n", "cc\n"]);
  });

  it("keeps a line longer than max whole, alone", () => {
    expect(text(linePieces(encoder.encode("a\nlonger line\nb\n"), 4))).toEqual([
      "a\n",
      "longer line\n",
      "b\n",
    ]);
  });

  it("leaves what fits, and max 0, as one piece", () => {
    const bytes = encoder.encode("aa\nbb\n");
    expect(linePieces(bytes, 6)).toEqual([bytes]);
    expect(linePieces(bytes, 0)).toEqual([bytes]);
  });
});

describe("the query log file under a burst", () => {
  it("rotates within one write's lines, so no file outgrows maxBytes", async () => {
    const dir = await Deno.makeTempDir({ prefix: "dotbridge-qlog-" });
    try {
      const path = `${dir}/q.log`;
      const log = openQueryLog({ path, maxBytes: 1000, files: 3, batchMs: 5 });
      // 40 lines of 100 bytes queued before the first write: 4000 bytes in one batch.
      for (let i = 0; i < 40; i++) {
        log.queue.push(`${String(i).padStart(2, "0")} ${"x".repeat(96)}\n`);
      }
      await log.close();
      const sizes = [path, `${path}.1`, `${path}.2`, `${path}.3`].map((p) => Deno.statSync(p).size);
      for (const size of sizes) expect(size).toBeLessThanOrEqual(1000);
      expect(sizes.reduce((a, b) => a + b)).toBe(4000); // nothing lost: 4 files of 10 lines
      expect(Deno.readTextFileSync(path).startsWith("30 ")).toBe(true); // the newest in PATH
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  });
});
