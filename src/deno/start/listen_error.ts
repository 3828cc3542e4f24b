/**
 * Why a listener could not bind, told by the error's type (`Deno.errors.*`, or the `code` of a
 * `node:net` error), never by its message. The certificate pair is checked before any listener
 * starts, so a failure to listen is an address problem.
 *
 * @module
 */
import { ConfigError } from "../../config/parse.ts";
import type { ListenAddress } from "../../config/config.ts";
import { messageOf } from "../../errors/message_of.ts";

/** Each known failure: the Deno error class, the matching errno codes, and what to tell. */
const REASONS: readonly {
  type: abstract new (...args: never[]) => Error;
  codes: readonly string[];
  reason: string;
}[] = [
  { type: Deno.errors.AddrInUse, codes: ["EADDRINUSE"], reason: "address already in use" },
  {
    type: Deno.errors.PermissionDenied,
    codes: ["EACCES", "EPERM"],
    reason: "permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)",
  },
  {
    type: Deno.errors.AddrNotAvailable,
    codes: ["EADDRNOTAVAIL"],
    reason: "no local interface has this address",
  },
  {
    type: Deno.errors.NotFound,
    codes: ["ENOTFOUND", "EAI_NONAME", "EAI_AGAIN"],
    reason: "the host name does not resolve",
  },
];

function codeOf(error: unknown): unknown {
  return typeof error === "object" && error !== null ? Reflect.get(error, "code") : undefined;
}

/**
 * The {@linkcode ConfigError} for a listener that did not start, naming the key it came from.
 *
 * @param origin the key as the user set it (`--listen`, `DOTBRIDGE_METRICS_LISTEN`, ...)
 *
 * @example
 * ```ts
 * try {
 *   await listenMetrics(hostname, port, render);
 * } catch (e) {
 *   throw listenError(e, config.origin["metrics-listen"], { hostname, port });
 * }
 * // --metrics-listen: cannot listen on 127.0.0.1:9100: address already in use
 * ```
 */
export function listenError(error: unknown, origin: string, address: ListenAddress): ConfigError {
  const code = codeOf(error);
  const known = REASONS.find((r) =>
    error instanceof r.type || (typeof code === "string" && r.codes.includes(code))
  );
  const reason = known?.reason ?? messageOf(error);
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return new ConfigError(origin, `cannot listen on ${host}:${address.port}: ${reason}`);
}
