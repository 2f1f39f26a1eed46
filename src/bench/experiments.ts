/**
 * The cold-start and concurrency experiments behind `vhive bench coldstart` and `vhive bench
 * concurrency`: rows of BenchRow, one per start.
 *
 * coldstart: for each function, `warm` first (one booted instance, one warm-up call, then N
 * timed calls), then N reps of every other mode, interleaved rep by rep so machine noise hits
 * all modes alike. Each restore evicts the snapshot's, working set's and image's files from the
 * page cache (coldStart); each boot evicts the image, kernel and initramfs.
 *
 * concurrency: for each level, N reps of `level` cold starts at once per mode, after one
 * eviction (concurrentColdStarts).
 *
 * prefetch, pool and pool-installed need a working set recorded with the request data the bench
 * sends; one is recorded (untimed) first unless the snapshot has one for that data, or `record`
 * runs before them. pool and pool-installed pre-start their VMM (untimed) just before the cold
 * start that takes it, and the page cache is evicted after it is ready (restoreOnce).
 *
 * Rounds: a fixed number, or `--reps auto` (auto-reps.ts): rounds are added to each series (a
 * function for coldstart, a level for concurrency) until every ratio it prints is within +-5%
 * at 95% confidence, or its share of the time cap is used up.
 */
import type { StoredImage } from "../image/index.js";
import { addEncoding, loadWorkingSet, pickEncoding } from "../memory/index.js";
import { roundMs } from "../metrics/index.js";
import { bootInstance, defaultRequestData, restoreOnce, runOnce, type Host, usableSnapshot } from "../start/index.js";
import { isPoolMode } from "../start/instance.js";
import { VhiveError } from "../shared/errors.js";
import { evictFromPageCache, type StoredSnapshot } from "../snapshot/index.js";
import { assertSomethingToNarrow, runSeries, TimeBudget, type AutoRepsRecord, type RepsPlan, type RoundListener, type SeriesOutcome } from "./auto-reps.js";
import { coldStart, concurrentColdStarts } from "./coldstart.js";
import { benchRatios, ratioPairs } from "./ratios.js";
import { BENCH_MODES, bootRow, isPrefetchMode, isRestoreMode, PREFETCH_VARIANTS, restoreOptionsOf, restoreRow, warmRow, type BenchMode, type BenchRow, type PrefetchVariant, type RestoreBenchMode } from "./rows.js";

export type ProgressListener = (done: number, total: number, what: string) => void;

export interface ColdStartBenchOptions {
  modes: readonly BenchMode[];
  /** Rounds per function (warm: timed calls; with auto, its minimum). */
  reps: RepsPlan;
  /** How long one invocation may take (default 30 s). */
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  /** After each round of --reps auto: the function's ratios and which are still too wide. */
  onRound?: RoundListener;
}

export interface BenchFunctionInfo {
  function: string;
  imageId: string;
  /** Undefined when only warm and boot ran. */
  snapshotId?: string;
  /** The request data every start sent. */
  input: string;
}

export interface ColdStartBenchReport {
  experiment: "coldstart";
  accel: string;
  startedAt: string;
  /** Rounds per function (with --reps auto: the most any function ran; see `auto`). */
  reps: number;
  /** With --reps auto: its settings and how each function's rounds ended. */
  auto?: AutoRepsRecord;
  modes: BenchMode[];
  functions: BenchFunctionInfo[];
  rows: BenchRow[];
}


/** Modes in canonical order (warm, boot, vanilla, ..., record before prefetch), once each. */
export function orderModes(modes: readonly string[]): BenchMode[] {
  const unknown = modes.filter((mode) => !(BENCH_MODES as readonly string[]).includes(mode));
  if (unknown.length > 0) {
    throw new VhiveError("ERR_VALIDATION", `unknown mode ${unknown.join(", ")}`, { remedy: `choose from ${BENCH_MODES.join(", ")}` });
  }
  if (modes.length === 0) throw new VhiveError("ERR_VALIDATION", "no mode to run", { remedy: `choose from ${BENCH_MODES.join(", ")}` });
  return BENCH_MODES.filter((mode) => modes.includes(mode));
}

/**
 * Record a working set (untimed) unless the snapshot has one for this request data, and store
 * it in every encoding the prefetch modes among `modes` read (packed from its trace).
 */
export async function ensureWorkingSet(host: Host, snapshot: StoredSnapshot, input: string, modes: readonly BenchMode[], signal?: AbortSignal, invokeTimeoutMs?: number): Promise<void> {
  let workingSet = await loadWorkingSet(snapshot);
  if (workingSet?.meta.input !== input) {
    await restoreOnce(host, snapshot, input, { mode: "record", signal, invokeTimeoutMs });
    workingSet = await loadWorkingSet(snapshot);
  }
  for (const mode of modes.filter(isPrefetchMode)) {
    const { wsCodec } = restoreOptionsOf(mode as RestoreBenchMode);
    if (workingSet && !pickEncoding(workingSet, wsCodec)) workingSet = await addEncoding(snapshot, workingSet, wsCodec!);
  }
}

