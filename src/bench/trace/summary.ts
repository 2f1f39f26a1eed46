/**
 * The figures of a trace replay, per function and overall: the share of requests that met a
 * cold start, how they started, latency and slowdown percentiles, and memory-time: the
 * GiB-seconds of instances alive (guest memory reserved, from the start being admitted until
 * the instance ended), counted within the run, as Shahrad et al. count a policy's memory cost.
 */
import type { InstanceLifetime } from "../../orchestrator/index.js";
import type { StartKind } from "../../store/index.js";
import { percentileOfSorted } from "../stats.js";
import type { TraceReport, TraceRow } from "./replay.js";

export interface TraceFigures {
  /** A function's deployed name, or "all". */
  function: string;
  sent: number;
  ok: number;
  errors: number;
  /** Share of the answered requests that waited for a cold start. */
  coldShare: number;
  starts: Partial<Record<StartKind, number>>;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  slowdownP50: number;
  slowdownP99: number;
  memoryGibS: number;
  instances: number;
  prewarmed: number;
}

/** GiB-seconds of the lifetimes within [fromMs, toMs] (epoch ms); live ones count until toMs. */
export function memoryTimeGibS(lifetimes: readonly InstanceLifetime[], fromMs: number, toMs: number): number {
  let gibS = 0;
  for (const life of lifetimes) {
    const start = Math.max(fromMs, Date.parse(life.startedAt));
    const end = Math.min(toMs, life.endedAt === null ? toMs : Date.parse(life.endedAt));
    if (end > start) gibS += (life.memMib / 1024) * ((end - start) / 1000);
  }
  return gibS;
}

function figures(name: string, rows: readonly TraceRow[], lifetimes: readonly InstanceLifetime[], fromMs: number, toMs: number): TraceFigures {
  const ok = rows.filter((row) => row.status === "ok");
  const latencies = ok.map((row) => row.latencyMs).sort((a, b) => a - b);
  const slowdowns = ok.map((row) => row.slowdown!).sort((a, b) => a - b);
  const starts: Partial<Record<StartKind, number>> = {};
  for (const row of ok) starts[row.start!] = (starts[row.start!] ?? 0) + 1;
  const inRun = lifetimes.filter((life) => (life.endedAt === null || Date.parse(life.endedAt) > fromMs) && Date.parse(life.startedAt) < toMs);
  return {
    function: name,
    sent: rows.length,
    ok: ok.length,
    errors: rows.length - ok.length,
    coldShare: ok.length === 0 ? 0 : (ok.length - (starts.warm ?? 0)) / ok.length,
    starts,
    p50Ms: percentileOfSorted(latencies, 50),
    p90Ms: percentileOfSorted(latencies, 90),
    p99Ms: percentileOfSorted(latencies, 99),
    slowdownP50: percentileOfSorted(slowdowns, 50),
    slowdownP99: percentileOfSorted(slowdowns, 99),
    memoryGibS: memoryTimeGibS(inRun, fromMs, toMs),
    instances: inRun.length,
    prewarmed: inRun.filter((life) => life.prewarmed).length,
  };
}

/** "all" first, then each function in the sample's order. */
export function summarizeTrace(report: TraceReport): TraceFigures[] {
  const fromMs = Date.parse(report.startedAt);
  const toMs = Date.parse(report.endedAt);
  const names = report.functions.map((fn) => fn.name);
  return [
    figures("all", report.rows, report.lifetimes, fromMs, toMs),
    ...names.map((name) =>
      figures(
        name,
        report.rows.filter((row) => row.function === name),
        report.lifetimes.filter((life) => life.function === name),
        fromMs,
        toMs,
      ),
    ),
  ];
}
