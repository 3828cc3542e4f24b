/**
 * Markdown tables and the number formats of the benchmark report.
 *
 * @module
 */

/** A markdown table; the first `leftColumns` columns align left, the rest right. */
export function markdownTable(headers: string[], rows: string[][], leftColumns = 1): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [
    line(headers),
    line(headers.map((_, i) => (i < leftColumns ? "---" : "---:"))),
    ...rows.map(line),
  ].join("\n");
}

/** A duration in ms with sensible precision; "–" for none. */
export function fmtMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return "–";
  if (Math.abs(ms) < 1) return ms.toFixed(3);
  if (Math.abs(ms) < 10) return ms.toFixed(2);
  return ms.toFixed(1);
}

/** A number with `digits` decimals; "–" for none. */
export function fmtNum(n: number | undefined, digits = 0): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  return n.toFixed(digits);
}

/** A ratio as `1.25×` (one decimal from 10 up); "–" for none. */
export function fmtRatio(n: number | undefined): string {
  if (n === undefined || !Number.isFinite(n)) return "–";
  return `${n >= 10 ? n.toFixed(1) : n.toFixed(2)}×`;
}
