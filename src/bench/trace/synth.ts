/**
 * A synthetic day in the format of the Azure Functions Trace 2019, for researchers without the
 * dataset (and for vhive's own README run and tests): functions drawn from distributions
 * modelled on the characterisation in Shahrad et al., "Serverless in the Wild" (USENIX ATC'20),
 * written as the three published CSV files of one day (write.ts), so `vhive bench trace` reads
 * them exactly as it reads the real ones.
 *
 * IT IS NOT THE REAL TRACE. No row comes from Azure: a result measured on it says how vhive
 * behaves on a workload of that shape, not what the real trace would show.
 *
 * The figures cited are the paper's, as the dataset's notebook redraws them from the released
 * trace (AzurePublicDataset, analysis/AzureFunctionsDataset2019-Trace_Analysis.md); points
 * "read off" a curve are vhive's reading of it, good to a few percent.
 *
 *   apps        functions per application from Figure 1 (54% of apps have one, 95% at most
 *               10, a few hundreds). An app has a new owner with probability 0.7, else the
 *               previous app's (the paper gives no figure for owners: vhive's assumption).
 *   triggers    per function, Figure 2's shares of functions: http 55.0%, timer 15.6%, queue
 *               15.2%, orchestration 6.9%, storage 2.8%, event 2.2%, others 2.2%.
 *   daily rate  invocations per day, from Figure 5(a)'s CDF for functions, log-linear between
 *               points read off it: 30% below once a day, 64% at most once an hour, 92% at
 *               most once a minute, the busiest near 10^8 a day (the paper: 8 orders of
 *               magnitude; 45% of apps at most once an hour, 81% at most once a minute). The
 *               curve's steps at once a day, every 5 minutes and every minute are timers'.
 *   arrivals    timers fire periodically at the timer period nearest their rate (5 s to 1 day,
 *               a random phase): an inter-arrival CV of 0, as most timer-only apps in Figure 6.
 *               Other triggers are bursty (three in five: in Figure 6 about 60% of apps without
 *               timers have a CV above 1, a Poisson process's) or Poisson per minute. Bursty is
 *               on/off by the minute: bursts of 2 to 50 invocations (mean) over 1 to 10 minutes
 *               (mean), silence between, the mean rate the function's.
 *   durations   each function's mean execution time log-normal across functions, median 1 s
 *               and sigma 2.2 (of ln), fitted to Figure 7's quartiles of the average (~0.27 s,
 *               ~5 s); within a function log-normal with sigma 0.3 to 1, its percentiles,
 *               minimum and maximum those of up to 1000 simulated executions (the real files'
 *               are of 30-second averages, a little narrower for busy functions).
 *   memory      each app's mean allocated memory from Figure 8's CDF, log-linear between points
 *               read off it (median ~145 MB, 90% below ~250 MB); its percentiles those of up
 *               to 1000 per-minute averages, normal around the mean with a CV of 5 to 15%.
 *
 * Not modelled: the diurnal and weekly swing (Figure 4), correlations among an app's functions
 * or between rate, duration and memory, and anything across days.
 *
 * Like the real files, a row is written only for a function invoked in the period (the day, or
 * its first `minutes`); `functions` counts those rows. Seeded: each app and each function draws
 * from streams of its own (partSeed), so the same options give the same files, byte for byte.
 */
import { createHash } from "node:crypto";
import { z } from "zod";
import { VhiveError } from "../../shared/errors.js";
import { logUniformDraw, normalDraw, partSeed, poissonDraw, seededRandom, weightedDraw, type Random } from "../random.js";
import { percentileOfSorted } from "../stats.js";
import { DURATION_PERCENTILES, MEMORY_PERCENTILES, MINUTES_PER_DAY } from "./azure.js";
import type { TraceFileFunction } from "./write.js";

export const SynthOptionsSchema = z
  .object({
    functions: z.number().int().min(1).max(100_000),
    day: z.number().int().min(1).max(14),
    seed: z.number().int().min(0).max(2 ** 32 - 1),
    minutes: z.number().int().min(1).max(MINUTES_PER_DAY),
  })
  .strict();
export type SynthOptions = z.infer<typeof SynthOptionsSchema>;

