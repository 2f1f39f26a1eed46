/**
 * The REAP experiment: for each function, cold starts in the modes vanilla, vanilla-4k, record,
 * prefetch and floor, interleaved rep by rep so machine noise hits all alike, and concurrent
 * cold starts (prefetch against vanilla). Under TCG an empty translation cache after a restore
 * costs more than memory does, so the memory part of a mode is judged against the floor: its
 * stall is its time to first response minus the floor's.
 *
 * Every ratio (and the share of the stall removed) carries a 95% confidence interval, by
 * bootstrap over the interleaved rounds (bootstrap.ts). With `--reps auto` the rounds alone and
 * the concurrent rounds are two series per function, each run until its ratios are within
 * +-5% or its share of the time cap is used up (auto-reps.ts).
 */
import type { StoredImage } from "../image/index.js";
import { type Host, type MemoryMode, usableSnapshot } from "../start/index.js";
import { runSeries, TimeBudget, type AutoRepsRecord, type RepsPlan, type RoundListener, type SeriesOutcome } from "./auto-reps.js";
import { bootstrapIntervals, roundsOf, type Interval, type Round } from "./bootstrap.js";
import { coldStart, concurrentColdStarts, type ColdStartRow } from "./coldstart.js";
import { ratioFigures, type RatioFigure, type RatioPair } from "./ratios.js";
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
  /** Rounds alone that ran (each: one start of every mode). */
  rounds: number;
  /** 95% intervals of the figures above, over those rounds. */
  intervals: Record<"stallRemoved" | "prefetchOverFloor" | "speedupOverVanilla4k" | "speedupOverVanilla" | "recordOverVanilla4k", Interval>;
  /**
   * Concurrent cold starts: medians per mode, prefetch's speedup over vanilla and vanilla-4k, and
   * the floor's over vanilla (the most any memory policy could gain at this level).
   */
  concurrency:
    | {
        level: number;
        modes: Record<ReapConcurrentMode, Summary>;
        speedup: number;
        speedupOverVanilla4k: number;
        floorOverVanilla: number;
        rounds: number;
        intervals: Record<"speedup" | "speedupOverVanilla4k" | "floorOverVanilla", Interval>;
      }
    | undefined;
}

export interface ReapReport {
  accel: string;
  /** Rounds per function (with --reps auto: the most any series ran; see `auto`). */
  reps: number;
  auto?: AutoRepsRecord;
  functions: FunctionReport[];
  rows: ColdStartRow[];
}

export interface ReapOptions {
  reps: RepsPlan;
  /** Concurrent cold starts to compare (0: skip). */
  concurrency: number;
  /** How long one invocation may take (default 30 s). */
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  onRun?: (what: string) => void;
  /** After each round of --reps auto. */
  onRound?: RoundListener;
}

/** The ratios of the rounds alone, by the FunctionReport field they fill. */
const SINGLE_PAIRS = {
  speedupOverVanilla: { numerator: "vanilla", denominator: "prefetch" },
  speedupOverVanilla4k: { numerator: "vanilla-4k", denominator: "prefetch" },
  prefetchOverFloor: { numerator: "prefetch", denominator: "floor" },
  recordOverVanilla4k: { numerator: "record", denominator: "vanilla-4k" },
} as const satisfies Record<string, RatioPair>;
/** The ratios of the concurrent rounds, by the field they fill. */
const CONCURRENT_PAIRS = {
  speedup: { numerator: "vanilla", denominator: "prefetch" },
  speedupOverVanilla4k: { numerator: "vanilla-4k", denominator: "prefetch" },
  floorOverVanilla: { numerator: "vanilla", denominator: "floor" },
} as const satisfies Record<string, RatioPair>;

function roundsOfRows(rows: readonly ColdStartRow[], concurrency: number): Round[] {
  return roundsOf(rows.filter((row) => row.concurrency === concurrency).map((row) => ({ mode: row.mode, rep: row.rep, ms: row.result.totalMs })));
}

/** Ratios with intervals, by name. */
function namedRatios<K extends string>(rounds: readonly Round[], pairs: Record<K, RatioPair>): Record<K, RatioFigure> {
  const keys = Object.keys(pairs) as K[];
  const figures = ratioFigures(rounds, keys.map((key) => pairs[key]));
  return Object.fromEntries(keys.map((key, i) => [key, figures[i]!])) as Record<K, RatioFigure>;
}

const intervalOf = ({ estimate, low, high, rounds }: Interval): Interval => ({ estimate, low, high, rounds });

