/**
 * Downloading a list, runtime-free: the conditional request (ETag, Last-Modified) once a copy is
 * in force, the 304, the status, and the byte cap both declared and counted. Each edge keeps only
 * where its copy goes (a file on Deno, the Cache API in the Worker).
 *
 * @module
 */

/** What the copy in force was served with, for a conditional request. */
export interface ListValidators {
  readonly etag?: string;
  readonly lastModified?: string;
}

/** Options of {@linkcode fetchList}. */
export interface FetchListOptions {
  /** The HTTP client (`fetch`, or a test's). */
  readonly fetch: (input: string, init: RequestInit) => Promise<Response>;
  /** Set when a copy is in force: the request is conditional, and a 304 means unchanged. */
  readonly validators?: ListValidators;
  readonly maxBytes: number;
  /** Ends the request and the body (a deadline, closing). */
  readonly signal: AbortSignal;
  /** The errors' words for a body over `maxBytes`: declared by Content-Length, or counted. */
  readonly declaredTooLarge: (length: number) => string;
  readonly countedTooLarge: () => string;
  readonly redirect?: RequestRedirect;
}

/** A download's outcome: unchanged (304), or a new body, capped, with its validators. */
export type FetchedList =
  | { readonly unchanged: true }
  | {
    readonly unchanged: false;
    readonly body: ReadableStream<Uint8Array>;
    readonly validators: ListValidators;
  };

/**
 * One conditional download of `source`.
 *
 * @throws {Error} `HTTP <status>` for another status; {@linkcode RangeError} for a declared length
 *   over the cap (the body's stream errors the same way once it counts past it)
 *
 * @example
 * ```ts
 * const got = await fetchList(url, { fetch, maxBytes, signal, declaredTooLarge, countedTooLarge });
 * if (!got.unchanged) await build(got.body);
 * ```
 */
export async function fetchList(source: string, options: FetchListOptions): Promise<FetchedList> {
  const { validators, maxBytes, signal } = options;
  const headers: Record<string, string> = {};
  if (validators?.etag) headers["if-none-match"] = validators.etag;
  if (validators?.lastModified) headers["if-modified-since"] = validators.lastModified;
  const init: RequestInit = { headers, signal };
  if (options.redirect) init.redirect = options.redirect;
  // Called unbound: workerd's global fetch refuses any other `this` (Illegal invocation).
  const doFetch = options.fetch;
  const response = await doFetch(source, init);
  if (response.status === 304 && validators) {
    await response.body?.cancel();
    return { unchanged: true };
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel();
    throw new Error(`HTTP ${response.status}`);
  }
  const length = Number(response.headers.get("content-length") ?? NaN);
  if (length > maxBytes) {
    await response.body.cancel();
    throw new RangeError(options.declaredTooLarge(length));
  }
  let total = 0;
  const body = response.body.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        signal.throwIfAborted();
        total += chunk.length;
        if (total > maxBytes) throw new RangeError(options.countedTooLarge());
        controller.enqueue(chunk);
      },
    }),
    { signal },
  );
  return {
    unchanged: false,
    body,
    validators: {
      etag: response.headers.get("etag") ?? undefined,
      lastModified: response.headers.get("last-modified") ?? undefined,
    },
  };
}

/** The name a source goes by: a file's path, a URL's host and path (no credentials, no query). */
export function listName(source: string): string {
  if (!/^https?:\/\//i.test(source)) return source;
  try {
    const u = new URL(source);
    return u.host + (u.pathname === "/" ? "" : u.pathname);
  } catch {
    return "list";
  }
}
