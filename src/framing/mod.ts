/**
 * Length-prefixed DNS message streams (RFC 1035 §4.2.2, RFC 7766, RFC 7858): the codec and the
 * server-side connection loop.
 *
 * @module
 */
export * from "./codec.ts";
export * from "./session.ts";
