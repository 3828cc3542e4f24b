/**
 * The report's words that depend on the run: the settings line (what ran, with which loads and
 * options) and the notes under the tables (caveats that depend on what was measured).
 *
 * @module
 */
import type { BudgetRow } from "./measure.ts";
import { isDot, isPlain, MODES, type Options } from "./options.ts";
import type { RunContext } from "./run_context.ts";

/** The settings line of the report, one entry per part. */
export function settingsOf(ctx: RunContext, threadCounts: string): string[] {
  const { o, lab, cacheArgs } = ctx;
  const dot = [...o.modes].some(isDot);
  const allModes = o.modes.size === MODES.length;
  return [
    ...(allModes ? [] : [`modes: ${[...o.modes].join(", ")} (--modes)`]),
    ...(dot
      ? [
        `${o.duration} s per run after ${o.warmup} s warm-up`,
        `saturation: dnsperf -m dot -c ${o.connections} -q ${o.outstanding}`,
        `fixed rate: -c ${o.rateConnections} -q 100 -Q ${o.rate}`,
        `${o.names} names in bench.test.`,
      ]
      : []),
    ...(o.modes.has("doh")
      ? [
        `cached DoH face: ${o.dohDuration} s per run, h2load GET ?dns= over ` +
        `${ctx.loads.dohNames.length} names (-i), -c ${o.dohConnections} -m ` +
        `${o.dohStreams.join(" and -m ")} after a cache fill (each name once on each of ` +
        `max(16, 8 × threads) connections); fixed rate -c 1 -m 10 --rps ${o.rate}, ` +
        "like the upstream's h2load baseline",
      ]
      : []),
    ...([...o.modes].some(isPlain)
      ? [
        `plain DNS: dnsperf over UDP (-m udp), the same two loads, at the bridge's --dns-listen ` +
        "(--dns-rrl 0: the whole load comes from one address) and dnsdist's setLocal (Do53) " +
        "face; the floor is scripts/bench/bare_udp_server.ts with the bridge's V8 flags",
      ]
      : []),
    ...(o.modes.has("oneshot")
      ? [
        `one-shot: ${o.oneshotRuns} kdig queries per face after a cache fill (one query, ` +
        "8 × threads for a threaded bridge), each a new process and connection " +
        "(+https=/dns-query, HTTP/2 POST; +tls)",
      ]
      : []),
    ...(o.modes.has("handshake")
      ? [
        `handshake rate: ${o.handshakeDuration} s per listener after ${o.warmup} s ` +
        `warm-up, ${o.handshakeWorkers} connections at a time from ${o.handshakeProcs} ` +
        "client processes (scripts/bench/handshake_client.ts, Deno.startTls), one query each",
      ]
      : []),
    "peer: addTLSLocal maxInFlight=100 (and addDOHLocal for the DoH face), " +
    "DoH backend with validateCertificates=true",
    `bridge options: ${
      [...lab.features.httpOff, ...lab.features.always].join(" ") || "(none extra)"
    }; bridging: ${lab.features.cacheOff.join(" ") || "(none)"}; cached: ${
      cacheArgs?.join(" ") ?? "n/a"
    }; DoH face: --http-listen 127.0.0.1:PORT instead of off, cached` +
    (o.modes.has("oneshot")
      ? `; one-shot native DoT: ${lab.features.dotServerNative?.join(" ") ?? "n/a"}, cached`
      : "") +
    (o.modes.has("handshake")
      ? `; handshake rate: cached, native DoT: ${lab.features.dotServerNative?.join(" ") ?? "n/a"}`
      : ""),
    `bridge threads: ${threadCounts} (--threads N; one process)`,
    ...(o.bridgeV8Flags.length > 0
      ? [`bridge V8 flags added to the shipped ones: ${o.bridgeV8Flags.join(",")}`]
      : []),
    ...(o.cert !== "ecdsa" ? [`certificate served: --cert ${o.cert} (scripts/bench/pki.ts)`] : []),
  ];
}

/** What the notes depend on besides the options. */
export interface Measurements {
  /** The dnsperf baseline's QPS; undefined when it did not run (no DoT mode). */
  baselineQps?: number;
  /** The peer's p50 bridging at the fixed rate, ms. */
  peerRateP50?: number;
  peerName: string;
  budget: BudgetRow[];
  cacheArgs?: string[];
}

