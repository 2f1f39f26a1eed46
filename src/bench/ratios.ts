/**
 * The ratios the cold-start and concurrency benches print, each with its 95% confidence
 * interval (bootstrap over the interleaved rounds, see bootstrap.ts). A ratio is the median
 * time to first response of one mode over another's, both alone or both at the same
 * concurrency. Which ratios a run has depends on the modes it ran: RATIO_PAIRS, in order.
 */
import { bootstrapIntervals, ratioOfMedians, relativeHalfWidth, roundsOf, type Interval, type Round, type Statistic } from "./bootstrap.js";
import type { BenchMode, BenchRow } from "./rows.js";

export interface RatioPair {
  numerator: BenchMode;
  denominator: BenchMode;
}

/**
 * Every comparison the benches make: REAP's speedups over the two vanilla baselines, how close
 * prefetch comes to the floor, and what recording costs (over vanilla-4k, the paper's baseline,
 * else over vanilla); then the prefetch variants: a compressed working set against the raw one
 * (no slower is the goal), and reads through the page cache against O_DIRECT (at concurrency,
 * where sharing one read should show), and what the reseed and the page checks cost; then what
 * a pooled VMM gains over prefetch and the floor (both of which still start QEMU). A pair is
 * shown when both of its modes ran.
 */
const RATIO_PAIRS: readonly (RatioPair | { numerator: "record"; denominator: readonly BenchMode[] })[] = [
  { numerator: "vanilla", denominator: "prefetch" },
  { numerator: "vanilla-4k", denominator: "prefetch" },
  { numerator: "prefetch", denominator: "floor" },
  { numerator: "record", denominator: ["vanilla-4k", "vanilla"] },
  { numerator: "prefetch-lz4", denominator: "prefetch-raw" },
  // plain prefetch reads the default encoding (lz4): the same comparison when prefetch-lz4 did not run
  { numerator: "prefetch", denominator: "prefetch-raw" },
  { numerator: "prefetch-zstd", denominator: "prefetch-raw" },
  { numerator: "prefetch-raw", denominator: "floor" },
  { numerator: "prefetch-cached", denominator: "prefetch-direct" },
  { numerator: "prefetch", denominator: "prefetch-unseeded" },
  { numerator: "prefetch", denominator: "prefetch-unchecked" },
  { numerator: "prefetch-unseeded", denominator: "prefetch-unchecked" },
  { numerator: "pool", denominator: "prefetch" },
  { numerator: "pool", denominator: "floor" },
  { numerator: "pool-installed", denominator: "prefetch" },
  { numerator: "pool-installed", denominator: "floor" },
];

export interface RatioFigure extends RatioPair, Interval {
  /** "vanilla-4k / prefetch" */
  label: string;
}

export const ratioLabel = (pair: RatioPair): string => `${pair.numerator} / ${pair.denominator}`;

/** The pairs whose modes are both among `modes`, in RATIO_PAIRS order. */
export function ratioPairs(modes: readonly BenchMode[]): RatioPair[] {
  return RATIO_PAIRS.flatMap((pair) => {
    if (!modes.includes(pair.numerator)) return [];
    const denominator = typeof pair.denominator === "string" ? pair.denominator : pair.denominator.find((mode) => modes.includes(mode));
    return denominator !== undefined && modes.includes(denominator) ? [{ numerator: pair.numerator, denominator }] : [];
  });
}

/** Ratios with intervals over given rounds. */
export function ratioFigures(rounds: readonly Round[], pairs: readonly RatioPair[]): RatioFigure[] {
  const statistics: Record<string, Statistic> = Object.fromEntries(pairs.map((pair) => [ratioLabel(pair), ratioOfMedians(pair.numerator, pair.denominator)]));
  const intervals = bootstrapIntervals(rounds, statistics);
  return pairs.map((pair) => ({ ...pair, label: ratioLabel(pair), ...intervals[ratioLabel(pair)]! }));
}

/** Ratios of one function's starts at one concurrency, over the rounds (reps) of its rows. */
export function benchRatios(rows: readonly BenchRow[], fn: string, concurrency: number, pairs: readonly RatioPair[]): RatioFigure[] {
  const mine = rows.filter((row) => row.function === fn && row.concurrency === concurrency);
  return ratioFigures(roundsOf(mine.map((row) => ({ mode: row.mode, rep: row.rep, ms: row.totalMs }))), pairs);
}

/** Those of `figures` whose interval is wider than +-`targetShare` of the figure (or missing). */
export function tooWide<F extends Interval>(figures: readonly F[], targetShare: number): F[] {
  return figures.filter((figure) => !(relativeHalfWidth(figure) <= targetShare));
}

// ---- formatting (the CLI and report.md alike) -------------------------------------------------

/** A ratio as the benches print it: "2.4x", "1.02x" below 1.1. */
export function formatRatio(ratio: number | undefined | null): string {
  return ratio === undefined || ratio === null || !Number.isFinite(ratio) ? "" : `${ratio.toFixed(ratio < 1.1 ? 2 : 1)}x`;
}

/** "2.21..2.52", or "" without an interval. */
export function formatBounds(interval: Interval): string {
  return interval.low === null || interval.high === null ? "" : `${interval.low.toFixed(2)}..${interval.high.toFixed(2)}`;
}

/** "+-6.6%": how far the interval reaches from the figure; "" without one. */
export function formatHalfWidth(interval: Interval): string {
  const share = relativeHalfWidth(interval);
  return Number.isFinite(share) ? `±${(share * 100).toFixed(1)}%` : "";
}

/** "2.4x (2.21..2.52)": the figure, then its interval where there is one. */
export function formatRatioWithInterval(interval: Interval): string {
  const bounds = formatBounds(interval);
  return bounds ? `${formatRatio(interval.estimate)} (${bounds})` : formatRatio(interval.estimate);
}
