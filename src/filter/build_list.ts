/**
 * Building a list's set without stalling the queries around it: the text is parsed in slices
 * and the set sorted in steps, and whenever a few milliseconds of that work have run, the build
 * awaits the edge's `pause` so that answers, accepts and timers get their turn. A million names
 * build in well under a second here while the pipeline keeps answering; the set is swapped in
 * only once complete.
 *
 * @module
 */
import type { NameHasher } from "./fingerprint.ts";
import { ListParser, type ParsedList } from "./list_parser.ts";

/** Options of {@linkcode buildList}. */
export interface BuildListOptions {
  /**
   * Lets other work run (the edge's macrotask: `setTimeout(0)` and the like). Unset: the build
   * never pauses (tests, small lists).
   */
  readonly pause?: () => Promise<void>;
  /** Work this long between pauses, in milliseconds. Default 5. */
  readonly sliceMs?: number;
  /** Milliseconds clock. Default `performance.now`. */
  readonly now?: () => number;
  /** Stops the build: it rejects with the signal's reason at the next slice. */
  readonly signal?: AbortSignal;
}

/** Characters parsed between two looks at the clock. */
const SLICE_CHARS = 16_384;
/** Entries sorted between two looks at the clock. */
const STEP_ENTRIES = 32_768;

/**
 * Parses text arriving in chunks into a list, pausing as {@linkcode BuildListOptions} says.
 *
 * @throws whatever the chunks' source throws, or the signal's reason
 * @example
 * ```ts
 * const chunks = file.readable.pipeThrough(new TextDecoderStream());
 * const { set, stats } = await buildList(chunks, hasher, { pause: () => nextMacrotask() });
 * ```
 */
export async function buildList(
  chunks: AsyncIterable<string> | Iterable<string>,
  hasher: NameHasher,
  options: BuildListOptions = {},
): Promise<ParsedList> {
  const { pause, signal } = options;
  const now = options.now ?? (() => performance.now());
  const sliceMs = options.sliceMs ?? 5;
  const parser = new ListParser(hasher);
  let since = now();
  const breathe = async () => {
    signal?.throwIfAborted();
    if (pause && now() - since >= sliceMs) {
      await pause();
      signal?.throwIfAborted();
      since = now();
    }
  };
  for await (const chunk of chunks) {
    if (chunk.length <= SLICE_CHARS) {
      parser.push(chunk);
      await breathe();
      continue;
    }
    for (let i = 0; i < chunk.length; i += SLICE_CHARS) {
      parser.push(chunk.slice(i, i + SLICE_CHARS));
      await breathe();
    }
  }
  const steps = parser.endSteps(STEP_ENTRIES);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await breathe();
  }
}
