/**
 * Configuration: the option table and the parser.
 *
 * @module
 */
export * from "./options.ts";
export * from "./parse.ts";