/** Modes that prefetch a recorded working set: prefetch and its variants, and the pooled VMMs'. */
const prefetches = (mode: BenchMode): boolean => isPrefetchMode(mode) || isPoolMode(mode);

const minRounds = (plan: RepsPlan): number => (typeof plan === "number" ? plan : plan.minRounds);

/** The most rounds any series ran, and with auto, the record of how each ended. */
function roundsRecord(plan: RepsPlan, outcomes: readonly SeriesOutcome[]): { reps: number; auto?: AutoRepsRecord } {
  const reps = Math.max(minRounds(plan), ...outcomes.map((outcome) => outcome.rounds));
  return typeof plan === "number" ? { reps } : { reps, auto: { ...plan, outcomes: [...outcomes] } };
}

async function warmRows(host: Host, image: StoredImage, input: string, reps: number, options: ColdStartBenchOptions, step: (what: string) => void): Promise<BenchRow[]> {
  await using instance = await bootInstance(host, image, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  await instance.invoke(input, { signal: options.signal }); // the warm-up: a memory-resident function from here on
  const rows: BenchRow[] = [];
  for (let rep = 1; rep <= reps; rep++) {
    const result = await instance.invoke(input, { signal: options.signal });
    rows.push(warmRow(image.name, rep, host.accel, roundMs(result.ms), result.text));
    step(`${image.name} warm ${rep}/${reps}`);
  }
  return rows;
}

export async function benchColdStarts(host: Host, images: readonly StoredImage[], options: ColdStartBenchOptions): Promise<ColdStartBenchReport> {
  const modes = orderModes(options.modes);
  const plan = options.reps;
  const pairs = ratioPairs(modes);
  assertSomethingToNarrow(plan, modes);
  const budget = typeof plan === "number" ? undefined : new TimeBudget(plan.maxTimeMs, images.length);
  const report: ColdStartBenchReport = { experiment: "coldstart", accel: host.accel, startedAt: new Date().toISOString(), reps: minRounds(plan), modes, functions: [], rows: [] };
  const coldModes = modes.filter((mode) => mode !== "warm");
  // With auto the total grows by a round whenever a function needs one more than the minimum.
  let total = images.length * modes.length * minRounds(plan);
  let done = 0;
  const step = (what: string) => options.onProgress?.(++done, total, what);
  const note = (what: string) => options.onProgress?.(done, total, what);
  const outcomes: SeriesOutcome[] = [];
  for (const image of images) {
    const input = defaultRequestData(image);
    const info: BenchFunctionInfo = { function: image.name, imageId: image.id, input };
    report.functions.push(info);
    let snapshot: StoredSnapshot | undefined;
    if (modes.some(isRestoreMode)) {
      note(`${image.name}: snapshot`);
      snapshot = await usableSnapshot(host, image, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
      info.snapshotId = snapshot.meta.id;
    }
    if (modes.includes("warm")) {
      note(`${image.name}: booting the warm instance`);
      report.rows.push(...(await warmRows(host, image, input, minRounds(plan), options, step)));
    }
    // With record among the modes, each round records anew (in the default encoding) before its
    // prefetches, and an encoding a variant reads is packed from it before that start, untimed.
    if (snapshot && modes.some(prefetches) && !modes.includes("record")) {
      note(`${image.name}: recording a working set`);
      await ensureWorkingSet(host, snapshot, input, modes, options.signal, options.invokeTimeoutMs);
    }
    const of = (rep: number) => (typeof plan === "number" ? `${rep}/${plan}` : `round ${rep} (auto)`);
    const runRound = async (rep: number) => {
      if (rep > minRounds(plan)) total += coldModes.length;
      for (const mode of coldModes) {
        note(`${image.name} ${mode} ${of(rep)}`);
        if (mode === "boot") {
          await evictFromPageCache([image.rootfsPath, host.guest.kernel.path, host.guest.initramfs.path]);
          report.rows.push(bootRow(image.name, rep, await runOnce(host, image, input, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs })));
        } else {
          const row = await coldStart(host, image, snapshot!, mode, rep, { data: input, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
          report.rows.push(restoreRow(image.name, mode, rep, 1, row.result));
        }
        step(`${image.name} ${mode} ${of(rep)}`);
      }
    };
    outcomes.push(
      await runSeries({
        series: image.name,
        plan,
        deadline: budget?.nextDeadline(),
        runRound,
        ratios: () => benchRatios(report.rows, image.name, 1, pairs),
        onRound: options.onRound,
      }),
    );
    Object.assign(report, roundsRecord(plan, outcomes));
  }
  return report;
}

/** Modes that can run many at once (record would race to write one working set). */
export const CONCURRENT_MODES = ["vanilla", "vanilla-4k", "lazy", "prefetch", ...(Object.keys(PREFETCH_VARIANTS) as PrefetchVariant[]), "floor"] as const satisfies readonly RestoreBenchMode[];
export type ConcurrentMode = (typeof CONCURRENT_MODES)[number];

export interface ConcurrencyBenchOptions {
  levels: readonly number[];
  modes: readonly ConcurrentMode[];
  /** Rounds per level (with auto: until the level's ratios are precise, or its share of the cap). */
  reps: RepsPlan;
  /** How long one invocation may take (default 30 s). */
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: ProgressListener;
  onRound?: RoundListener;
}

export interface ConcurrencyBenchReport {
  experiment: "concurrency";
  accel: string;
  startedAt: string;
  function: string;
  snapshotId: string;
  levels: number[];
  modes: ConcurrentMode[];
  /** Rounds per level (with --reps auto: the most any level ran; see `auto`). */
  reps: number;
  auto?: AutoRepsRecord;
  rows: BenchRow[];
}

export function parseLevels(text: string): number[] {
  const levels = text.split(",").filter(Boolean).map(Number);
  if (levels.length === 0 || levels.some((level) => !Number.isInteger(level) || level < 1 || level > 64)) {
    throw new VhiveError("ERR_VALIDATION", `concurrency levels must be integers from 1 to 64, got ${JSON.stringify(text)}`, { remedy: "e.g. --levels 1,2,4,8" });
  }
  return [...new Set(levels)].sort((a, b) => a - b);
}

export function parseConcurrentModes(text: string): ConcurrentMode[] {
  const modes = text.split(",").filter(Boolean);
  const bad = modes.filter((mode) => !(CONCURRENT_MODES as readonly string[]).includes(mode));
  if (bad.length > 0 || modes.length === 0) {
    throw new VhiveError("ERR_VALIDATION", `modes for concurrent cold starts: ${bad.join(", ") || "none given"}`, { remedy: `choose from ${CONCURRENT_MODES.join(", ")}` });
  }
  return CONCURRENT_MODES.filter((mode) => modes.includes(mode));
}

export async function benchConcurrency(host: Host, image: StoredImage, options: ConcurrencyBenchOptions): Promise<ConcurrencyBenchReport> {
  const plan = options.reps;
  const pairs = ratioPairs(options.modes);
  assertSomethingToNarrow(plan, options.modes);
  const budget = typeof plan === "number" ? undefined : new TimeBudget(plan.maxTimeMs, options.levels.length);
  const input = defaultRequestData(image);
  const snapshot = await usableSnapshot(host, image, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  if (options.modes.some(isPrefetchMode)) await ensureWorkingSet(host, snapshot, input, options.modes, options.signal, options.invokeTimeoutMs);
  const report: ConcurrencyBenchReport = {
    experiment: "concurrency",
    accel: host.accel,
    startedAt: new Date().toISOString(),
    function: image.name,
    snapshotId: snapshot.meta.id,
    levels: [...options.levels],
    modes: [...options.modes],
    reps: minRounds(plan),
    rows: [],
  };
  let total = options.levels.length * minRounds(plan) * options.modes.length;
  let done = 0;
  const outcomes: SeriesOutcome[] = [];
  for (const level of options.levels) {
    const of = (rep: number) => (typeof plan === "number" ? `${rep}/${plan}` : `round ${rep} (auto)`);
    const runRound = async (rep: number) => {
      if (rep > minRounds(plan)) total += options.modes.length;
      for (const mode of options.modes) {
        options.onProgress?.(done, total, `${image.name} ${level}x ${mode} ${of(rep)}`);
        const rows = await concurrentColdStarts(host, image, snapshot, mode, level, rep, { data: input, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
        report.rows.push(...rows.map((row) => restoreRow(image.name, mode, rep, level, row.result)));
        options.onProgress?.(++done, total, `${image.name} ${level}x ${mode} ${of(rep)}`);
      }
    };
    outcomes.push(
      await runSeries({
        series: `${level} at once`,
        plan,
        deadline: budget?.nextDeadline(),
        runRound,
        ratios: () => benchRatios(report.rows, image.name, level, pairs),
        onRound: options.onRound,
      }),
    );
    Object.assign(report, roundsRecord(plan, outcomes));
  }
  return report;
}
