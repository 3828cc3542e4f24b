/**
 * A generated blocklist for the `blocklist` bench mode and the reload test: `n` distinct-looking
 * domains, deterministic for a seed, shaped like the names popular lists hold (a random first
 * label or two over one of 50 000 second-level names under a dozen TLDs; ~22 characters on
 * average).
 *
 * @module
 */

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const TLDS = ["com", "net", "org", "io", "de", "co.uk", "info", "xyz", "ru", "fr", "nl", "app"];

/** The domains, one after another (xorshift32 from `seed`). */
export function* generatedDomains(n: number, seed = 1): Generator<string> {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s;
  };
  const word = (min: number, max: number) => {
    const length = min + next() % (max - min + 1);
    let w = "";
    for (let i = 0; i < length; i++) w += ALPHABET[next() % (i === 0 ? 26 : 36)];
    return w;
  };
  const seconds: string[] = [];
  for (let i = 0; i < 50_000; i++) seconds.push(`${word(5, 12)}.${TLDS[next() % TLDS.length]}`);
  for (let i = 0; i < n; i++) {
    const depth = next() % 3;
    let name = seconds[next() % seconds.length];
    if (depth === 0) name = `${word(4, 10)}-${name}`;
    for (let d = 0; d < depth; d++) name = `${word(3, 10)}.${name}`;
    yield name;
  }
}

/** A list file's text: `n` generated domains in the given format, one per line. */
export function generatedList(
  n: number,
  format: "plain" | "hosts" | "adblock" = "plain",
  seed = 1,
): string {
  const lines: string[] = [];
  for (const name of generatedDomains(n, seed)) {
    lines.push(
      format === "hosts" ? `0.0.0.0 ${name}` : format === "adblock" ? `||${name}^` : name,
    );
  }
  return lines.join("\n") + "\n";
}
