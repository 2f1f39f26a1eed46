/**
 * The REAP experiment: for each function, cold starts in the modes vanilla, vanilla-4k, record,
 * prefetch and floor, interleaved rep by rep so machine noise hits all alike, and concurrent
 * cold starts (prefetch against vanilla). Under TCG an empty translation cache after a restore
 * costs more than memory does, so the memory part of a mode is judged against the floor: its
 * stall is its time to first response minus the floor's.
 */
import type { StoredImage } from "../image/index.js";
import { type Host, type MemoryMode, usableSnapshot } from "../start/index.js";
import { coldStart, concurrentColdStarts, type ColdStartRow } from "./coldstart.js";
import { median, summarize, type Summary } from "./stats.js";

export const REAP_MODES = ["vanilla", "vanilla-4k", "record", "prefetch", "floor"] as const satisfies readonly MemoryMode[];
type ReapMode = (typeof REAP_MODES)[number];
const REAP_CONCURRENT_MODES = ["vanilla", "vanilla-4k", "prefetch", "floor"] as const satisfies readonly MemoryMode[];
type ReapConcurrentMode = (typeof REAP_CONCURRENT_MODES)[number];

export interface ModeFigures {
  totalMs: Summary;
  /** Median totalMs minus the floor's median. */
  stallMs: number;
  faults: number;
  majorFaults: number;
  bytesRead: number;
  fetchWsMs: number;
  installWsMs: number;
}

export interface FunctionReport {
  function: string;
  snapshotId: string;
  wsPages: number;
  wsBytes: number;
  modes: Record<ReapMode, ModeFigures>;
  /** 1 - stall(prefetch) / stall(vanilla-4k): the share of the 4 KiB baseline's memory stall REAP removes. */
  stallRemoved: number;
  prefetchOverFloor: number;
  speedupOverVanilla4k: number;
  speedupOverVanilla: number;
  recordOverVanilla4k: number;
  /**
   * Concurrent cold starts: medians per mode, prefetch's speedup over vanilla and vanilla-4k, and
   * the floor's over vanilla (the most any memory policy could gain at this level).
   */
  concurrency:
    | { level: number; modes: Record<ReapConcurrentMode, Summary>; speedup: number; speedupOverVanilla4k: number; floorOverVanilla: number }
    | undefined;
}

export interface ReapReport {
  accel: string;
  reps: number;
  functions: FunctionReport[];
  rows: ColdStartRow[];
}

export interface ReapOptions {
  reps: number;
  /** Concurrent cold starts to compare (0: skip). */
  concurrency: number;
  /** How long one invocation may take (default 30 s). */
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  onRun?: (what: string) => void;
}

function figures(rows: ColdStartRow[], floorMedian: number): ModeFigures {
  const totals = rows.map((row) => row.result.totalMs);
  const med = (pick: (row: ColdStartRow) => number) => median(rows.map(pick));
  return {
    totalMs: summarize(totals),
    stallMs: median(totals) - floorMedian,
    faults: med((row) => row.result.faults),
    majorFaults: med((row) => row.result.majorFaults),
    bytesRead: med((row) => row.result.bytesRead),
    fetchWsMs: med((row) => row.result.fetchWsMs),
    installWsMs: med((row) => row.result.installWsMs),
  };
}

export async function benchReapFunction(host: Host, image: StoredImage, options: ReapOptions): Promise<{ report: FunctionReport; rows: ColdStartRow[] }> {
  const snapshot = await usableSnapshot(host, image, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  // REAP_MODES puts record before prefetch, so each rep's prefetch uses the working set its
  // record wrote (and the concurrent rounds, the last one).
  const rows: ColdStartRow[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const mode of REAP_MODES) {
      options.onRun?.(`${image.name} ${mode} ${rep}/${options.reps}`);
      rows.push(await coldStart(host, image, snapshot, mode, rep, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs }));
    }
  }
  let concurrency: FunctionReport["concurrency"];
  if (options.concurrency > 1) {
    const levelRows = Object.fromEntries(REAP_CONCURRENT_MODES.map((mode) => [mode, [] as ColdStartRow[]])) as Record<ReapConcurrentMode, ColdStartRow[]>;
    for (let rep = 1; rep <= options.reps; rep++) {
      for (const mode of REAP_CONCURRENT_MODES) {
        options.onRun?.(`${image.name} ${options.concurrency}x ${mode} ${rep}/${options.reps}`);
        levelRows[mode].push(...(await concurrentColdStarts(host, image, snapshot, mode, options.concurrency, rep, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs })));
      }
    }
    for (const mode of REAP_CONCURRENT_MODES) rows.push(...levelRows[mode]);
    const modes = Object.fromEntries(REAP_CONCURRENT_MODES.map((mode) => [mode, summarize(levelRows[mode].map((row) => row.result.totalMs))])) as Record<ReapConcurrentMode, Summary>;
    concurrency = {
      level: options.concurrency,
      modes,
      speedup: modes.vanilla.median / modes.prefetch.median,
      speedupOverVanilla4k: modes["vanilla-4k"].median / modes.prefetch.median,
      floorOverVanilla: modes.vanilla.median / modes.floor.median,
    };
  }
  const single = rows.filter((row) => row.concurrency === 1);
  const byMode = (mode: ReapMode) => single.filter((row) => row.mode === mode);
  const floorMedian = median(byMode("floor").map((row) => row.result.totalMs));
  const modes = Object.fromEntries(REAP_MODES.map((mode) => [mode, figures(byMode(mode), floorMedian)])) as Record<ReapMode, ModeFigures>;
  const prefetchRows = byMode("prefetch");
  return {
    rows,
    report: {
      function: image.name,
      snapshotId: snapshot.meta.id,
      wsPages: median(prefetchRows.map((row) => row.result.wsPages)),
      wsBytes: median(prefetchRows.map((row) => row.result.wsBytes)),
      modes,
      stallRemoved: 1 - modes.prefetch.stallMs / modes["vanilla-4k"].stallMs,
      prefetchOverFloor: modes.prefetch.totalMs.median / floorMedian,
      speedupOverVanilla4k: modes["vanilla-4k"].totalMs.median / modes.prefetch.totalMs.median,
      speedupOverVanilla: modes.vanilla.totalMs.median / modes.prefetch.totalMs.median,
      recordOverVanilla4k: modes.record.totalMs.median / modes["vanilla-4k"].totalMs.median,
      concurrency,
    },
  };
}

export async function benchReap(host: Host, images: StoredImage[], options: ReapOptions): Promise<ReapReport> {
  const functions: FunctionReport[] = [];
  const rows: ColdStartRow[] = [];
  for (const image of images) {
    const { report, rows: functionRows } = await benchReapFunction(host, image, options);
    functions.push(report);
    rows.push(...functionRows);
  }
  return { accel: host.accel, reps: options.reps, functions, rows };
}
