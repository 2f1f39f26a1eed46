/** Summary statistics for benchmark samples. */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
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
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (Math.min(100, Math.max(0, p)) / 100) * (sorted.length - 1);
  const low = Math.floor(rank);
  const high = Math.ceil(rank);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (rank - low);
}
