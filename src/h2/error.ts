/**
 * The error of the HTTP/2 code: why a connection ended, or why a request on it failed.
 *
 * @module
 */

/**
 * Why a connection ended, or why a request on it failed. `retryable` marks failures that a
 * fresh connection may fix (the peer closed or went away, a stream was refused), as opposed to a
 * peer that broke the protocol.
 */
export class H2Error extends Error {
  constructor(message: string, readonly retryable: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "H2Error";
  }
}
