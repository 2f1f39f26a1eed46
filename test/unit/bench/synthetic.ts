/** Synthetic bench rows and reports, shaped like real ones, for tests that need no VM. */
import type { ColdStartBenchReport, ConcurrencyBenchReport } from "../../../src/bench/experiments.js";
import type { ReuseReport } from "../../../src/bench/reuse.js";
import type { BenchMode, BenchRow } from "../../../src/bench/rows.js";

const BASE_MS: Record<BenchMode, number> = {
  warm: 2,
  boot: 7000,
  vanilla: 420,
  "vanilla-4k": 900,
  lazy: 950,
  record: 1100,
  prefetch: 380,
  "prefetch-raw": 385,
  "prefetch-lz4": 380,
  "prefetch-zstd": 390,
  "prefetch-direct": 381,
  "prefetch-cached": 380,
  "prefetch-unseeded": 377,
  "prefetch-unchecked": 375,
  floor: 350,
  pool: 330,
  "pool-installed": 300,
};
/** The modes the paper has (no lazy, no prefetch variants). */
export const CLASSIC_MODES = ["warm", "boot", "vanilla", "vanilla-4k", "record", "prefetch", "floor"] as const satisfies readonly BenchMode[];
/** The working set on disk per encoding, as a share of its pages' bytes. */
const DISK_SHARE: Partial<Record<BenchMode, number>> = { prefetch: 0.4, "prefetch-raw": 0.93, "prefetch-lz4": 0.4, "prefetch-zstd": 0.36, "prefetch-direct": 0.4, "prefetch-cached": 0.4, record: 0.4, pool: 0.4, "pool-installed": 0.4 };

export function syntheticRow(fn: string, mode: BenchMode, rep: number, concurrency = 1): BenchRow {
  const totalMs = BASE_MS[mode] * (fn === "json_serdes" ? 2 : 1) * concurrency + rep;
  const restore = mode !== "warm" && mode !== "boot";
  const pooled = mode === "pool" || mode === "pool-installed";
  const breakdown: Record<string, number> =
    mode === "warm"
      ? { invokeMs: totalMs }
      : mode === "boot"
        ? { qemuStartMs: 40, kernelBootMs: 2400, initMs: 500, functionReadyMs: totalMs - 3000, invokeMs: 60 }
        : { loadVmmMs: pooled ? 0 : 44, restoreMs: 11, memoryWaitMs: mode === "prefetch" || mode === "pool" ? 20 : 0, resumeMs: 1, connectMs: totalMs - 150, functionMs: 74 };
  const prefetches = mode.startsWith("prefetch") || pooled;
  const ws = prefetches || mode === "record" || mode === "floor";
  const disk = DISK_SHARE[mode];
  return {
    function: fn,
    mode,
    rep,
    concurrency,
    accel: "tcg",
    totalMs,
    breakdown,
    faults: restore ? (mode === "prefetch" ? 30 : 2000) : null,
    majorFaults: restore ? 22 : null,
    bytesRead: restore ? 114 * 1024 * 1024 : null,
    wsPages: restore ? (ws ? 4000 : 0) : null,
    wsBytes: restore ? (ws ? 4000 * 4096 : 0) : null,
    wsDiskBytes: disk === undefined ? null : Math.round(4000 * 4096 * disk),
    wsCodec: disk === undefined ? null : mode === "prefetch-raw" ? "raw" : mode === "prefetch-zstd" ? "zstd" : "lz4",
    wsRead: !prefetches ? null : mode === "prefetch-direct" ? "direct" : "cached",
    // Pagers reading through the page cache share one read of the working set among the round's starts;
    // a pool-installed VMM read its working set before the cold start.
    pagerBytesRead: restore && !mode.startsWith("vanilla") ? (mode === "pool-installed" ? 0 : Math.round((4000 * 4096 * (disk ?? 1)) / (mode === "prefetch-cached" ? concurrency : 1))) : null,
    fetchWsMs: restore ? (prefetches ? 15 : 0) : null,
    installWsMs: restore ? (prefetches ? 5 : 0) : null,
    verifyMs: restore && mode !== "prefetch-unchecked" && !mode.startsWith("vanilla") ? 2 : null,
    // QEMU ran for all but 50 ms of each start (so the spread is all its own) and waited a fixed 12 ms.
    qemuCpuMs: restore ? totalMs - 50 : null,
    qemuWaitMs: restore ? 12 : null,
    poolIdlePssBytes: pooled ? (mode === "pool" ? 21 : 38) * 1024 * 1024 : null,
    poolIdlePrivateBytes: pooled ? (mode === "pool" ? 17 : 34) * 1024 * 1024 : null,
    reply: `Hello, ${fn}, rep ${rep}!`,
  };
}

export function syntheticColdStart(functions = ["helloworld", "json_serdes"], modes: readonly BenchMode[] = CLASSIC_MODES, reps = 3): ColdStartBenchReport {
  return {
    experiment: "coldstart",
    accel: "tcg",
    startedAt: "2026-11-26T23:00:00.000Z",
    reps,
    modes: [...modes],
    functions: functions.map((fn) => ({ function: fn, imageId: `${fn}-image`, snapshotId: `${fn}-snap`, input: "world" })),
    rows: functions.flatMap((fn) => Array.from({ length: reps }, (_, i) => modes.map((mode) => syntheticRow(fn, mode, i + 1))).flat()),
  };
}

export function syntheticConcurrency(levels = [1, 2, 4]): ConcurrencyBenchReport {
  const modes = ["vanilla", "prefetch"] as const;
  return {
    experiment: "concurrency",
    accel: "tcg",
    startedAt: "2026-11-26T23:00:00.000Z",
    function: "helloworld",
    snapshotId: "helloworld-snap",
    levels,
    modes: [...modes],
    reps: 1,
    rows: levels.flatMap((level) => modes.flatMap((mode) => Array.from({ length: level }, () => syntheticRow("helloworld", mode, 1, level)))),
  };
}

export function syntheticReuse(): ReuseReport {
  const overlap = (a: number, b: number, common: number) => ({ aPages: a, bPages: b, commonPages: common, shareOfA: common / a, shareOfB: common / b });
  return {
    experiment: "reuse",
    accel: "tcg",
    startedAt: "2026-11-26T23:00:00.000Z",
    functions: [
      {
        function: "json_serdes",
        snapshotId: "json_serdes-snap",
        inputs: { a: "A", b: "B" },
        pageSizeBytes: 4096,
        recordings: [],
        aVsB: overlap(5000, 5100, 4900),
        aVsA2: overlap(5000, 5010, 4990),
        touchedPages: 40000,
        memPages: 65536,
        wsShareOfTouched: 5000 / 40000,
      },
    ],
    skipped: [{ function: "pyaes", reason: "its recipe declares one input" }],
  };
}
