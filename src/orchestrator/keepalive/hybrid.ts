/**
 * The hybrid histogram policy of Shahrad et al., "Serverless in the Wild: Characterizing and
 * Optimizing the Serverless Workload at a Large Cloud Provider" (USENIX ATC'20, section 4.2).
 *
 * It learns each function's idle times (IT: from the end of one execution to the next request)
 * in a range-limited histogram of 1-minute bins covering 4 hours, and after every execution
 * picks one of three rules:
 *
 *   histogram     the histogram is representative: its bin counts' coefficient of variation
 *                 (CV) is at least 2, i.e. a few bins hold most ITs. The pre-warming window is
 *                 the head of the IT distribution (the 5th percentile, rounded down to its
 *                 bin's start) less a 10% margin; the instance stays loaded until the tail (the
 *                 99th percentile, rounded up to its bin's end) plus 10%. A head in the first
 *                 bin means "do not unload": the instance is kept until the tail.
 *   standard      the histogram is not representative (too few ITs, or a flat histogram: CV
 *                 below 2): a standard keep-alive as long as the histogram's range (4 hours),
 *                 no pre-warming, to be conservative while the pattern is unknown.
 *   out-of-bounds most ITs fall beyond the 4 hours: a time-series forecast of the next IT
 *                 (ARIMA, see forecast.ts); pre-warm at the forecast less 15%, keep until the
 *                 forecast plus 15%.
 *
 * Where vhive differs from the paper, and why:
 *   - Per function, not per application: the paper works per Azure application (the unit of
 *     allocation there); a vhive function is the unit of instances and snapshots.
 *   - IT of a request that arrives while others are in flight is 0 (the function was not idle);
 *     with concurrent requests the paper's "end of the previous execution" has no single value.
 *   - The paper gives no number for "too few ITs" nor for "most ITs out of bounds": vhive uses
 *     MIN_SAMPLES (10) and an out-of-bounds share above one half.
 *   - The coefficient of variation is the population standard deviation of the 240 bin counts
 *     over their mean (the paper does not say which deviation).
 *   - A forecast from fewer than MIN_ARIMA_SAMPLES ITs is their mean (forecast.ts).
 */
import { forecastNext } from "./forecast.js";
import type { IdleDecision, KeepalivePolicy } from "./policy.js";

export interface HybridOptions {
  /** Histogram bin width (the paper: 1 minute). */
  binMs: number;
  /** Bins in the histogram (the paper: 240, i.e. 4 hours). */
  bins: number;
  headPercentile: number;
  tailPercentile: number;
  /** Pre-warm this share earlier and keep this share longer than head and tail (the paper: 10%). */
  histogramMargin: number;
  /** A histogram whose bin counts' CV is below this is not representative (the paper: 2). */
  cvThreshold: number;
  /** Fewer ITs than this are not representative either (vhive's number). */
  minSamples: number;
  /** Above this share of ITs beyond the range, the forecast rule applies (vhive's number). */
  outOfBoundsShare: number;
  /** Pre-warm and keep-alive around the forecast (the paper: 15%). */
  forecastMargin: number;
  /** ITs kept for the forecast, newest (bounded: refitting is per decision). */
  forecastHistory: number;
}

export const HYBRID_DEFAULTS: HybridOptions = {
  binMs: 60_000,
  bins: 240,
  headPercentile: 5,
  tailPercentile: 99,
  histogramMargin: 0.1,
  cvThreshold: 2,
  minSamples: 10,
  outOfBoundsShare: 0.5,
  forecastMargin: 0.15,
  forecastHistory: 200,
};

export class HybridHistogramKeepalive implements KeepalivePolicy {
  readonly name = "hybrid";
  readonly #options: HybridOptions;
  readonly #counts: number[];
  #inBounds = 0;
  #outOfBounds = 0;
  /** The newest ITs, in and out of bounds, for the forecast. */
  readonly #recent: number[] = [];
  #last: IdleDecision | undefined;

  constructor(options: Partial<HybridOptions> = {}) {
    this.#options = { ...HYBRID_DEFAULTS, ...options };
    this.#counts = new Array<number>(this.#options.bins).fill(0);
  }

  observeIdleTime(idleMs: number): void {
    const bin = Math.floor(Math.max(0, idleMs) / this.#options.binMs);
    if (bin < this.#options.bins) {
      this.#counts[bin]!++;
      this.#inBounds++;
    } else {
      this.#outOfBounds++;
    }
    this.#recent.push(Math.max(0, idleMs));
    if (this.#recent.length > this.#options.forecastHistory) this.#recent.shift();
  }

  decide(): IdleDecision {
    const o = this.#options;
    const samples = this.#inBounds + this.#outOfBounds;
    const rangeMs = o.bins * o.binMs;
    let decision: IdleDecision;
    if (samples >= o.minSamples && this.#outOfBounds / samples > o.outOfBoundsShare) {
      const forecast = forecastNext(this.#recent);
      decision = { prewarmMs: forecast.valueMs * (1 - o.forecastMargin), keepAliveMs: forecast.valueMs * (1 + o.forecastMargin), rule: `out-of-bounds (${forecast.method})` };
    } else if (samples >= o.minSamples && this.cv() >= o.cvThreshold) {
      const headMs = this.#percentileBin(o.headPercentile) * o.binMs;
      const tailMs = (this.#percentileBin(o.tailPercentile) + 1) * o.binMs;
      decision = { prewarmMs: headMs * (1 - o.histogramMargin), keepAliveMs: tailMs * (1 + o.histogramMargin), rule: "histogram" };
    } else {
      decision = { prewarmMs: 0, keepAliveMs: rangeMs, rule: "standard" };
    }
    this.#last = decision;
    return decision;
  }

  /** The coefficient of variation of the bin counts (0 for an empty histogram). */
  cv(): number {
    const mean = this.#inBounds / this.#options.bins;
    if (mean === 0) return 0;
    let squares = 0;
    for (const count of this.#counts) squares += (count - mean) ** 2;
    return Math.sqrt(squares / this.#options.bins) / mean;
  }

  describe(): Record<string, unknown> {
    return {
      policy: this.name,
      idleTimes: this.#inBounds + this.#outOfBounds,
      outOfBounds: this.#outOfBounds,
      cv: Number(this.cv().toFixed(3)),
      last: this.#last ?? null,
    };
  }

  /** The bin holding the p-th percentile of the in-bounds ITs. */
  #percentileBin(p: number): number {
    const wanted = (p / 100) * this.#inBounds;
    let seen = 0;
    for (const [bin, count] of this.#counts.entries()) {
      seen += count;
      if (count > 0 && seen >= wanted) return bin;
    }
    return this.#options.bins - 1;
  }
}
