/**
 * What the command line says back: `--help` (the common options by concern, with examples),
 * `--help=all` (every option), and the nearest known name for an unknown one.
 *
 * @module
 */
import { type ConfigGroup, envName, flagSyntax, OPTIONS, type OptionSpec } from "./options.ts";

/** Edit distance (insertions, deletions, substitutions) between two short strings. */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length];
}

/**
 * ` (did you mean PREFIX<key>?)` for the known key nearest `name` (lower case, `_` as `-`), or
 * ` (see --help=all)` when none is near.
 */
export function suggestion(name: string, prefix: string): string {
  const wanted = name.toLowerCase().replaceAll("_", "-").replace(/^no-/, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const o of OPTIONS) {
    const d = distance(wanted, o.name);
    if (d < bestDistance) [best, bestDistance] = [o.name, d];
  }
  const near = best !== undefined &&
    (bestDistance <= Math.max(2, Math.floor(wanted.length / 4)) || best.startsWith(wanted));
  if (!near) return " (see --help=all)";
  return ` (did you mean ${prefix === "DOTBRIDGE_" ? envName(best!) : prefix + best}?)`;
}

/** What each group of options is about, in `--help` order. */
const GROUP_TITLES: Readonly<Record<ConfigGroup, string>> = {
  certificate: "Certificate",
  dot: "DoT face (and the connection limits every face shares)",
  doh: "DoH face",
  dns: "Plain DNS face (UDP and TCP)",
  upstream: "Upstreams and routes",
  resolver: "Resolver policy: cache, ACL, rate limit, tenants, local records, blocklists, DDR",
  log: "Logs, query log and dnstap",
  metrics: "Metrics, readiness and the status page",
  runtime: "Process",
};

/** The options the short `--help` lists, by group. */
const COMMON: readonly string[] = [
  "config",
  "cert",
  "key",
  "listen",
  "http-listen",
  "doq-listen",
  "dns-listen",
  "upstream",
  "upstream-strategy",
  "route",
  "cache",
  "allow",
  "tenants",
  "local-records",
  "blocklist",
  "allowlist",
  "log-level",
  "query-log",
  "metrics-listen",
  "threads",
];

const EXAMPLES = [
  ["dotbridge", "DoT on 127.0.0.1:8853 and DoH on :8443, a development certificate"],
  [
    "dotbridge --cert fullchain.pem --key privkey.pem --listen 0.0.0.0:853 --http-listen 0.0.0.0:443",
    "production faces with your certificate",
  ],
  [
    "dotbridge --dns-listen 0.0.0.0:53 --route lan=udp://192.168.1.1 --blocklist /etc/ads.txt",
    "a LAN's resolver: plain DNS, the router for lan., a blocklist",
  ],
  ["dotbridge --config /etc/dotbridge/dotbridge.json", "every option from a JSON file"],
] as const;

/**
 * A help text's first clause, for the short `--help`: up to its first `; ` (or a `: ` after a
 * dozen characters) outside parentheses, without the parenthesised parts, at most 70 characters.
 */
function firstClause(help: string): string {
  let depth = 0;
  let end = help.length;
  for (let i = 0; i < help.length; i++) {
    const c = help[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (depth === 0 && help[i + 1] === " " && (c === ";" || (c === ":" && i >= 12))) {
      end = i;
      break;
    }
  }
  const clause = strip(help.slice(0, end));
  return clause.length <= 70 ? clause : `${clause.slice(0, clause.lastIndexOf(" ", 68))} …`;
}

/** `text` without its parenthesised parts. */
function strip(text: string): string {
  return text.replace(/\s*\([^()]*(\([^()]*\)[^()]*)*\)/g, "").trim();
}

function optionBlock(o: OptionSpec): string[] {
  let detail = `      ${o.help}`;
  if (o.choices) detail += ` (${o.choices.join(" | ")})`;
  const dflt = o.default !== undefined ? `default: ${o.default}; ` : "";
  const negated = o.kind === "bool" ? `; --no-${o.name}` : "";
  return [`  ${flagSyntax(o)}`, detail, `      ${dflt}env: ${envName(o.name)}${negated}`];
}

/**
 * The `--help` text: usage, examples and the common options by group (`all`: every option, by
 * group, with its default and environment variable, as `--help=all` prints it).
 *
 * @example
 * ```ts
 * console.log(helpText("dotbridge", true));
 * ```
 */
export function helpText(program = "dotbridge", all = false): string {
  const lines = [
    `Usage: ${program} [options]`,
    "",
    "Bridges encrypted DNS both ways: DoT, DoH, DoQ and plain DNS faces to DoH, DoT, DoQ and",
    "plain DNS upstreams, through one resolver (cache, ACL, tenants, local records, blocklists).",
    "",
    "Examples:",
    ...EXAMPLES.flatMap(([command, what]) => [`  ${command}`, `      ${what}`]),
    "",
    "Every option is also an environment variable (DOTBRIDGE_LISTEN for --listen) and a key of",
    "the --config file; the command line wins, then the environment, then the file. Booleans take",
    "--x, --no-x, --x=false or --x false. Durations need a unit: 500ms, 5s, 2m, 1h, 1d.",
    "",
  ];
  const groups = Object.keys(GROUP_TITLES) as ConfigGroup[];
  if (!all) {
    for (const group of [undefined, ...groups]) {
      const names = OPTIONS.filter((o) => o.group === group && COMMON.includes(o.name));
      if (names.length === 0) continue;
      lines.push(group ? `${GROUP_TITLES[group]}:` : "General:");
      for (const o of names) lines.push(`  ${flagSyntax(o).padEnd(30)} ${firstClause(o.help)}`);
      lines.push("");
    }
    lines.push(
      `${OPTIONS.length} options in all: ${program} --help=all`,
      `  ${"--version".padEnd(30)} print the version and exit`,
    );
    return lines.join("\n");
  }
  for (const group of [undefined, ...groups]) {
    const options = OPTIONS.filter((o) => o.group === group);
    if (options.length === 0) continue;
    lines.push(group ? `${GROUP_TITLES[group]}:` : "General:");
    for (const o of options) lines.push(...optionBlock(o));
    lines.push("");
  }
  lines.push(
    "  --help, --help=all",
    "      the common options, or all of them",
    "  --version",
    "      print the version and exit",
  );
  return lines.join("\n");
}
