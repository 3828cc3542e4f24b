/**
 * The doh mode: a target's own DoH face with its cache filled, under h2load GETs (`?dns=`, ID 0)
 * over the first `--doh-names` names: at the fixed rate on one connection, then at saturation
 * once per `--doh-streams` shape.
 *
 * @module
 */
import { h2loadUris } from "./configs.ts";
import { type H2loadResult, runH2load } from "./h2load.ts";
import type { Target } from "./lab.ts";
import { type FigureResult, h2loadRow, measure, type Measured } from "./measure.ts";
import {
  assertAlive,
  type Job,
  jobKey,
  MODE_TITLE,
  modeNames,
  type RunContext,
  targetName,
  who,
} from "./run_context.ts";

/**
 * Connections of the DoH cache fill: 16, and 8 per thread for more than two threads, so that
 * the kernel (SO_REUSEPORT) all but surely hands every thread of a bridge some of them.
 */
function dohFillConnections(threads: number): number {
  return Math.max(16, 8 * threads);
}

/**
 * One doh job on a started target: fill the cache (every name on each of `dohFillConnections`
 * connections, so every thread of a threaded bridge sees every name), then h2load GET `?dns=`
 * over the names at the fixed rate, then at saturation once per --doh-streams shape (rows in
 * table order: the shapes, then the fixed rate).
 */
export async function runDohJob(ctx: RunContext, job: Job, target: Target): Promise<FigureResult> {
  const { o, sup, lab, work, log, loads } = ctx;
  const label = `${who(job)} ${MODE_TITLE.doh}`;
  const slug = jobKey(job);
  const watched = { target: target.proc, upstream: lab.upstreamProcs };
  const urisPath = `${work}/uris-${slug}.txt`;
  Deno.writeTextFileSync(urisPath, h2loadUris(loads.dohNames, target.dohPort!));
  const fillConnections = dohFillConnections(job.threads);
  const fillRequests = fillConnections * loads.dohNames.length;
  log(`${label}: cache fill, ${fillRequests} GETs on ${fillConnections} connections`);
  const fill = await runH2load(sup, `fill-${slug}`, {
    urisPath,
    clients: fillConnections,
    streams: o.dohStreams[0],
    seconds: 30,
    requests: fillRequests,
    logPath: `${work}/h2load-fill-${slug}.log`,
  });
  assertAlive(target.proc);
  ctx.commands.push(fill.command);
  if (fill.succeeded < fill.total) {
    ctx.notes.push(
      `${label}: ${fill.total - fill.succeeded} of the cache-fill GETs got no 2xx answer.`,
    );
  }
  // The fixed rate first: right after a saturation run a server may still be working off
  // its backlog (or collecting garbage), which would show in the quiet run.
  log(`${label}: ${loads.dohRateMode}, ${o.dohDuration} s`);
  const fixed = await measure(watched, () =>
    runH2load(sup, `doh-rate-${slug}`, {
      urisPath,
      clients: 1,
      streams: 10,
      seconds: o.dohDuration,
      rps: o.rate,
      warmUpSeconds: 0,
      logPath: `${work}/h2load-rate-${slug}.log`,
    }));
  assertAlive(target.proc);
  const runs: { load: string; m: Measured<H2loadResult> }[] = [];
  for (const [i, streams] of o.dohStreams.entries()) {
    const load = loads.dohSatModes[i];
    log(`${label}: ${load}, ${o.dohDuration} s`);
    const sat = await measure(watched, () =>
      runH2load(sup, `doh-sat-${slug}-m${streams}`, {
        urisPath,
        clients: o.dohConnections,
        streams,
        seconds: o.dohDuration,
        warmUpSeconds: 0,
        logPath: `${work}/h2load-sat-${slug}-m${streams}.log`,
      }));
    assertAlive(target.proc);
    log(`${label}: ${load}: ${sat.result.reqPerSec.toFixed(0)} req/s`);
    runs.push({ load, m: sat });
  }
  runs.push({ load: loads.dohRateMode, m: fixed });
  const names = modeNames(ctx, "doh");
  for (const { load, m } of runs) {
    const r = m.result;
    ctx.commands.push(r.command);
    ctx.budget.push({ run: `${label}, ${load}`, ...m.budget });
    if (r.succeeded < r.total) {
      ctx.notes.push(
        `${label}, ${load}: ${r.total - r.succeeded} of ${r.total} GETs got no 2xx answer.`,
      );
    }
  }
  return {
    rows: runs.map(({ m }, i) => h2loadRow(targetName(ctx, job), names[i], m)),
    fixedAvgMs: fixed.result.avgMs,
  };
}