function singleIntervals(rows: readonly ColdStartRow[]): FunctionReport["intervals"] {
  const rounds = roundsOfRows(rows, 1);
  const ratios = namedRatios(rounds, SINGLE_PAIRS);
  const { stallRemoved } = bootstrapIntervals(rounds, { stallRemoved: (m) => 1 - (m("prefetch") - m("floor")) / (m("vanilla-4k") - m("floor")) });
  return {
    stallRemoved,
    prefetchOverFloor: intervalOf(ratios.prefetchOverFloor),
    speedupOverVanilla4k: intervalOf(ratios.speedupOverVanilla4k),
    speedupOverVanilla: intervalOf(ratios.speedupOverVanilla),
    recordOverVanilla4k: intervalOf(ratios.recordOverVanilla4k),
  };
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

export async function benchReapFunction(
  host: Host,
  image: StoredImage,
  options: ReapOptions,
  budget?: TimeBudget,
): Promise<{ report: FunctionReport; rows: ColdStartRow[]; outcomes: SeriesOutcome[] }> {
  const snapshot = await usableSnapshot(host, image, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  const of = (rep: number) => (typeof options.reps === "number" ? `${rep}/${options.reps}` : `round ${rep} (auto)`);
  // REAP_MODES puts record before prefetch, so each rep's prefetch uses the working set its
  // record wrote (and the concurrent rounds, the last one).
  const rows: ColdStartRow[] = [];
  const outcomes: SeriesOutcome[] = [];
  outcomes.push(
    await runSeries({
      series: image.name,
      plan: options.reps,
      deadline: budget?.nextDeadline(),
      runRound: async (rep) => {
        for (const mode of REAP_MODES) {
          options.onRun?.(`${image.name} ${mode} ${of(rep)}`);
          rows.push(await coldStart(host, image, snapshot, mode, rep, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs }));
        }
      },
      ratios: () => Object.values(namedRatios(roundsOfRows(rows, 1), SINGLE_PAIRS)),
      onRound: options.onRound,
    }),
  );
  let concurrency: FunctionReport["concurrency"];
  if (options.concurrency > 1) {
    const level = options.concurrency;
    const levelRows: ColdStartRow[] = [];
    const outcome = await runSeries({
      series: `${image.name} ${level}x`,
      plan: options.reps,
      deadline: budget?.nextDeadline(),
      runRound: async (rep) => {
        for (const mode of REAP_CONCURRENT_MODES) {
          options.onRun?.(`${image.name} ${level}x ${mode} ${of(rep)}`);
          levelRows.push(...(await concurrentColdStarts(host, image, snapshot, mode, level, rep, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs })));
        }
      },
      ratios: () => Object.values(namedRatios(roundsOfRows(levelRows, level), CONCURRENT_PAIRS)),
      onRound: options.onRound,
    });
    outcomes.push(outcome);
    // Rows by mode, as before: every vanilla start, then every vanilla-4k start, ...
    for (const mode of REAP_CONCURRENT_MODES) rows.push(...levelRows.filter((row) => row.mode === mode));
    const modes = Object.fromEntries(REAP_CONCURRENT_MODES.map((mode) => [mode, summarize(levelRows.filter((row) => row.mode === mode).map((row) => row.result.totalMs))])) as Record<ReapConcurrentMode, Summary>;
    const ratios = namedRatios(roundsOfRows(levelRows, level), CONCURRENT_PAIRS);
    concurrency = {
      level,
      modes,
      speedup: modes.vanilla.median / modes.prefetch.median,
      speedupOverVanilla4k: modes["vanilla-4k"].median / modes.prefetch.median,
      floorOverVanilla: modes.vanilla.median / modes.floor.median,
      rounds: outcome.rounds,
      intervals: { speedup: intervalOf(ratios.speedup), speedupOverVanilla4k: intervalOf(ratios.speedupOverVanilla4k), floorOverVanilla: intervalOf(ratios.floorOverVanilla) },
    };
  }
  const single = rows.filter((row) => row.concurrency === 1);
  const byMode = (mode: ReapMode) => single.filter((row) => row.mode === mode);
  const floorMedian = median(byMode("floor").map((row) => row.result.totalMs));
  const modes = Object.fromEntries(REAP_MODES.map((mode) => [mode, figures(byMode(mode), floorMedian)])) as Record<ReapMode, ModeFigures>;
  const prefetchRows = byMode("prefetch");
  return {
    rows,
    outcomes,
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
      rounds: outcomes[0]!.rounds,
      intervals: singleIntervals(rows),
      concurrency,
    },
  };
}

export async function benchReap(host: Host, images: StoredImage[], options: ReapOptions): Promise<ReapReport> {
  const plan = options.reps;
  const budget = typeof plan === "number" ? undefined : new TimeBudget(plan.maxTimeMs, images.length * (options.concurrency > 1 ? 2 : 1));
  const functions: FunctionReport[] = [];
  const rows: ColdStartRow[] = [];
  const outcomes: SeriesOutcome[] = [];
  for (const image of images) {
    const result = await benchReapFunction(host, image, options, budget);
    functions.push(result.report);
    rows.push(...result.rows);
    outcomes.push(...result.outcomes);
  }
  const reps = Math.max(typeof plan === "number" ? plan : plan.minRounds, ...outcomes.map((outcome) => outcome.rounds));
  return { accel: host.accel, reps, ...(typeof plan === "number" ? {} : { auto: { ...plan, outcomes } }), functions, rows };
}
