/**
 * The shared upstream and what the targets are compared with: knotd behind dnsdist's DoH is
 * started, then (for the DoT modes) its h2load ceiling and its dnsperf baseline at `--rate`,
 * (for the DoH face) its h2load baseline at `--rate` on one connection, and (for the plain DNS
 * modes) the runtime's floor, a bare Deno UDP loop, and the upstream dnsdist's own Do53 face
 * (its packet cache) at saturation.
 *
 * @module
 */
import { h2loadUris } from "./configs.ts";
import { type DnsperfResult, runDnsperf } from "./dnsperf.ts";
import { type H2loadResult, runH2load } from "./h2load.ts";
import { dnsperfRow, type FigureRow, h2loadRow, measure, type Measured } from "./measure.ts";
import { isDot, isPlain } from "./options.ts";
import type { RunContext } from "./run_context.ts";

/** What the upstream alone did: its rows of the main table and the baselines. */
export interface Baselines {
  rows: FigureRow[];
  /** dnsperf `-m doh` at `--rate`: what the DoT modes' added latency is measured against. */
  dnsperf?: Measured<DnsperfResult>;
  /** h2load at `--rate`: what the DoH face's added latency is measured against. */
  h2load?: Measured<H2loadResult>;
  /** The bare Deno UDP loop at saturation: the plain DNS rows' floor. */
  udpFloor?: FigureRow;
}

/** The floor's name in the table. */
export const UDP_FLOOR_NAME = "bare Deno UDP loop (no DNS work)";

const UPSTREAM_NAME = "upstream: dnsdist DoH + knotd";

/** Starts the upstream and measures it alone, as far as the modes that run need it. */
export async function runBaselines(ctx: RunContext): Promise<Baselines> {
  const { o, sup, lab, work, log } = ctx;
  const { knotPort, dohPort, dnsPort } = await lab.startUpstream();
  log(`upstream up: knotd :${knotPort}, dnsdist DoH :${dohPort}, Do53 :${dnsPort}`);
  const onUpstream = { target: lab.upstreamProc, upstream: lab.upstreamProcs };
  const urisPath = `${work}/uris.txt`;
  Deno.writeTextFileSync(urisPath, h2loadUris(lab.names, dohPort));
  const out: Baselines = { rows: [] };

  if ([...o.modes].some(isDot)) {
    log(`ceiling: h2load 16 connections × 100 streams, ${o.ceilingDuration} s`);
    const ceiling = await measure(onUpstream, () =>
      runH2load(sup, "h2load-ceiling", {
        urisPath,
        clients: 16,
        streams: 100,
        seconds: o.ceilingDuration,
        logPath: `${work}/h2load-ceiling.log`,
      }));
    ctx.commands.push(ceiling.result.command);
    out.rows.push(h2loadRow(UPSTREAM_NAME, "ceiling, h2load GET 16×100", ceiling));
    ctx.budget.push({ run: "upstream ceiling (h2load)", ...ceiling.budget });

    log(`baseline: dnsperf -m doh at ${o.rate} QPS, ${o.duration} s`);
    const baseline = await measure(onUpstream, () =>
      runDnsperf(sup, "dnsperf-doh-baseline", {
        mode: "doh",
        port: dohPort,
        queriesPath: lab.queriesPath,
        clients: 1,
        outstanding: 1,
        seconds: o.duration,
        qps: o.rate,
        dohMethod: "GET",
      }));
    ctx.commands.push(baseline.result.command);
    out.rows.push(dnsperfRow(UPSTREAM_NAME, `direct DoH, ${o.rate} QPS (dnsperf)`, baseline));
    ctx.budget.push({ run: `upstream direct DoH ${o.rate} QPS (dnsperf)`, ...baseline.budget });
    out.dnsperf = baseline;
  }

  if ([...o.modes].some(isPlain)) {
    // The runtime's floor: what Deno itself does per UDP datagram, with no DNS work.
    const bare = await lab.startBareUdp();
    try {
      log(`floor: bare Deno UDP loop, ${ctx.loads.satMode}, ${o.duration} s`);
      await runDnsperf(sup, "warmup-udp-floor", {
        ...ctx.loads.udpSat,
        port: bare.port,
        seconds: o.warmup || 1,
        verbose: false,
      });
      const floor = await measure(
        { target: bare.proc, upstream: [] },
        () => runDnsperf(sup, "dnsperf-udp-floor", { ...ctx.loads.udpSat, port: bare.port }),
      );
      ctx.commands.push(floor.result.command);
      out.udpFloor = dnsperfRow(UDP_FLOOR_NAME, `plain DNS, ${ctx.loads.satMode}`, floor);
      out.rows.push(out.udpFloor);
      ctx.budget.push({ run: "bare Deno UDP loop", ...floor.budget });
    } finally {
      await bare.proc.stop();
    }
    log(`upstream Do53 (dnsdist packet cache over knotd), ${ctx.loads.satMode}, ${o.duration} s`);
    const do53 = await measure(
      onUpstream,
      () => runDnsperf(sup, "dnsperf-upstream-do53", { ...ctx.loads.udpSat, port: dnsPort }),
    );
    ctx.commands.push(do53.result.command);
    out.rows.push(dnsperfRow(UPSTREAM_NAME, `its own Do53 face, ${ctx.loads.satMode}`, do53));
    ctx.budget.push({ run: "upstream Do53 (dnsperf)", ...do53.budget });
  }

  if (o.modes.has("doh")) {
    // As long as the DoH face's fixed-rate runs it is compared with.
    log(`baseline: h2load --rps ${o.rate} on one connection, ${o.dohDuration} s`);
    const baseline = await measure(onUpstream, () =>
      runH2load(sup, "h2load-baseline", {
        urisPath,
        clients: 1,
        streams: 10,
        seconds: o.dohDuration,
        logPath: `${work}/h2load-rate.log`,
        rps: o.rate,
      }));
    ctx.commands.push(baseline.result.command);
    out.rows.push(h2loadRow(UPSTREAM_NAME, `direct DoH, ${o.rate} req/s (h2load)`, baseline));
    ctx.budget.push({ run: `upstream direct DoH ${o.rate} req/s (h2load)`, ...baseline.budget });
    out.h2load = baseline;
  }
  return out;
}