/** The notes under the table: caveats that depend on what was measured. */
export function explain(o: Options, m: Measurements): string[] {
  const notes: string[] = [];
  const dot = [...o.modes].some(isDot);
  if (dot) {
    notes.push(
      "The direct-DoH baseline (dnsperf row) uses one connection and one outstanding GET: " +
        "this dnsperf 2.10 loses most responses from dnsdist's DoH when more than one stream is " +
        "outstanding (HTTP/2 200s counted, queries reported lost), and its POST pays ~40 ms " +
        'per query (request in two writes: Nagle + delayed ACK). "Latency added" is relative ' +
        "to that row (same client as the DoT runs); the h2load row cross-checks it. The " +
        "ceiling's lost column counts non-2xx answers (dnsdist 5xx when overloaded).",
    );
  }
  if (m.baselineQps !== undefined && m.baselineQps < o.rate * 0.95) {
    notes.push(
      `dnsperf -m doh reached ${m.baselineQps.toFixed(0)} of ${o.rate} QPS in the baseline ` +
        '(with one outstanding query its DoH sender stalls on "socket not ready"); its ' +
        "latencies are still the upstream's.",
    );
  }
  if (m.peerRateP50 !== undefined && m.peerRateP50 > 20) {
    notes.push(
      `${m.peerName} as a DoT→DoH bridge answers in ~${m.peerRateP50.toFixed(0)} ms at ` +
        `${o.rate} QPS although the upstream answers in under 1 ms: its outgoing DoH writes ` +
        "each HTTP/2 request in two small writes without TCP_NODELAY (Nagle + delayed ACK, " +
        "see docs/platform-notes.md#no-delay-nagle-and-delayed-ack), and this version has no " +
        "setting for it. Under saturation the writes coalesce and it stops mattering.",
    );
  }
  const noisy = m.budget.filter((b) => b.otherCpuS / b.wallS > 0.25);
  if (noisy.length > 0) {
    notes.push(
      "Noise: other processes used more than a quarter of a core during " +
        noisy.map((b) => `${b.run} (${(b.otherCpuS / b.wallS).toFixed(2)} cores)`).join("; ") +
        ".",
    );
  }
  notes.push(
    `Everything shares ${navigator.hardwareConcurrency} cores: target, upstream and load ` +
      'generator; "other" in the CPU table is busy time of everyone else on the machine. ' +
      "Expect 10–20% run-to-run variation, more on the noisy rows.",
    "CPU s is the target process's utime+stime (/proc/PID/stat, all threads) over the run; " +
      "peak RSS is its VmHWM, reset before each run (clear_refs). Percentiles come from " +
      "dnsperf -v per-query latencies (h2load --log-file for h2load rows). CPU µs/q = CPU s " +
      "/ answered queries. QPS in dnsperf rows counts NOERROR answers only (a target that " +
      "fails fast must not look fast); other rcodes are listed in these notes.",
  );
  if (o.modes.has("doh")) {
    notes.push(
      'The "cached DoH face" rows put h2load GETs (?dns=, ID 0) over the first ' +
        `${o.dohNames} names straight at each target's own DoH listener (the bridge's ` +
        "--http-listen, dnsdist's addDOHLocal), both with a cache filled first; the " +
        "fixed-rate row is one connection (h2load's --rps is per connection), like the " +
        "upstream's h2load row it is compared with.",
    );
  }
  if (o.modes.has("oneshot")) {
    notes.push(
      'One-shot rows: kdig\'s own figure (";; From 127.0.0.1@PORT(TCP) in X ms": TCP ' +
        "connect, TLS handshake, the query and its answer; not the process start), one " +
        `query per kdig process, ${o.oneshotRuns} in a row per face after a cache fill ` +
        "(uncounted). DoH is kdig's HTTP/2 POST. A server that leaves a small write behind " +
        "another without TCP_NODELAY shows ~40 ms here (Nagle + the client's delayed ACK); " +
        "without the stall a one-shot takes a few ms. The bridge's native DoT row is a " +
        "second bridge with --dot-server native.",
    );
  }
  if (o.modes.has("handshake")) {
    notes.push(
      "Handshake-rate rows: each connection is a TCP connect, a full TLS handshake (the " +
        "client never offers a session to resume), one query for a cached name, its answer " +
        "and a close; conn/s counts connections answered NOERROR inside the run, p50/p99 are " +
        "of whole connections. A TLS handshake costs the client about as much CPU as the " +
        "server (~0.6–0.9 ms each way measured on the 2-core machine), so the client " +
        "processes take about half of the machine: compare the ratio and CPU µs/conn more " +
        "than the absolute rates. The bridge's native row is a second bridge with " +
        "--dot-server native.",
    );
  }
  if ([...o.modes].some(isPlain)) {
    notes.push(
      "Plain DNS rows: dnsperf over UDP at the bridge's plain DNS face (--dns-listen, with " +
        "--dns-rrl 0 since every query comes from 127.0.0.1) and at dnsdist's Do53 face " +
        "(setLocal) of the same bridge configuration (DoH backend; packet cache for the cached " +
        "rows). The floor row is a bare Deno UDP loop (scripts/bench/bare_udp_server.ts: " +
        "receive into one buffer, copy, flip QR, send), the most a Deno process answers over " +
        "UDP with no DNS work; the bridge's ratio to it is what its own work costs. Under " +
        "--threads the bridge serves UDP on its first thread only (Deno's UDP sockets cannot " +
        "share a port), so threaded plain DNS rows measure one thread's UDP.",
    );
  }
  if (o.targets.has("bridge") && o.bridgeThreads.some((n) => n > 1)) {
    notes.push(
      '"×N threads" rows: the bridge with --threads N, one Deno process with N serving ' +
        "workers on the same ports (SO_REUSEPORT), each with its own cache; CPU s and peak RSS " +
        "are that one process's, all threads. Their ratio rows compare with the same peer " +
        `row. With ${navigator.hardwareConcurrency} cores shared with the load generator and ` +
        "the upstream, extra threads can cost more than they bring.",
    );
  }
  if (!m.cacheArgs) {
    notes.push(
      "The bridge has no answer cache yet (no cache option in its --help): its cached rows " +
        "read n/a and fill in once the option exists (or with --bridge-cache-args).",
    );
  }
  return notes;
}
