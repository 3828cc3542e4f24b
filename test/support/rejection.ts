/**
 * What a promise rejects with, for tests that look at a failure closely.
 *
 * @module
 */

/**
 * Awaits `promise` and returns what it rejected with; throws when it fulfils instead.
 *
 * @example
 * ```ts
 * const error = await rejection(connect(target));
 * expect(error.message).toMatch(/certificate/);
 * ```
 */
export async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error("expected a rejection");
}
