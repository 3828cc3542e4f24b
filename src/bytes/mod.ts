/**
 * Small byte helpers shared by every part of the bridge, one concern per file, in the manner of
 * Deno std `bytes/`.
 *
 * @module
 */
export { concatBytes } from "./concat.ts";
export { isomorphicDecode, isomorphicEncode } from "./isomorphic.ts";
export { readStreamCapped } from "./read_capped.ts";
export { getUint16, getUint32, uint32Bytes } from "./uint.ts";
