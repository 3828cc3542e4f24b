/**
 * The bridging and cached modes: dnsperf over DoT at a target, at saturation and at the fixed
 * rate, after an unmeasured warm-up. The two modes differ only in the target's cache (off for
 * bridging), which the job's start chose. The plain DNS modes (`dns-bridging`, `dns-cached`)
 * are the same over UDP, at the target's plain DNS port.
 *
 * @module
 */
import { isPlain } from "./options.ts";
import { runDnsperf } from "./dnsperf.ts";
import type { Target } from "./lab.ts";
import { dnsperfRow, type FigureResult, measure } from "./measure.ts";
import {
  assertAlive,
  type Job,
  jobKey,
  modeNames,
  type RunContext,
  targetName,
  who,
} from "./run_context.ts";

/** One bridging or cached job on a started target: a warm-up, then the two measured runs. */
export async function runDotJob(ctx: RunContext, job: Job, target: Target): Promise<FigureResult> {
  const { o, sup, lab, log, loads } = ctx;
  const { mode } = job;
  const label = who(job);
  const slug = jobKey(job);
  const watched = { target: target.proc, upstream: lab.upstreamProcs };
  const plain = isPlain(mode);
  const port = plain ? target.dnsPort! : target.port;
  const satLoad = plain ? loads.udpSat : loads.sat;
  const rateLoad = plain ? loads.udpRate : loads.rate;
  if (o.warmup > 0) {
    await runDnsperf(sup, `warmup-${slug}`, {
      ...satLoad,
      port,
      outstanding: Math.min(o.outstanding, 200),
      seconds: o.warmup,
      verbose: false,
    });
  }
  log(`${label} ${mode}: ${loads.satMode}, ${o.duration} s`);
  const sat = await measure(
    watched,
    () => runDnsperf(sup, `sat-${slug}`, { ...satLoad, port }),
  );
  assertAlive(target.proc);
  log(
    `${label} ${mode}: ${sat.result.qps.toFixed(0)} QPS; now ${loads.rateMode}, ${o.duration} s`,
  );
  const fixed = await measure(
    watched,
    () => runDnsperf(sup, `rate-${slug}`, { ...rateLoad, port }),
  );
  assertAlive(target.proc);
  ctx.commands.push(sat.result.command, fixed.result.command);
  ctx.budget.push({ run: `${label} ${mode}, ${loads.satMode}`, ...sat.budget });
  ctx.budget.push({ run: `${label} ${mode}, ${loads.rateMode}`, ...fixed.budget });
  for (const m of [sat, fixed]) {
    const bad = m.result.completed - (m.result.rcodes.NOERROR ?? 0);
    if (bad > 0) {
      ctx.notes.push(
        `${label} ${mode}: ${bad} answers not NOERROR: ${JSON.stringify(m.result.rcodes)}`,
      );
    }
  }
  const [satRow, rateRow] = modeNames(ctx, mode);
  return {
    rows: [
      dnsperfRow(targetName(ctx, job), satRow, sat),
      dnsperfRow(targetName(ctx, job), rateRow, fixed),
    ],
    fixedAvgMs: fixed.result.avgMs,
  };
}
