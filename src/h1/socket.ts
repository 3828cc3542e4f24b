/**
 * The byte stream an HTTP/1.1 connection (`server.ts`) runs over, as the edge supplies it: it
 * pushes what it reads into the connection and takes its writes.
 *
 * @module
 */

/** The socket under one connection, as the edge supplies it. */
export interface H1Socket {
  /** Writes all of `bytes` (which it may keep until it resolves). */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes both directions. Safe to call more than once. */
  close(): void;
  /** Stops delivering input (too many requests waiting for answers). */
  pause?(): void;
  /** Delivers input again. */
  resume?(): void;
}
