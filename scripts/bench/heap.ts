/**
 * A running Deno process's JavaScript heap, read over its inspector (`--inspect=HOST:PORT`): the
 * heap totals (`Deno.memoryUsage()`) and a heap snapshot summed by constructor, for the memory
 * breakdown in docs/benchmarks.md#what-bounds-the-rest.
 *
 * @module
 */

/** One constructor's share of a heap snapshot. */
export interface HeapClass {
  /** V8's node type and the constructor or string class, e.g. `object Socket`. */
  name: string;
  count: number;
  /** Sum of the nodes' own sizes, bytes. */
  selfBytes: number;
}

/** What {@linkcode readHeap} returns. */
export interface HeapReport {
  /** `Deno.memoryUsage()` in the process, bytes. */
  usage: { rss: number; heapTotal: number; heapUsed: number; external: number };
  /** Live nodes of the snapshot, largest classes first. */
  classes: HeapClass[];
  /** All live nodes' own sizes together, bytes. */
  totalBytes: number;
}

/** A Deno process's inspector (`--inspect=HOST:PORT`), over its WebSocket: commands and events. */
export class Inspector {
  #ws: WebSocket;
  #next = 1;
  #pending = new Map<number, (msg: { result?: unknown; error?: unknown }) => void>();
  onEvent: (method: string, params: Record<string, unknown>) => void = () => {};

  private constructor(ws: WebSocket) {
    this.#ws = ws;
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data as string);
      if (msg.id !== undefined) {
        this.#pending.get(msg.id)?.(msg);
        this.#pending.delete(msg.id);
      } else this.onEvent(msg.method, msg.params);
    };
  }

  /** Connects to the first target of the inspector on 127.0.0.1:`port`. */
  static async open(port: number): Promise<Inspector> {
    const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
    const ws = new WebSocket(list[0].webSocketDebuggerUrl);
    await new Promise((resolve, reject) => {
      ws.onopen = resolve;
      ws.onerror = reject;
    });
    return new Inspector(ws);
  }

  /** Sends one command; resolves with its result, rejects with its error. */
  call(method: string, params: Record<string, unknown> = {}): Promise<unknown> {
    const id = this.#next++;
    this.#ws.send(JSON.stringify({ id, method, params }));
    return new Promise((resolve, reject) => {
      this.#pending.set(
        id,
        (msg) => msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result),
      );
    });
  }

  /** Ends the session (the process keeps running). */
  close(): void {
    this.#ws.close();
  }
}

/** Sums a V8 heap snapshot's nodes by type and name. */
export function summarizeSnapshot(text: string): { classes: HeapClass[]; totalBytes: number } {
  const snap = JSON.parse(text);
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const iType = fields.indexOf("type");
  const iName = fields.indexOf("name");
  const iSize = fields.indexOf("self_size");
  const nodes: number[] = snap.nodes;
  const strings: string[] = snap.strings;
  const byName = new Map<string, HeapClass>();
  let total = 0;
  for (let i = 0; i < nodes.length; i += width) {
    const type = types[nodes[i + iType]];
    const size = nodes[i + iSize];
    total += size;
    // Strings and code are summed per type; objects per constructor.
    const name = type === "object" || type === "closure" || type === "native"
      ? `${type} ${strings[nodes[i + iName]]}`
      : type;
    let c = byName.get(name);
    if (!c) byName.set(name, c = { name, count: 0, selfBytes: 0 });
    c.count++;
    c.selfBytes += size;
  }
  const classes = [...byName.values()].sort((a, b) => b.selfBytes - a.selfBytes);
  return { classes, totalBytes: total };
}

/** Reads the heap of the process whose inspector listens on `port` (after a full GC). */
export async function readHeap(port: number): Promise<HeapReport> {
  const inspector = await Inspector.open(port);
  try {
    await inspector.call("Runtime.enable");
    await inspector.call("HeapProfiler.enable");
    await inspector.call("HeapProfiler.collectGarbage");
    const usage = await inspector.call("Runtime.evaluate", {
      expression: "JSON.stringify(Deno.memoryUsage())",
      returnByValue: true,
    }) as { result: { value: string } };
    const chunks: string[] = [];
    inspector.onEvent = (method, params) => {
      if (method === "HeapProfiler.addHeapSnapshotChunk") chunks.push(params.chunk as string);
    };
    await inspector.call("HeapProfiler.takeHeapSnapshot", { reportProgress: false });
    return { usage: JSON.parse(usage.result.value), ...summarizeSnapshot(chunks.join("")) };
  } finally {
    inspector.close();
  }
}
