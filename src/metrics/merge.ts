/**
 * Merging the Prometheus text of several threads into one scrape: samples with the same name
 * and labels are added up (counters, histograms, connection and in-flight gauges), except the
 * gauges listed in `minOf`, which take the smallest value (health: down if any thread sees it
 * down).
 *
 * @module
 */

/**
 * Merges expositions. HELP/TYPE lines and the order of first appearance are kept.
 *
 * @example
 * ```ts
 * const text = mergeExpositions([a, b], new Set(["dotbridge_upstream_up"]));
 * ```
 */
export function mergeExpositions(
  texts: readonly string[],
  minOf: ReadonlySet<string> = new Set(),
): string {
  interface Family {
    meta: string[];
    keys: string[];
  }
  const families = new Map<string, Family>();
  const values = new Map<string, number>();
  for (const text of texts) {
    let family: Family | undefined;
    for (const line of text.split("\n")) {
      if (!line) continue;
      if (line.startsWith("#")) {
        const name = line.split(" ")[2] ?? "";
        family = families.get(name);
        if (!family) {
          family = { meta: [], keys: [] };
          families.set(name, family);
        }
        if (!family.meta.includes(line)) family.meta.push(line);
        continue;
      }
      const cut = line.lastIndexOf(" ");
      const key = line.slice(0, cut);
      const value = Number(line.slice(cut + 1));
      const name = key.split("{")[0];
      if (!family) {
        family = { meta: [], keys: [] };
        families.set(name, family);
      }
      const prev = values.get(key);
      if (prev === undefined) {
        values.set(key, value);
        family.keys.push(key);
      } else {
        values.set(key, minOf.has(name) ? Math.min(prev, value) : prev + value);
      }
    }
  }
  const lines: string[] = [];
  for (const f of families.values()) {
    lines.push(...f.meta);
    for (const k of f.keys) lines.push(`${k} ${values.get(k)}`);
  }
  return lines.join("\n") + "\n";
}
