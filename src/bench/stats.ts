/** Summary statistics for benchmark samples. */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export function summarize(values: readonly number[]): Summary {
  return { n: values.length, median: median(values), min: Math.min(...values), max: Math.max(...values) };
}

/** Median of each numeric field across rows of the same shape. */
export function medianOfFields<K extends string>(rows: readonly Record<K, number>[]): Record<K, number> {
  const keys = Object.keys(rows[0] ?? {}) as K[];
  return Object.fromEntries(keys.map((key) => [key, median(rows.map((row) => row[key]))])) as Record<K, number>;
}

/** The p-th percentile (0..100), interpolated between the two nearest ranks (numpy's default). */
export function percentile(values: readonly number[], p: number): number {
  return percentileOfSorted([...values].sort((a, b) => a - b), p);
}

/** percentile() of values already sorted ascending: several percentiles for one sort. */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}

/** Pearson's correlation of paired samples; NaN with fewer than 3 pairs or no spread. */
export function correlation(xs: readonly number[], ys: readonly number[]): number {
  const n = Math.min(xs.length, ys.length);
  if (n < 3) return Number.NaN;
  const mean = (values: readonly number[]) => values.slice(0, n).reduce((sum, v) => sum + v, 0) / n;
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  for (let i = 0; i < n; i++) {
    const dx = xs[i]! - mx;
    const dy = ys[i]! - my;
    sxy += dx * dy;
    sxx += dx * dx;
    syy += dy * dy;
  }
  return sxx === 0 || syy === 0 ? Number.NaN : sxy / Math.sqrt(sxx * syy);
}