/** The options as the command line gave them, or ERR_VALIDATION naming the option. */
export function parseSynthOptions(input: unknown): SynthOptions {
  const parsed = SynthOptionsSchema.safeParse(input);
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.length > 0 ? `--${issue.path.join(".")}` : "options"}: ${issue.message}`);
  throw new VhiveError("ERR_VALIDATION", problems.join("; "), { remedy: "vhive bench trace-synth --help lists the options and their ranges" });
}

export type ArrivalPattern = "timer" | "poisson" | "bursty";

export interface SyntheticFunction extends TraceFileFunction {
  pattern: ArrivalPattern;
  /** The mean invocations per day it was drawn with (the day's count is a draw around it). */
  dailyRate: number;
}

/** Figure 1: [functions, share of apps with at most that many]. */
const FUNCTIONS_PER_APP: readonly (readonly [number, number])[] = [
  [1, 0.54],
  [2, 0.71],
  [3, 0.8],
  [4, 0.85],
  [5, 0.88],
  [6, 0.905],
  [8, 0.935],
  [10, 0.95],
  [20, 0.985],
  [50, 0.997],
  [300, 1],
];

/** Figure 2: shares of functions per trigger group (ATC). */
const TRIGGERS: readonly (readonly [string, number])[] = [
  ["http", 55.0],
  ["timer", 15.6],
  ["queue", 15.2],
  ["orchestration", 6.9],
  ["storage", 2.8],
  ["event", 2.2],
  ["others", 2.2],
];

/** Figure 5(a), functions: [CDF, log10 of average daily invocations], through the timers' steps. */
const DAILY_RATE_LOG10: readonly (readonly [number, number])[] = [
  [0, Math.log10(1 / 14)],
  [0.3, 0],
  [0.57, 1],
  [0.64, Math.log10(24)],
  [0.73, Math.log10(96)],
  [0.81, Math.log10(288)],
  [0.915, Math.log10(1440)],
  [0.965, 4],
  [0.99, Math.log10(86_400)],
  [0.997, 6],
  [0.999, 7],
  [1, 8],
];

/** Figure 8, average allocated memory per app: [CDF, log10 MB]. */
const APP_MEMORY_LOG10: readonly (readonly [number, number])[] = [
  [0, Math.log10(40)],
  [0.03, Math.log10(90)],
  [0.1, Math.log10(105)],
  [0.25, Math.log10(120)],
  [0.5, Math.log10(145)],
  [0.75, Math.log10(185)],
  [0.9, Math.log10(250)],
  [0.95, Math.log10(340)],
  [0.99, Math.log10(800)],
  [1, Math.log10(2000)],
];

/** Timer periods a function may have, seconds. */
const TIMER_PERIODS_S = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400];
const SECONDS_PER_DAY = 86_400;
const BURSTY_SHARE = 0.6;
const NEW_OWNER_SHARE = 0.7;
const DURATION_MEDIAN_MS = 1000;
const DURATION_SIGMA = 2.2;
const SIMULATED_SAMPLES = 1000;

/** The value at quantile u of a curve given as ascending [CDF, value] points, linear between them. */
function fromCdf(points: readonly (readonly [number, number])[], u: number): number {
  for (let k = 1; k < points.length; k++) {
    const [f1, v1] = points[k]!;
    const [f0, v0] = points[k - 1]!;
    if (u <= f1) return f1 === f0 ? v1 : v0 + ((v1 - v0) * (u - f0)) / (f1 - f0);
  }
  return points[points.length - 1]![1];
}

function functionsPerApp(random: Random): number {
  const u = random();
  let previous = 0;
  for (const [size, share] of FUNCTIONS_PER_APP) {
    // Between two listed sizes, every size in between is as likely.
    if (u <= share) return previous + 1 + Math.floor(random() * (size - previous));
    previous = size;
  }
  return previous;
}

/** Per-minute counts of a whole day, for a function of `dailyRate` invocations a day. */
function dayCounts(pattern: ArrivalPattern, dailyRate: number, random: Random): number[] {
  const counts = new Array<number>(MINUTES_PER_DAY).fill(0);
  const perMinute = dailyRate / MINUTES_PER_DAY;
  if (pattern === "timer") {
    // The period nearest the rate on a log scale; rarer than daily still fires daily.
    const wanted = Math.log(SECONDS_PER_DAY / Math.max(dailyRate, 1));
    const periodS = TIMER_PERIODS_S.reduce((best, p) => (Math.abs(Math.log(p) - wanted) < Math.abs(Math.log(best) - wanted) ? p : best));
    for (let t = random() * periodS; t < SECONDS_PER_DAY; t += periodS) counts[Math.floor(t / 60)]!++;
  } else if (pattern === "poisson") {
    for (let minute = 0; minute < MINUTES_PER_DAY; minute++) counts[minute] = poissonDraw(random, perMinute);
  } else {
    // A rare function's bursts are smaller, so that it still has a few a day.
    const burstSize = Math.min(logUniformDraw(random, 2, 50), Math.max(1, dailyRate / 4));
    const onMinutes = logUniformDraw(random, 1, 10);
    let onRate = burstSize / onMinutes;
    let duty = perMinute / onRate;
    // A function busy enough to be on more than half the time doubles its rate when on.
    if (duty > 0.5) [duty, onRate] = [0.5, 2 * perMinute];
    const offMinutes = (onMinutes * (1 - duty)) / duty;
    let on = random() < duty;
    for (let minute = 0; minute < MINUTES_PER_DAY; minute++) {
      if (on) counts[minute] = poissonDraw(random, onRate);
      if (random() < 1 / (on ? onMinutes : offMinutes)) on = !on;
    }
  }
  return counts;
}

/** Percentiles (0..100) of up to SIMULATED_SAMPLES draws, and their mean. */
function simulated(count: number, draw: () => number, percentiles: readonly number[]): { values: number[]; mean: number } {
  const samples = Array.from({ length: Math.max(1, Math.min(count, SIMULATED_SAMPLES)) }, draw).sort((a, b) => a - b);
  return { values: percentiles.map((p) => percentileOfSorted(samples, p)), mean: samples.reduce((a, b) => a + b, 0) / samples.length };
}

/** An id of 64 hex digits, as the trace's HMAC-SHA256 hashes look. */
const hex = (seed: number, ...part: (string | number)[]) => createHash("sha256").update(["vhive-synthetic", seed, ...part].join("/")).digest("hex");

interface DrawnFunction {
  fn: string;
  trigger: string;
  pattern: ArrivalPattern;
  dailyRate: number;
  counts: number[];
  durationMs: TraceFileFunction["durationMs"];
  averageMs: number;
}

function drawFunction(options: SynthOptions, app: number, index: number): DrawnFunction {
  const { seed } = options;
  const random = seededRandom(partSeed(seed, "function", app, index));
  const trigger = weightedDraw(random, TRIGGERS);
  const pattern: ArrivalPattern = trigger === "timer" ? "timer" : random() < BURSTY_SHARE ? "bursty" : "poisson";
  const dailyRate = 10 ** fromCdf(DAILY_RATE_LOG10, random());
  // Arrivals from a stream of their own, the day's minutes in order: a shorter day is the
  // longer one's beginning.
  const arrivals = seededRandom(partSeed(seed, "arrivals", app, index));
  const day = dayCounts(pattern, dailyRate, arrivals);
  // Figure 5(a) is over functions invoked at least once: one that drew no invocation today
  // is one of its rare days, with a single invocation at a random minute.
  if (!day.some((count) => count > 0)) day[Math.floor(arrivals() * MINUTES_PER_DAY)] = 1;
  const counts = day.slice(0, options.minutes);
  const total = counts.reduce((a, b) => a + b, 0);
  const averageMs = Math.min(3_600_000, Math.max(1, DURATION_MEDIAN_MS * Math.exp(DURATION_SIGMA * normalDraw(random))));
  const sigma = 0.3 + 0.7 * random();
  const medianMs = averageMs * Math.exp(-(sigma ** 2) / 2);
  const durations = simulated(total, () => medianMs * Math.exp(sigma * normalDraw(random)), DURATION_PERCENTILES.map(([p]) => p));
  return {
    fn: hex(seed, "function", app, index),
    trigger,
    pattern,
    dailyRate,
    counts,
    durationMs: durations.values.map(Math.round) as unknown as TraceFileFunction["durationMs"],
    averageMs: Math.round(durations.mean),
  };
}

/**
 * The functions of a synthetic day, app by app, until `options.functions` are written (the
 * last app may be cut short). Lazily: a caller that streams them holds one app at a time.
 */
export function* synthesizeTrace(options: SynthOptions): Generator<SyntheticFunction> {
  let written = 0;
  let owner = "";
  for (let app = 0; written < options.functions; app++) {
    const random = seededRandom(partSeed(options.seed, "app", app));
    const size = functionsPerApp(random);
    if (owner === "" || random() < NEW_OWNER_SHARE) owner = hex(options.seed, "owner", app);
    const invoked = Array.from({ length: size }, (_, index) => drawFunction(options, app, index))
      .filter((f) => f.counts.some((count) => count > 0))
      .slice(0, options.functions - written);
    if (invoked.length === 0) continue;
    // The app's memory, sampled every minute one of its functions ran.
    const activeMinutes = invoked[0]!.counts.filter((_, minute) => invoked.some((f) => f.counts[minute]! > 0)).length;
    const averageMb = 10 ** fromCdf(APP_MEMORY_LOG10, random());
    const cv = 0.05 + 0.1 * random();
    const memory = simulated(activeMinutes, () => averageMb * Math.max(0.5, 1 + cv * normalDraw(random)), MEMORY_PERCENTILES.map(([p]) => p));
    const appId = hex(options.seed, "app", app);
    for (const f of invoked) {
      yield {
        ...f,
        owner,
        app: appId,
        memoryMb: memory.values.map(Math.round) as unknown as TraceFileFunction["memoryMb"],
        averageMb: Math.round(memory.mean),
        memorySamples: 12 * activeMinutes,
      };
      written++;
    }
  }
}

/** How often functions and apps are invoked: the shares the paper quotes, for a check. */
export interface InvocationShares {
  functions: number;
  apps: number;
  /** Shares invoked at most once an hour, and at most once a minute, on average over the period. */
  functionsHourly: number;
  appsHourly: number;
  functionsMinutely: number;
  appsMinutely: number;
}

export function invocationShares(functions: readonly { app: string; invocations: number }[], minutes: number): InvocationShares {
  const perApp = new Map<string, number>();
  for (const f of functions) perApp.set(f.app, (perApp.get(f.app) ?? 0) + f.invocations);
  const apps = [...perApp.values()];
  const share = (values: readonly number[], atMost: number) => values.filter((n) => n <= atMost).length / values.length;
  const counts = functions.map((f) => f.invocations);
  return {
    functions: functions.length,
    apps: apps.length,
    functionsHourly: share(counts, minutes / 60),
    appsHourly: share(apps, minutes / 60),
    functionsMinutely: share(counts, minutes),
    appsMinutely: share(apps, minutes),
  };
}
