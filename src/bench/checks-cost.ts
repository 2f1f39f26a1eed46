/**
 * What a restored clone's checks cost a prefetch cold start: the guest's reseed (measured as
 * prefetch against prefetch-unseeded, interleaved) and the pager's page verification (timed by
 * the pager itself: an upper bound on what it adds, since it overlaps QEMU's start-up and the
 * device-state load). Both are measured against a start with neither: the unseeded prefetch's
 * median minus its own verification.
 */
import { findSummary, type ModeSummary } from "./rows.js";

export interface ChecksCost {
  function: string;
  /** Median first response of prefetch, and of prefetch without the reseed, ms. */
  prefetchMs: number;
  unseededMs: number;
  /** prefetch - prefetch-unseeded medians. */
  reseedMs: number;
  /** The pager's median verification time in prefetch. */
  verifyMs: number;
  /** (reseed + verification) / a start with neither. */
  share: number;
}

/** The cost for one function, when its run had both prefetch and prefetch-unseeded. */
export function checksCost(summaries: readonly ModeSummary[], fn: string): ChecksCost | undefined {
  const prefetch = findSummary(summaries, fn, "prefetch");
  const unseeded = findSummary(summaries, fn, "prefetch-unseeded");
  if (!prefetch || !unseeded) return undefined;
  const verifyMs = prefetch.verifyMs ?? 0;
  const uncheckedMs = unseeded.totalMs.median - (unseeded.verifyMs ?? 0);
  const reseedMs = prefetch.totalMs.median - unseeded.totalMs.median;
  return {
    function: fn,
    prefetchMs: prefetch.totalMs.median,
    unseededMs: unseeded.totalMs.median,
    reseedMs,
    verifyMs,
    share: (prefetch.totalMs.median - uncheckedMs) / uncheckedMs,
  };
}
