/**
 * The start-up runner. A bridge starts as a few named steps, each returning what it built and
 * how to stop it ({@linkcode Started}); when a step fails, the steps already done are stopped in
 * reverse order, as Go's `defer` or a `DisposableStack` would, so a failed start leaves no port
 * bound, no file watched and no connection open.
 *
 * Deno 2.9 has `AsyncDisposableStack`, but its callbacks take no argument and run one at a time;
 * a bridge's shutdown hands its faces a grace period and drains them together, so the runner is
 * this small class instead.
 *
 * @module
 */
import type { Logger } from "../../log/mod.ts";
import { messageOf } from "../../errors/message_of.ts";

/** What a step built, and how to undo it. */
export interface Started<T> {
  readonly value: T;
  /** Releases what the step opened; `graceMs` is how long in-flight work may still take. */
  readonly stop?: (graceMs: number) => void | Promise<void>;
  /**
   * The step serves clients (a face). Adjacent faces stop together, sharing the grace, so none
   * keeps accepting while another drains.
   */
  readonly face?: boolean;
}

interface Stop {
  readonly name: string;
  readonly stop: (graceMs: number) => void | Promise<void>;
  readonly face: boolean;
}

/**
 * Runs start-up steps and stops them again.
 *
 * @example
 * ```ts
 * const steps = new StartUp(logger);
 * const dot = await steps.step("dot face", () => startDotFace(face));
 * // later, or at once if a later step threw:
 * await steps.stop(5_000);
 * ```
 */
export class StartUp {
  readonly #done: Stop[] = [];
  readonly #logger?: Logger;
  #stopping?: Promise<void>;

  constructor(logger?: Logger) {
    this.#logger = logger;
  }

  /**
   * Runs one step and remembers how to stop it. If the step throws, every step done so far is
   * stopped (no grace) and the step's error is rethrown unchanged.
   */
  async step<T>(name: string, start: () => Started<T> | Promise<Started<T>>): Promise<T> {
    if (this.#stopping) throw new Error(`start-up: "${name}" after stop`);
    let started: Started<T>;
    try {
      started = await start();
    } catch (error) {
      await this.stop(0);
      throw error;
    }
    if (started.stop) {
      this.#done.push({ name, stop: started.stop, face: started.face ?? false });
    }
    return started.value;
  }

  /**
   * Stops every step done, latest first; a run of adjacent faces stops together. A failing stop
   * is logged and the rest still run. Later calls get the first call's promise.
   */
  stop(graceMs: number): Promise<void> {
    this.#stopping ??= this.#stopAll(graceMs);
    return this.#stopping;
  }

  async #stopAll(graceMs: number): Promise<void> {
    const done = this.#done.toReversed();
    for (let i = 0; i < done.length;) {
      let j = i + 1;
      if (done[i].face) { while (j < done.length && done[j].face) j++; }
      await Promise.all(done.slice(i, j).map((s) => this.#stopOne(s, graceMs)));
      i = j;
    }
  }

  async #stopOne(step: Stop, graceMs: number): Promise<void> {
    try {
      await step.stop(graceMs);
    } catch (error) {
      this.#logger?.warn("stop failed", { step: step.name, error: messageOf(error) });
    }
  }
}

/**
 * A step's result for readers made before the step ran (a metrics gauge reading the DoT face's
 * connection count): `undefined` until {@linkcode Slot.fill}, which may be called once.
 */
export class Slot<T> {
  #value?: T;

  get value(): T | undefined {
    return this.#value;
  }

  /** Stores the result and returns it. @throws {Error} if already filled */
  fill(value: T): T {
    if (this.#value !== undefined) throw new Error("slot already filled");
    this.#value = value;
    return value;
  }
}
