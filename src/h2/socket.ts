/**
 * The byte stream an HTTP/2 connection runs over, as the edge supplies it: kept apart so that
 * the connection core (`connection.ts`) and its outbox (`outbox.ts`) both depend on it, not on
 * each other.
 *
 * @module
 */

/** The byte stream under a connection: an established TLS connection that negotiated `h2`. */
export interface H2Socket {
  /**
   * Reads into `buffer`; resolves the byte count, or `null` at end of stream. A socket without
   * `read` pushes instead: its edge calls {@linkcode H2Core.receive} and
   * {@linkcode H2Core.receiveEnd} (node sockets' `data` and `end` events).
   */
  read?(buffer: Uint8Array): Promise<number | null>;
  /** Writes all of `bytes`. */
  write(bytes: Uint8Array): Promise<void>;
  /** Closes both directions now. Safe to call more than once. */
  close(): void;
  /**
   * A pushing socket: stop delivering data until {@linkcode resume} (called while the outbox is
   * over its high-water mark). A socket that is read from needs neither: the core holds its
   * next read instead.
   */
  pause?(): void;
  /** A pushing socket: deliver data again. */
  resume?(): void;
}
