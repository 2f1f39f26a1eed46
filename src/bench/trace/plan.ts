/**
 * The requests a replay sends, drawn before it starts from the sampled functions' per-minute
 * counts, as vHive's loader and In-Vitro do:
 *
 *   - each minute's count is multiplied by `scale` (to fit the machine), the fraction kept with
 *     that probability (so a scale of 0.1 turns a count of 5 into 0 or 1, 0.5 on average);
 *   - the minute's invocations arrive at uniformly random times within it (an open loop);
 *   - each invocation's execution time is drawn from the function's duration percentiles and
 *     its memory from its memory percentiles, by inverse-CDF interpolation between the
 *     percentiles the trace gives (linear between neighbours), then capped to what the machine
 *     runs (`maxRuntimeMs`, `maxMemoryMib`): the row keeps both the drawn and the sent value.
 *
 * All of it from one seeded generator: the same inputs give the same requests.
 */
import { seededRandom } from "../random.js";
import type { Percentiles, TraceFunction } from "./azure.js";

export interface PlannedRequest {
  /** Index of the function in the sample (its deployment). */
  fn: number;
  /** When it is due, ms from the start of the replay. */
  dueMs: number;
  /** The execution time drawn from the trace, and the one asked for (capped). */
  drawnMs: number;
  runtimeMs: number;
  drawnMib: number;
  memoryMib: number;
}

export interface PlanOptions {
  seed: number;
  scale: number;
  maxRuntimeMs: number;
  maxMemoryMib: number;
}

/** The value at quantile u (0..1) of a distribution given by percentile points. */
export function fromPercentiles(points: Percentiles, u: number): number {
  const p = u * 100;
  const first = points[0]!;
  if (p <= first[0]) return first[1];
  for (let k = 1; k < points.length; k++) {
    const [p1, v1] = points[k]!;
    const [p0, v0] = points[k - 1]!;
    if (p <= p1) return p1 === p0 ? v1 : v0 + ((v1 - v0) * (p - p0)) / (p1 - p0);
  }
  return points[points.length - 1]![1];
}

const MIB_PER_MB = 1e6 / 2 ** 20;

/** Every request of the replay, in due order. `counts[i]` is function i's per-minute counts. */
export function planRequests(functions: readonly TraceFunction[], counts: readonly (readonly number[])[], options: PlanOptions): PlannedRequest[] {
  const random = seededRandom(options.seed);
  const requests: PlannedRequest[] = [];
  for (const [fn, trace] of functions.entries()) {
    for (const [minute, count] of counts[fn]!.entries()) {
      const scaled = count * options.scale;
      const n = Math.floor(scaled) + (random() < scaled - Math.floor(scaled) ? 1 : 0);
      for (let k = 0; k < n; k++) {
        const dueMs = (minute + random()) * 60_000;
        const drawnMs = fromPercentiles(trace.durationPercentiles, random());
        const drawnMib = fromPercentiles(trace.memoryPercentiles, random()) * MIB_PER_MB;
        requests.push({
          fn,
          dueMs: Math.round(dueMs),
          drawnMs: Math.round(drawnMs),
          runtimeMs: Math.max(1, Math.min(options.maxRuntimeMs, Math.round(drawnMs))),
          drawnMib: Math.round(drawnMib),
          memoryMib: Math.min(options.maxMemoryMib, Math.round(drawnMib)),
        });
      }
    }
  }
  return requests.sort((a, b) => a.dueMs - b.dueMs || a.fn - b.fn);
}

/**
 * A function's idle times at the trace's resolution, from per-minute counts, for the hybrid
 * policy to learn the function's past before a replay: 0 between invocations of the same
 * minute, and the distance in minutes between one active minute and the next (ms).
 */
export function idleTimesFromCounts(counts: readonly number[]): number[] {
  const idle: number[] = [];
  let last: number | undefined;
  for (const [minute, count] of counts.entries()) {
    if (count === 0) continue;
    if (last !== undefined) idle.push((minute - last) * 60_000);
    for (let k = 1; k < count && idle.length < 100_000; k++) idle.push(0);
    last = minute;
  }
  return idle.slice(-100_000);
}
