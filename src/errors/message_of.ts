/**
 * The text of a caught value, for messages that wrap a cause and for log fields.
 *
 * @module
 */

/**
 * An error's message, or the thrown value as text (a thrown string, `undefined`, an object
 * without a message): what a message that wraps a cause, or a log field, shows of it.
 *
 * @example
 * ```ts
 * try {
 *   await connect();
 * } catch (e) {
 *   throw new Error(`TLS to dns.example:853: ${messageOf(e)}`, { cause: e });
 * }
 * ```
 */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
