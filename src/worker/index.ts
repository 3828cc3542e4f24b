/**
 * The Cloudflare Workers entry (`main` in `wrangler.toml`): the DoH face and the resolver
 * pipeline as a Worker module. Configuration comes from the Worker's `DOTBRIDGE_*` vars.
 *
 * @module
 */
import { createWorker } from "./worker.ts";

export default createWorker();
