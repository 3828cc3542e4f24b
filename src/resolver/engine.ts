/**
 * The standard pipeline, composed in one place.
 *
 * @module
 */
import type { Logger } from "../log/mod.ts";
import type { Upstream } from "../upstream/types.ts";
import {
  fromUpstream,
  type PrivacyOptions,
  servfailOnError,
  timeout,
  upstreamPrivacy,
} from "./middleware.ts";
import { compose, type Handler, type Middleware } from "./types.ts";

/** Options of {@linkcode createHandler}. */
export interface EngineOptions {
  upstream: Upstream;
  /** Whole-query budget; past it the client gets SERVFAIL. */
  queryTimeoutMs: number;
  logger?: Logger;
  privacy?: PrivacyOptions;
  /** Policy middlewares (cache, ACL, ...) that run inside the deadline, before the upstream. */
  middlewares?: readonly Middleware[];
}

/**
 * Builds the resolver: SERVFAIL on error ⟶ deadline ⟶ policy middlewares ⟶ upstream privacy
 * rewrite ⟶ the upstream.
 *
 * @example
 * ```ts
 * const handler = createHandler({ upstream, queryTimeoutMs: 5000 });
 * ```
 */
export function createHandler(options: EngineOptions): Handler {
  return compose(
    [
      servfailOnError(options.logger),
      timeout(options.queryTimeoutMs),
      ...(options.middlewares ?? []),
      upstreamPrivacy(options.privacy),
    ],
    fromUpstream(options.upstream),
  );
}
