/**
 * The health state every group keeps per member, and its two transitions. A member is passed
 * over until `downUntil` after a failure; `up` is what was last reported, so a member whose
 * cool-down lapsed and that fails again is not reported down twice.
 *
 * @module
 */
import type { Upstream } from "./types.ts";

/** One member's health. */
export interface MemberHealth {
  readonly upstream: Upstream;
  /** Passed over until this time (ms) after a failure. */
  downUntil: number;
  /** Last reported state: false from a failure until the next success. */
  up: boolean;
}

/** Told when a member is reported down or back. */
export type HealthListener = (member: string, healthy: boolean, error?: unknown) => void;

/**
 * The member answered: no cool-down; reported back if it was down.
 *
 * @returns true when this is a recovery (it was reported down)
 */
export function markHealthy(member: MemberHealth, onChange?: HealthListener): boolean {
  member.downUntil = 0;
  if (member.up) return false;
  member.up = true;
  onChange?.(member.upstream.name, true);
  return true;
}

/** The member failed: passed over until `until`; reported down if it was up. */
export function markFailed(
  member: MemberHealth,
  until: number,
  error: unknown,
  onChange?: HealthListener,
): void {
  member.downUntil = until;
  if (!member.up) return;
  member.up = false;
  onChange?.(member.upstream.name, false, error);
}
