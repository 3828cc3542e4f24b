/**
 * A small structured logger: one JSON object or logfmt line per event, to a sink the edge
 * chooses. Fields are the caller's responsibility: never pass query names or client addresses
 * unless the operator turned query logging on.
 *
 * @module
 */

/** Severity, lowest first. */
export type LogLevel = "debug" | "info" | "warn" | "error";

/** Structured fields of one log event. */
export type LogFields = Record<string, string | number | boolean | undefined>;

/** The logger every component takes. */
export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
}

const ORDER: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** Options of {@linkcode createLogger}. */
export interface LoggerOptions {
  /** Events below this level are dropped. Default `info`. */
  level?: LogLevel;
  /** `logfmt` (default, for humans and grep) or `json`. */
  format?: "logfmt" | "json";
  /** Where lines go. Default `console.error`. */
  sink?: (line: string) => void;
  /** Clock for the `ts` field. Default `new Date()`. */
  now?: () => Date;
}

function logfmtValue(v: string | number | boolean): string {
  const s = String(v);
  return /^[\w.:/@+-]+$/.test(s) ? s : JSON.stringify(s);
}

/**
 * Creates a logger.
 *
 * @example
 * ```ts
 * const log = createLogger({ level: "info" });
 * log.warn("upstream down", { upstream: "https://dns.example/dns-query" });
 * ```
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? "info"];
  const sink = options.sink ?? ((line: string) => console.error(line));
  const now = options.now ?? (() => new Date());
  const json = options.format === "json";
  const emit = (level: LogLevel, msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const ts = now().toISOString();
    if (json) {
      sink(JSON.stringify({ ts, level, msg, ...fields }));
      return;
    }
    let line = `ts=${ts} level=${level} msg=${logfmtValue(msg)}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v !== undefined) line += ` ${k}=${logfmtValue(v)}`;
      }
    }
    sink(line);
  };
  return {
    debug: (m, f) => emit("debug", m, f),
    info: (m, f) => emit("info", m, f),
    warn: (m, f) => emit("warn", m, f),
    error: (m, f) => emit("error", m, f),
  };
}

/** A logger that drops everything. */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
