/** Experiments: cold-start comparisons that print the figures the paper reports. */
export { benchBootVsRestore, type BootVsRestoreReport, type BootVsRestoreOptions } from "./boot-vs-restore.js";
export { median, percentile, percentileOfSorted, summarize, medianOfFields, type Summary } from "./stats.js";
export { benchReap, benchReapFunction, REAP_MODES, type ReapReport, type FunctionReport, type ModeFigures, type ReapOptions } from "./reap.js";
export { coldStart, concurrentColdStarts, type ColdStartRow } from "./coldstart.js";
export { benchColdStarts, benchConcurrency, orderModes, parseLevels, parseConcurrentModes, ensureWorkingSet, CONCURRENT_MODES, type ColdStartBenchReport, type ConcurrencyBenchReport, type ConcurrentMode, type ProgressListener } from "./experiments.js";
export { benchReuse, pageOverlap, countNonZeroPages, reuseInputs, type ReuseReport, type ReuseFunctionResult, type PageOverlap } from "./reuse.js";
export { BENCH_MODES, PREFETCH_VARIANTS, isPrefetchMode, isRestoreMode, restoreOptionsOf, summarizeRows, findSummary, type BenchMode, type BenchRow, type ModeSummary, type PrefetchVariant, type RestoreBenchMode } from "./rows.js";
export { wsDiskFigures, type WsDiskFigures } from "./ws-disk.js";
export { runLoad, addressTarget, summarizeLoad, describeErrors, arrivalTimes, seededRandom, ARRIVALS, type Arrival, type LoadShape, type LoadReply, type LoadReport, type LoadRow, type LoadTarget, type LoadSummary, type LatencyFigures } from "./load.js";
export { writeResults, buildReport, loadBundle, defaultOutDir, describeLoadShape, describeAuto, fmtMs, fmtPct, REPORT_FILE, type ExperimentReport, type ResultsBundle, type WrittenResults } from "./report.js";
export { PAPER_FUNCTIONS, PAPER_CONCURRENCY, PAPER_FACTS, paperFunction, paperLatencyMs } from "./paper.js";
export { renderSvg } from "./charts.js";
export { bootstrapIntervals, ratioOfMedians, relativeHalfWidth, roundsOf, type Interval, type Round, type Statistic } from "./bootstrap.js";
export { checksCost, type ChecksCost } from "./checks-cost.js";
export { benchRatios, ratioPairs, ratioFigures, tooWide, formatRatio, formatBounds, formatHalfWidth, formatRatioWithInterval, type RatioFigure, type RatioPair } from "./ratios.js";
export { parseReps, assertSomethingToNarrow, runSeries, stopReason, describeWide, TimeBudget, DEFAULT_TARGET_SHARE, MIN_AUTO_ROUNDS, type AutoReps, type AutoRepsRecord, type RepsPlan, type RoundStatus, type RoundListener, type SeriesOutcome, type StopReason } from "./auto-reps.js";
export { benchDensity, summarizeDensity, parseDensityModes, checkInstances, headroomBytes, DENSITY_MODES, type DensityMode, type DensityReport, type DensityRow, type DensityModeResult, type DensitySummary, type DensityOptions } from "./density.js";
