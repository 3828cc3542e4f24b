/**
 * Configuration: the option table, the typed `Config` derived from it, and the parser.
 *
 * @module
 */
export * from "./config.ts";
export * from "./options.ts";
export * from "./parse.ts";
