/**
 * The check an entry of bytes only (one a store did not keep as an object in this process: Redis,
 * the Workers Cache API) passes before it is served or kept in memory. Whoever can write to a
 * shared store can put anything under a key, so nothing in the value is taken on trust beyond
 * what the cache itself would have kept:
 *
 * - the bytes parse as a response (QR, opcode QUERY) that is not truncated, with rcode NOERROR or
 *   NXDOMAIN (the only answers the middleware keeps);
 * - its one question is exactly the key's ({@linkcode answersKey}: type, class, name);
 * - its times are finite and in order, stored no later than {@linkcode MAX_CLOCK_SKEW_MS} from
 *   now, and clamped: stored no later than now, fresh for at most `maxTtlMs` after that. So an
 *   entry expires by the cache's longest TTL (plus the serve-stale window) after the time it says
 *   it was stored, whatever else the value said, in memory and when read again alike;
 * - its record TTLs are capped to that fresh lifetime (a client is never told to keep an answer
 *   longer than this cache would).
 *
 * What the answer cannot show (the tenant, the DO/CD bits, the client subnet in the key) is the
 * store's to bind: the Redis store keeps the key inside the value, and signs both given a secret.
 *
 * @module
 */
import { answerOf } from "../dns/answer.ts";
import { Flag, Opcode, Rcode } from "../dns/constants.ts";
import { headerOpcode, headerRcode, type MessageInfo } from "../dns/message.ts";
import { ageTtls } from "../dns/ttl.ts";
import { answersKey, type CacheEntry } from "./store.ts";

/**
 * How far in the future an entry's storage time may be (another bridge's clock running ahead);
 * one further is refused, else reading it again later would make it fresh again. Within it, the
 * time is taken as now.
 */
export const MAX_CLOCK_SKEW_MS = 60_000;

/** What {@linkcode checkedEntry} clamps to. */
export interface EntryLimits {
  /** Now (ms, the middleware's clock). */
  readonly now: number;
  /** The longest an entry stays fresh (ms): the cache's `maxTtl`. */
  readonly maxTtlMs: number;
}

/**
 * `entry` with its parse, its times clamped and its TTLs capped (in a copy of its bytes), or
 * `undefined` if it is not a response the cache would have kept for `key`.
 *
 * @example
 * ```ts
 * const checked = checkedEntry(key, fromRedis, { now: Date.now(), maxTtlMs: 86_400_000 });
 * if (!checked) store.delete(key);
 * ```
 */
export function checkedEntry(
  key: string,
  entry: CacheEntry,
  limits: EntryLimits,
): CacheEntry | undefined {
  const { storedAt, expiresAt } = entry;
  if (
    !Number.isFinite(storedAt) || !Number.isFinite(expiresAt) || expiresAt < storedAt ||
    storedAt > limits.now + MAX_CLOCK_SKEW_MS
  ) {
    return undefined;
  }
  let info: MessageInfo;
  const wire = entry.wire.slice();
  try {
    info = answerOf(wire).info;
    if (!keepable(info) || !answersKey(info, key)) return undefined;
    const stored = Math.min(storedAt, limits.now);
    const expires = Math.min(expiresAt, stored + Math.max(0, limits.maxTtlMs));
    const minTtl = ageTtls(wire, 0, 0, Math.ceil((expires - stored) / 1000));
    return { wire, info: { ...info, minTtl }, storedAt: stored, expiresAt: expires };
  } catch {
    return undefined;
  }
}

/** A response the cache middleware would keep: not truncated, NOERROR or NXDOMAIN, a query's. */
function keepable(info: MessageInfo): boolean {
  if ((info.flags & Flag.QR) === 0 || (info.flags & Flag.TC) !== 0) return false;
  if (headerOpcode(info.flags) !== Opcode.QUERY) return false;
  const rcode = headerRcode(info.flags);
  return rcode === Rcode.NOERROR || rcode === Rcode.NXDOMAIN;
}
