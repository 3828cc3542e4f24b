/**
 * What every part of the bridge needs of a caught error, below every other folder.
 *
 * @module
 */
export { messageOf } from "./message_of.ts";
