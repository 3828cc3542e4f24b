/**
 * Seeing what the bridge answered, privately: the query log's lines and client privacy, the
 * bounded queue between the query path and a writer, and dnstap's messages and Frame Streams.
 * Fed by the processor's tap; writers, sockets and signals are the runtime edge's.
 *
 * @module
 */
export * from "./client_field.ts";
export * from "./line_queue.ts";
export * from "./query_log.ts";
export * from "./frame_streams.ts";
export * from "./dnstap.ts";
