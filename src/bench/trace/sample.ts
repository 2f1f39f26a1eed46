/**
 * Choosing N functions from a trace so that the sample keeps the trace's distributions.
 *
 * The method is In-Vitro's (Ustiugov et al.; vhive-serverless/invitro, sampler/sample.py,
 * get_best_sample): draw `trials` candidate samples of N functions uniformly at random without
 * replacement, score each by the Wasserstein (earth mover's) distance between the sample's
 * distributions and the whole trace's, and keep the candidate with the lowest score. Where
 * In-Vitro scores the per-minute distributions of invocation counts and of resources (count x
 * duration x memory) across the functions, vhive scores three per-function distributions,
 * each on a log10 scale (they span orders of magnitude, 8 for invocation rates):
 *
 *   rate      invocations per minute in the replayed window
 *   duration  mean execution time, ms
 *   memory    allocated memory, MB (the application's, split among its functions)
 *
 * and averages the three distances. Per-function summaries come out of one streaming pass over
 * the trace, so this needs memory for N x trials indices and one summary per function, not the
 * functions' per-minute series. Only functions invoked at least once in the window are
 * candidates: a function without invocations has nothing to replay.
 *
 * Seeded (mulberry32, as `vhive bench load`): the same trace, window, N, trials and seed give
 * the same sample.
 */
import { VhiveError } from "../../shared/errors.js";
import { seededRandom } from "../random.js";
import type { TraceFunction } from "./azure.js";

export interface SampleOptions {
  size: number;
  seed: number;
  /** Candidate samples drawn (default 1000). */
  trials?: number;
  minutes: number;
}

export interface SampleScore {
  rate: number;
  duration: number;
  memory: number;
  mean: number;
}

export interface TraceSample {
  functions: TraceFunction[];
  /** The chosen sample's distances to the trace, and the median over all candidates. */
  score: SampleScore;
  medianCandidateScore: number;
  candidates: number;
  population: number;
}

export const DEFAULT_TRIALS = 1000;

/** The log10 features the distances are taken over (values below the floor are clamped to it). */
export function features(fn: TraceFunction, minutes: number): { rate: number; duration: number; memory: number } {
  return {
    rate: Math.log10(Math.max(fn.invocations / minutes, 1e-3)),
    duration: Math.log10(Math.max(fn.averageMs, 0.1)),
    memory: Math.log10(Math.max(fn.averageMb, 0.1)),
  };
}

/** The 1-Wasserstein distance between two empirical distributions, each sorted ascending. */
export function wasserstein(a: readonly number[], b: readonly number[]): number {
  if (a.length === 0 || b.length === 0) return Number.NaN;
  // Integrate |F_a - F_b| over the merged support, stepping from one value to the next.
  let i = 0;
  let j = 0;
  let distance = 0;
  let previous = Math.min(a[0]!, b[0]!);
  while (i < a.length || j < b.length) {
    const next = j >= b.length || (i < a.length && a[i]! <= b[j]!) ? a[i]! : b[j]!;
    distance += Math.abs(i / a.length - j / b.length) * (next - previous);
    previous = next;
    while (i < a.length && a[i] === next) i++;
    while (j < b.length && b[j] === next) j++;
  }
  return distance;
}

const ascending = (values: number[]) => values.sort((x, y) => x - y);

export function sampleFunctions(population: readonly TraceFunction[], options: SampleOptions): TraceSample {
  const candidates = population.filter((fn) => fn.invocations > 0);
  const trials = options.trials ?? DEFAULT_TRIALS;
  if (!Number.isInteger(options.size) || options.size < 1) throw new VhiveError("ERR_VALIDATION", `--functions ${options.size}: expected a whole number of at least 1`);
  if (options.size > candidates.length) {
    throw new VhiveError("ERR_VALIDATION", `--functions ${options.size}: the trace has only ${candidates.length} functions invoked in the window`, {
      remedy: "sample fewer functions, or replay a longer window (--minutes, --start-minute)",
    });
  }
  const all = candidates.map((fn) => features(fn, options.minutes));
  const whole = { rate: ascending(all.map((f) => f.rate)), duration: ascending(all.map((f) => f.duration)), memory: ascending(all.map((f) => f.memory)) };
  const random = seededRandom(options.seed);
  const indices = candidates.map((_, i) => i);
  let best: { picked: number[]; score: SampleScore } | undefined;
  const means: number[] = [];
  for (let trial = 0; trial < trials; trial++) {
    // A partial Fisher-Yates shuffle: the first `size` indices are a uniform sample.
    for (let k = 0; k < options.size; k++) {
      const swap = k + Math.floor(random() * (indices.length - k));
      [indices[k], indices[swap]] = [indices[swap]!, indices[k]!];
    }
    const picked = indices.slice(0, options.size);
    const of = (feature: "rate" | "duration" | "memory") => wasserstein(ascending(picked.map((i) => all[i]![feature])), whole[feature]);
    const score = { rate: of("rate"), duration: of("duration"), memory: of("memory"), mean: 0 };
    score.mean = (score.rate + score.duration + score.memory) / 3;
    means.push(score.mean);
    if (!best || score.mean < best.score.mean) best = { picked, score };
  }
  means.sort((x, y) => x - y);
  return {
    functions: best!.picked.map((i) => candidates[i]!),
    score: best!.score,
    medianCandidateScore: means[Math.floor(means.length / 2)]!,
    candidates: trials,
    population: candidates.length,
  };
}
