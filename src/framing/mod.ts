/**
 * Length-prefixed DNS message streams (RFC 1035 §4.2.2, RFC 7766, RFC 7858): the codec and the
 * server-side connection loop; and the one-message streams of DNS over QUIC (RFC 9250 §4.2).
 *
 * @module
 */
export * from "./codec.ts";
export * from "./doq_stream.ts";
export * from "./session.ts";
