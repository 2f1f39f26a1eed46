/**
 * 95% confidence intervals for the figures the benches compare, by bootstrap over interleaved
 * rounds.
 *
 * A round is one start of every mode compared (at concurrency N: one batch of N starts of each
 * mode), run back to back; the benches interleave the modes round by round so that a slow
 * spell of the machine hits every mode of a round alike. The rounds, not the starts, are
 * therefore what is resampled: a bootstrap sample draws R of the R rounds with replacement and
 * takes every sample of every mode in each drawn round, so a mode's numerator and denominator
 * always come from the same rounds (the pairing is kept, and machine noise shared within a
 * round cancels in a ratio as it does in the data).
 *
 * On each of RESAMPLES bootstrap samples every statistic is evaluated (a ratio of medians: the
 * median of the numerator mode's samples over the median of the denominator's), and the
 * interval is the 2.5th to 97.5th percentile of those values (the percentile method). The
 * estimate itself is the statistic on the rounds as measured, so it is exactly the figure the
 * benches have always printed. The generator is seeded (mulberry32, seed SEED), and all
 * statistics of one call share the same bootstrap samples: the same rows always give the same
 * intervals, so a report rebuilt from its JSON shows what the run printed.
 *
 * An interval needs at least two rounds; with one there is nothing to resample (null). With few
 * rounds it is coarse and too narrow (of 3 rounds a resampled median takes only a few values):
 * on normal data it covered the true ratio 76% of the time with 3 rounds and 94-96% with 5 to 30
 * (the unit tests check 5 and 30), so `--reps auto` never stops before MIN_AUTO_ROUNDS.
 */
import { seededRandom } from "./random.js";
import { median, percentileOfSorted } from "./stats.js";

/** One interleaved round: the samples (ms) of each mode in it, by mode. */
export type Round = Readonly<Record<string, readonly number[]>>;

/** A figure computed from each mode's median over some rounds. */
export type Statistic = (medianOf: (mode: string) => number) => number;

export interface Interval {
  /** The statistic on the rounds as measured. */
  estimate: number;
  /** The bounds of the 95% percentile interval; null with fewer than 2 rounds. */
  low: number | null;
  high: number | null;
  /** Rounds it was computed from. */
  rounds: number;
}

export const RESAMPLES = 2000;
export const SEED = 1;
export const CONFIDENCE = 0.95;

export interface BootstrapOptions {
  resamples?: number;
  seed?: number;
  confidence?: number;
}

/** A ratio of medians: numerator mode over denominator mode. */
export const ratioOfMedians =
  (numerator: string, denominator: string): Statistic =>
  (medianOf) =>
    medianOf(numerator) / medianOf(denominator);

function medians(rounds: readonly Round[]): (mode: string) => number {
  const cache = new Map<string, number>();
  return (mode) => {
    let value = cache.get(mode);
    if (value === undefined) {
      value = median(rounds.flatMap((round) => round[mode] ?? []));
      cache.set(mode, value);
    }
    return value;
  };
}

/** Intervals of several statistics over the same rounds, from one set of bootstrap samples. */
export function bootstrapIntervals<K extends string>(rounds: readonly Round[], statistics: Readonly<Record<K, Statistic>>, options: BootstrapOptions = {}): Record<K, Interval> {
  const keys = Object.keys(statistics) as K[];
  const resamples = options.resamples ?? RESAMPLES;
  const tail = ((1 - (options.confidence ?? CONFIDENCE)) / 2) * 100;
  const measured = medians(rounds);
  const values = new Map<K, number[]>(keys.map((key) => [key, []]));
  if (rounds.length >= 2) {
    const random = seededRandom(options.seed ?? SEED);
    for (let b = 0; b < resamples; b++) {
      const drawn = Array.from({ length: rounds.length }, () => rounds[Math.floor(random() * rounds.length)]!);
      const medianOf = medians(drawn);
      for (const key of keys) {
        const value = statistics[key](medianOf);
        // A sample can lack a mode (a round without it) or divide by zero: it says nothing.
        if (Number.isFinite(value)) values.get(key)!.push(value);
      }
    }
  }
  return Object.fromEntries(
    keys.map((key) => {
      const sorted = values.get(key)!.sort((a, b) => a - b);
      const bounded = sorted.length > 0;
      const interval: Interval = {
        estimate: statistics[key](measured),
        low: bounded ? percentileOfSorted(sorted, tail) : null,
        high: bounded ? percentileOfSorted(sorted, 100 - tail) : null,
        rounds: rounds.length,
      };
      return [key, interval];
    }),
  ) as Record<K, Interval>;
}

/**
 * How far the interval reaches from the estimate, as a share of it: 0.05 means the interval
 * lies within +-5% of the figure. Infinity when there is no interval.
 */
export function relativeHalfWidth(interval: Interval): number {
  if (interval.low === null || interval.high === null || !(interval.estimate !== 0 && Number.isFinite(interval.estimate))) return Number.POSITIVE_INFINITY;
  return Math.max(interval.estimate - interval.low, interval.high - interval.estimate) / Math.abs(interval.estimate);
}

/** Samples grouped into rounds by their rep (1-based), in rep order. */
export function roundsOf(samples: readonly { mode: string; rep: number; ms: number }[]): Round[] {
  const byRep = new Map<number, Record<string, number[]>>();
  for (const sample of samples) {
    let round = byRep.get(sample.rep);
    if (!round) byRep.set(sample.rep, (round = {}));
    (round[sample.mode] ??= []).push(sample.ms);
  }
  return [...byRep.entries()].sort(([a], [b]) => a - b).map(([, round]) => round);
}
