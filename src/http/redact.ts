/**
 * Error text made fit for a log line: the query string of every URL or path in it is cut, so a
 * JSON API name (`?name=`), a wire-format query (`?dns=`) or a credential in an upstream URL
 * never reaches the log (a `TypeError` from `new Request()` quotes the whole URL).
 *
 * @module
 */

/** A URL or path (something with a `/`), then `?` and what follows up to a space or quote. */
const QUERY = /([^\s?'"`]*\/[^\s?'"`]*)\?[^\s'"`]*/g;

/**
 * `text` with the query string of each URL or path in it replaced by `?…`.
 *
 * @example
 * ```ts
 * withoutQueries("Invalid URL: 'https://a b/dns-query?name=secret.example'");
 * // "Invalid URL: 'https://a b/dns-query?…'"
 * ```
 */
export function withoutQueries(text: string): string {
  return text.replace(QUERY, "$1?…");
}

/** An error's message, as {@linkcode withoutQueries} leaves it, for a log field. */
export function errorText(error: unknown): string {
  return withoutQueries(error instanceof Error ? error.message : String(error));
}
