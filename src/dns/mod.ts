/**
 * Pure helpers over DNS messages in wire format: parsing, EDNS editing, error responses and
 * answer validation. No runtime APIs.
 *
 * @module
 */
export * from "./constants.ts";
export * from "./message.ts";
export * from "./edns.ts";
export * from "./response.ts";
export * from "./query.ts";
export * from "./build_query.ts";
export * from "./ttl.ts";
export * from "./name.ts";
export * from "./writer.ts";
export * from "./svcb.ts";
export * from "./answer.ts";
export * from "./media_type.ts";
export * from "./truncate.ts";
