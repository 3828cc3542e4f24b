/**
 * One request and its reply as the bridge's own HTTP servers hand them over, whatever the wire:
 * HTTP/2 (`src/h2/server.ts`) and HTTP/1.1 (`src/h1/server.ts`) parse into a
 * {@linkcode ServerRequest} and write a {@linkcode ServerReply}; the DoH face's handler
 * (`src/http/face.ts`) answers both. No `Request` object is built on the way.
 *
 * @module
 */

/** One request, complete (headers and body). */
export interface ServerRequest {
  /** `GET`, `POST`, ... as the client sent it. */
  readonly method: string;
  /** The request target: path and query. */
  readonly path: string;
  /** `:authority`, or the `host` field. */
  readonly authority: string;
  /**
   * Regular header fields, names in lower case, in order. Values are binary strings (one char
   * per octet), as the Fetch standard's `Headers` holds them.
   */
  readonly headers: readonly (readonly [string, string])[];
  /** The body; `undefined` for GET and HEAD. */
  readonly body: Uint8Array | undefined;
  /** Aborts when the client resets the stream or the connection goes. */
  readonly signal: AbortSignal;
}

/** A complete response. */
export interface ServerReply {
  readonly status: number;
  /** Lower-case names; `content-length` and connection-specific fields are set by the server. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

/** Answers one request; a rejection becomes a 500. */
export type ServerHandler = (request: ServerRequest) => Promise<ServerReply>;

/** The first field named `name` (lower case), if any. */
export function headerOf(request: ServerRequest, name: string): string | undefined {
  for (const [n, v] of request.headers) if (n === name) return v;
  return undefined;
}

/**
 * Every field line named `name` (lower case), in order, joined with `", "` as RFC 9110 §5.3
 * combines them; undefined when there is none. A list-valued field such as `x-forwarded-for`
 * must be read this way: a proxy may append its own line rather than extend the client's.
 */
export function joinedHeaderOf(request: ServerRequest, name: string): string | undefined {
  let joined: string | undefined;
  for (const [n, v] of request.headers) {
    if (n === name) joined = joined === undefined ? v : `${joined}, ${v}`;
  }
  return joined;
}
