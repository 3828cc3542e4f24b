/**
 * Deadlines, timers and aborts shared by every part of the bridge, in the manner of Deno std
 * `async/`.
 *
 * @module
 */
export { abortable } from "./abortable.ts";
export { DeadlineError, withDeadline } from "./deadline.ts";
export { LazyAbort } from "./lazy_abort.ts";
export { type LaneEntry, TimerLane } from "./timer_lane.ts";
