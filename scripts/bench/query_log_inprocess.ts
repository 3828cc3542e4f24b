/**
 * The query log's CPU cost per query in one process, without sockets or TLS: the face-side
 * processor over a resolver answering every query from its cache, with no tap, with a tap that
 * does nothing (the trace alone), and with the query log (lines into its queue, the queue taken
 * and UTF-8 encoded every 500 lines as the writer would). Rows run interleaved, round by round.
 *
 * @module
 */
import { answerOf } from "../../src/dns/answer.ts";
import { clientField } from "../../src/observe/client_field.ts";
import { LineQueue } from "../../src/observe/line_queue.ts";
import { queryLogTap } from "../../src/observe/query_log.ts";
import { buildResolver } from "../../src/resolver/build.ts";
import type { ResolverOptions } from "../../src/resolver/options.ts";
import { createProcessor, type QueryTap } from "../../src/resolver/processor.ts";
import type { Upstream } from "../../src/upstream/types.ts";
import { makeQuery } from "../../test/dns/fixtures.ts";
import { answerFromZone } from "../../test/support/zone.ts";

const OPTIONS = {
  upstream: {
    upstreams: ["https://bench.test/dns-query"],
    upstreamStrategy: "failover",
    dohMethod: "POST",
    upstreamCooldownMs: 1000,
    attemptTimeoutMs: 1000,
  },
  resolver: {
    cache: true,
    cacheSize: 10_000,
    cacheMaxBytes: 1 << 26,
    cacheMaxEntryBytes: 16_384,
    cacheMinTtlMs: 0,
    cacheMaxTtlMs: 86_400_000,
    serveStaleMs: 0,
    keepClientSubnet: false,
    allow: [],
    deny: [],
    queryTimeoutMs: 5000,
    rateLimit: 0,
    rateLimitBurst: 0,
    ddrNames: [],
    ddrIpv4Hints: [],
    ddrIpv6Hints: [],
    tenantEdnsOption: 65011,
    unknownTenant: "refuse",
  },
} satisfies ResolverOptions;

const upstream: Upstream = {
  name: "https://bench.test",
  exchange: (q) => Promise.resolve(answerOf(answerFromZone(q.wire))),
  close: () => Promise.resolve(),
};

/** Nanoseconds per cached query for one setting. */
async function perQuery(kind: "off" | "trace" | "query log", n: number): Promise<number> {
  const resolver = buildResolver(OPTIONS, { upstreamFor: () => upstream, traced: kind !== "off" });
  const queue = new LineQueue({ maxChars: 1 << 30 });
  const encoder = new TextEncoder();
  const tap: QueryTap | undefined = kind === "off"
    ? undefined
    : kind === "trace"
    ? () => {}
    : queryLogTap({ client: clientField("truncated"), write: (l) => queue.push(l) });
  const process = createProcessor({ handler: resolver.handler, tap });
  const ctx = {
    face: "dot" as const,
    signal: new AbortController().signal,
    client: { address: "192.0.2.10", port: 5353 },
  };
  const queries = Array.from(
    { length: 1000 },
    (_, i) => makeQuery({ name: `bench-${i}.example.test`, id: i, opt: {} }),
  );
  for (const q of queries) await process(q, ctx);
  const started = performance.now();
  for (let i = 0; i < n; i++) {
    await process(queries[i % 1000], ctx);
    if (i % 500 === 499) encoder.encode(queue.take());
  }
  const ns = (performance.now() - started) / n * 1e6;
  await resolver.close();
  return ns;
}

/** Interleaved rounds of every setting: the rows' ns per query, each round's. */
export async function queryLogInProcess(
  rounds: number,
  n = 200_000,
): Promise<Map<string, number[]>> {
  const rows = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++) {
    for (const kind of ["off", "trace", "query log"] as const) {
      rows.set(kind, [...rows.get(kind) ?? [], await perQuery(kind, n)]);
    }
  }
  return rows;
}
