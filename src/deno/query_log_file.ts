/**
 * The query log's writer (`--query-log PATH|-`): takes batches from the bounded queue and writes
 * each in one asynchronous write, so a slow disk or a full pipe only fills the queue (and drops,
 * counted) and never delays an answer. A file is rotated by size (`PATH` → `PATH.1` → ... →
 * `PATH.<files>`, the oldest removed) and reopened on demand (SIGHUP, after logrotate moved it).
 * `-` writes to standard output.
 *
 * @module
 */
import { LineQueue } from "../observe/line_queue.ts";
import type { Logger } from "../log/mod.ts";
import { messageOf } from "../errors/message_of.ts";

/** Options of {@linkcode openQueryLog}. */
export interface QueryLogFileOptions {
  /** A file path, or `-` for standard output. */
  path: string;
  /** Rotate when a write would take the file past this many bytes; 0: never. */
  maxBytes: number;
  /** Rotated files kept (`PATH.1` ... `PATH.<files>`); 0: the file is cut back to empty. */
  files: number;
  /** Characters the queue may hold before lines are dropped. Default 1 MiB. */
  maxQueued?: number;
  /** How long lines gather before a write. Default 10 ms. */
  batchMs?: number;
  /** Told of every dropped line (the metric). */
  onDrop?: () => void;
  logger?: Logger;
}

/** A running query log writer. */
export interface QueryLogFile {
  /** Where the tap pushes lines. */
  readonly queue: LineQueue;
  /** Closes the file and opens `path` again (after the next write finishes). */
  reopen(): void;
  /** Writes what is queued (waiting at most `graceMs` for a stuck disk) and closes the file. */
  close(graceMs?: number): Promise<void>;
}

interface Sink {
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
}

const encoder = new TextEncoder();

/**
 * Checks that the log can be opened (a FIFO is opened in the background: opening one for writing
 * waits for a reader) and starts the writer.
 *
 * @throws {Error} when the file cannot be opened for appending (the start-up step names the key)
 */
export function openQueryLog(options: QueryLogFileOptions): QueryLogFile {
  const { path, maxBytes, files, logger } = options;
  const batchMs = options.batchMs ?? 10;
  const stdout = path === "-";
  let sink: Sink | undefined;
  let pending: Promise<Sink> | undefined;
  let size = 0;
  let writing = false;
  let closed = false;
  let reopenWanted = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let idle: Promise<void> = Promise.resolve();

  const open = (): Sink | Promise<Sink> => {
    if (stdout) return { write: (b) => Deno.stdout.write(b), close: () => {} };
    let fifo = false;
    try {
      fifo = Deno.statSync(path).isFifo ?? false;
    } catch {
      // Not there yet: created below.
    }
    const how = { append: true, create: true, write: true } as const;
    if (fifo) return Deno.open(path, how);
    const file = Deno.openSync(path, how);
    size = file.statSync().size;
    return file;
  };

  const first = open();
  if (first instanceof Promise) pending = first;
  else sink = first;

  const queue = new LineQueue({
    maxChars: options.maxQueued,
    onDrop: options.onDrop,
    onReady: () => schedule(),
  });

  function schedule(): void {
    if (timer !== undefined || writing || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      idle = flush();
    }, batchMs);
  }

  async function current(): Promise<Sink> {
    if (sink) return sink;
    sink = await pending!;
    pending = undefined;
    return sink;
  }

  function rotate(): void {
    sink?.close();
    sink = undefined;
    try {
      if (files === 0) {
        Deno.truncateSync(path, 0);
      } else {
        try {
          Deno.removeSync(`${path}.${files}`);
        } catch {
          // Fewer than `files` so far.
        }
        for (let i = files - 1; i >= 1; i--) {
          try {
            Deno.renameSync(`${path}.${i}`, `${path}.${i + 1}`);
          } catch {
            // A gap: nothing to move.
          }
        }
        Deno.renameSync(path, `${path}.1`);
      }
    } catch (e) {
      logger?.warn("query log: cannot rotate", { path, error: messageOf(e) });
    }
    const next = open();
    if (next instanceof Promise) pending = next;
    else sink = next;
    if (files === 0) size = 0;
  }

  async function flush(): Promise<void> {
    if (writing) return;
    writing = true;
    let failed = false;
    try {
      for (;;) {
        if (reopenWanted && !stdout) {
          reopenWanted = false;
          sink?.close();
          sink = undefined;
          const next = open();
          if (next instanceof Promise) pending = next;
          else sink = next;
        }
        const text = queue.take();
        if (!text) break;
        const bytes = encoder.encode(text);
        // What queued during one write can be more than a whole file: it goes in file-sized
        // pieces of whole lines, so no file outgrows --query-log-max-size.
        for (const piece of stdout ? [bytes] : linePieces(bytes, maxBytes)) {
          if (!stdout && maxBytes > 0 && size > 0 && size + piece.length > maxBytes) rotate();
          const out = await current();
          let done = 0;
          while (done < piece.length) done += await out.write(piece.subarray(done));
          size += piece.length;
        }
      }
    } catch (e) {
      if (!closed) logger?.warn("query log: write failed", { path, error: messageOf(e) });
      failed = true;
    } finally {
      writing = false;
    }
    // Lines that came while a write failed wait for the next try (a second later); meanwhile the
    // queue fills and drops, as for a slow disk.
    if (failed && !closed && queue.size > 0) {
      timer = setTimeout(() => {
        timer = undefined;
        idle = flush();
      }, 1_000);
    }
  }

  return {
    queue,
    reopen() {
      if (stdout || closed) return;
      reopenWanted = true;
      if (!writing) idle = flush();
    },
    async close(graceMs = 1_000) {
      if (closed) return;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      const last = idle.then(() => flush());
      let wait: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([last, new Promise((r) => (wait = setTimeout(r, graceMs)))]);
      clearTimeout(wait);
      closed = true;
      if (!writing) sink?.close();
    },
  };
}

/**
 * `bytes` (whole lines) cut into pieces of at most `max` bytes at line ends; a single line longer
 * than `max` is a piece of its own. `max` 0: one piece.
 *
 * @example
 * ```ts
 * linePieces(new TextEncoder().encode("aa\nbb\ncc\n"), 6); // "aa\nbb\n", "cc\n"
 * ```
 */
export function linePieces(bytes: Uint8Array, max: number): Uint8Array[] {
  if (max <= 0 || bytes.length <= max) return [bytes];
  const pieces: Uint8Array[] = [];
  let start = 0;
  while (start < bytes.length) {
    if (bytes.length - start <= max) {
      pieces.push(bytes.subarray(start));
      break;
    }
    let cut = bytes.lastIndexOf(NEWLINE, start + max - 1) + 1;
    if (cut <= start) {
      // One line longer than a file: alone.
      const end = bytes.indexOf(NEWLINE, start);
      cut = end < 0 ? bytes.length : end + 1;
    }
    pieces.push(bytes.subarray(start, cut));
    start = cut;
  }
  return pieces;
}

const NEWLINE = 0x0a;
