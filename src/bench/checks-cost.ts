/**
 * What a restored clone's checks cost a prefetch cold start, from interleaved runs of the same
 * restore with and without them: `prefetch` (the guest reseeded, every page the pager reads
 * checked), `prefetch-unseeded` (no reseed) and `prefetch-unchecked` (neither). The reseed is
 * prefetch - unseeded, the page checks unseeded - unchecked, both together prefetch - unchecked,
 * as medians. Without `prefetch-unchecked` the checks are estimated by the pager's own time
 * spent on them (an upper bound: they overlap QEMU's start and the device-state load).
 */
import { findSummary, type ModeSummary } from "./rows.js";

export interface ChecksCost {
  function: string;
  /** Median first response of prefetch with both checks, ms. */
  prefetchMs: number;
  /** Of a prefetch with neither (measured, or estimated: see measured). */
  uncheckedMs: number;
  /** Whether uncheckedMs was measured (prefetch-unchecked ran) or estimated from the pager's verify time. */
  measured: boolean;
  /** The reseed's share: prefetch - prefetch-unseeded medians, ms (null without prefetch-unseeded). */
  reseedMs: number | null;
  /** The page checks: prefetch-unseeded - prefetch-unchecked medians (measured), or the pager's verify time, ms. */
  verifyMs: number | null;
  /** (prefetch - unchecked) / unchecked. */
  share: number;
}

/** The cost for one function, when its run had prefetch and prefetch-unchecked or prefetch-unseeded. */
export function checksCost(summaries: readonly ModeSummary[], fn: string): ChecksCost | undefined {
  const prefetch = findSummary(summaries, fn, "prefetch");
  const unseeded = findSummary(summaries, fn, "prefetch-unseeded");
  const unchecked = findSummary(summaries, fn, "prefetch-unchecked");
  if (!prefetch || (!unseeded && !unchecked)) return undefined;
  const prefetchMs = prefetch.totalMs.median;
  const uncheckedMs = unchecked ? unchecked.totalMs.median : unseeded!.totalMs.median - (unseeded!.verifyMs ?? 0);
  const reseedMs = unseeded ? prefetchMs - unseeded.totalMs.median : null;
  const verifyMs = unseeded && unchecked ? unseeded.totalMs.median - unchecked.totalMs.median : unchecked ? null : (unseeded!.verifyMs ?? 0);
  return { function: fn, prefetchMs, uncheckedMs, measured: unchecked !== undefined, reseedMs, verifyMs, share: (prefetchMs - uncheckedMs) / uncheckedMs };
}
