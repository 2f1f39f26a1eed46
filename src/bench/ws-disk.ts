/**
 * What working sets cost on disk and in reads, from bench rows: per function and prefetch mode,
 * the bytes stored (format 3: zero pages left out, maybe compressed) against the pages' own
 * bytes (what format 2 stored), and, for concurrent starts, how much of it all the pagers of a
 * round read from disk together (page-cache hits excluded) against one working set.
 */
import type { BenchMode, BenchRow } from "./rows.js";
import { isPrefetchMode } from "./rows.js";
import { median } from "./stats.js";

export interface WsDiskFigures {
  function: string;
  mode: BenchMode;
  concurrency: number;
  /** The working set's encoding and how it was read, as the pager reported them. */
  codec: string;
  read: string;
  pages: number;
  /** pages x page size: what format 2 stored on disk. */
  pageBytes: number;
  diskBytes: number;
  /** diskBytes / pageBytes. */
  ofPageBytes: number;
  /** Median over the rounds of what all the round's pagers read from disk together. */
  roundReadBytes: number | null;
  /** roundReadBytes / diskBytes: 1 when the round read the working set once, N when each of N read it. */
  readsOfWs: number | null;
  rounds: number;
}

/** One line per function, prefetch mode and concurrency that read a working set, in first-seen order. */
export function wsDiskFigures(rows: readonly BenchRow[]): WsDiskFigures[] {
  const groups = new Map<string, BenchRow[]>();
  for (const row of rows) {
    if (!isPrefetchMode(row.mode) || row.wsDiskBytes === null || row.wsDiskBytes === undefined || !row.wsPages) continue;
    const key = `${row.function}\0${row.mode}\0${row.concurrency}`;
    groups.set(key, [...(groups.get(key) ?? []), row]);
  }
  return [...groups.values()].map((group) => {
    const first = group[0]!;
    const diskBytes = median(group.map((row) => row.wsDiskBytes!));
    const pageBytes = median(group.map((row) => row.wsBytes ?? 0));
    const perRound = new Map<number, number | null>();
    for (const row of group) {
      const sum = perRound.get(row.rep);
      perRound.set(row.rep, row.pagerBytesRead === null || row.pagerBytesRead === undefined || sum === null ? null : (sum ?? 0) + row.pagerBytesRead);
    }
    const rounds = [...perRound.values()];
    const roundReadBytes = rounds.some((bytes) => bytes === null) ? null : median(rounds as number[]);
    return {
      function: first.function,
      mode: first.mode,
      concurrency: first.concurrency,
      codec: first.wsCodec ?? "",
      read: first.wsRead ?? "",
      pages: median(group.map((row) => row.wsPages!)),
      pageBytes,
      diskBytes,
      ofPageBytes: pageBytes > 0 ? diskBytes / pageBytes : Number.NaN,
      roundReadBytes,
      readsOfWs: roundReadBytes === null || diskBytes === 0 ? null : roundReadBytes / diskBytes,
      rounds: perRound.size,
    };
  });
}
