/**
 * The bridge's version, as `deno.json` states it (`dotbridge_build_info`, dnstap's version).
 *
 * @module
 */
import denoConfig from "../../deno.json" with { type: "json" };

/** `deno.json`'s `version`. */
export const VERSION: string = denoConfig.version;
