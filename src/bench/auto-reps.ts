/**
 * How many interleaved rounds a bench runs: a fixed number (`--reps 5`), or `--reps auto`:
 * rounds are added until the 95% interval of every ratio the series prints lies within
 * +-targetShare of the ratio, or the time cap says stop.
 *
 * A series is what one set of ratios is computed over: a function's cold starts (coldstart,
 * reap), a function's concurrent cold starts (reap), one concurrency level (concurrency). The
 * stopping rule, after each round:
 *   1. fewer than minRounds rounds: go on (the minimum runs whatever the cap);
 *   2. every ratio's interval within +-targetShare: stop, "precise";
 *   3. the next round, as long as the mean round so far, would end past the series' deadline:
 *      stop, "time cap";
 *   4. otherwise run another round.
 * The time cap (maxTimeMs, from the bench's start) is shared out as it goes: a series starting
 * with S series still to run (itself included) gets a deadline of now + (time left) / S, so a
 * series that finishes early leaves its time to the ones after it.
 */
import { VhiveError } from "../shared/errors.js";
import { formatHalfWidth, ratioPairs, tooWide, type RatioFigure } from "./ratios.js";
import type { BenchMode } from "./rows.js";

export interface AutoReps {
  /** Rounds run in any case. */
  minRounds: number;
  /** The cap on the whole bench, from its start, ms. */
  maxTimeMs: number;
  /** Every ratio's 95% interval must lie within +- this share of it (0.05: +-5%). */
  targetShare: number;
}

/** A fixed number of rounds, or auto. */
export type RepsPlan = number | AutoReps;

export const DEFAULT_TARGET_SHARE = 0.05;

/**
 * The fewest rounds auto may stop at. Below it the percentile interval of a median is too
 * narrow to trust: on normal data (test/unit/bench/bootstrap.test.ts) it covered the true ratio
 * 76% of the time with 3 rounds, 94-96% with 5 to 30.
 */
export const MIN_AUTO_ROUNDS = 5;

export type StopReason = "fixed" | "precise" | "time cap";

/** How one series' rounds ended. */
export interface SeriesOutcome {
  /** "helloworld", "helloworld 4x", "8 at once". */
  series: string;
  rounds: number;
  stoppedBy: StopReason;
  /** Ratios still wider than the target when it stopped, "vanilla-4k / prefetch +-7.2%". */
  tooWide: string[];
}

/** What the bench report records about `--reps auto`. */
export interface AutoRepsRecord extends AutoReps {
  outcomes: SeriesOutcome[];
}

/** After each round of an auto series: where its ratios stand. */
export interface RoundStatus {
  series: string;
  round: number;
  ratios: RatioFigure[];
  /** The ratios still too wide. */
  tooWide: RatioFigure[];
  /** Set on the series' last round. */
  stoppedBy?: StopReason;
}

export type RoundListener = (status: RoundStatus) => void;

/** The stopping rule (see the module header); undefined means run another round. */
export function stopReason(plan: AutoReps, rounds: number, wide: number, msLeft: number, meanRoundMs: number): Exclude<StopReason, "fixed"> | undefined {
  if (rounds < plan.minRounds) return undefined;
  if (wide === 0) return "precise";
  if (meanRoundMs > msLeft) return "time cap";
  return undefined;
}

/** Shares the time cap among the series still to run. */
export class TimeBudget {
  readonly #endAt: number;
  #seriesLeft: number;
  readonly #now: () => number;

  constructor(maxTimeMs: number, series: number, now: () => number = () => performance.now()) {
    this.#now = now;
    this.#endAt = now() + maxTimeMs;
    this.#seriesLeft = Math.max(1, series);
  }

  /** The deadline of the next series (call once per series, in order). */
  nextDeadline(): number {
    const now = this.#now();
    const share = Math.max(0, this.#endAt - now) / this.#seriesLeft;
    this.#seriesLeft = Math.max(1, this.#seriesLeft - 1);
    return now + share;
  }
}

export interface SeriesRun {
  series: string;
  plan: RepsPlan;
  /** For auto: when this series must stop adding rounds (TimeBudget.nextDeadline()). */
  deadline?: number;
  /** Run round `round` (1-based): one start of every mode, interleaved. */
  runRound: (round: number) => Promise<void>;
  /** The series' ratios over the rounds so far. */
  ratios: () => RatioFigure[];
  onRound?: RoundListener;
  now?: () => number;
}

/** "vanilla-4k / prefetch ±7.2%" */
export const describeWide = (figure: RatioFigure): string => `${figure.label} ${formatHalfWidth(figure) || "(no interval yet)"}`;

/** Run a series' rounds by its plan and say how it ended. */
export async function runSeries(run: SeriesRun): Promise<SeriesOutcome> {
  const now = run.now ?? (() => performance.now());
  if (typeof run.plan === "number") {
    for (let round = 1; round <= run.plan; round++) await run.runRound(round);
    return { series: run.series, rounds: run.plan, stoppedBy: "fixed", tooWide: [] };
  }
  const plan = run.plan;
  const started = now();
  const deadline = run.deadline ?? started + plan.maxTimeMs;
  for (let round = 1; ; round++) {
    await run.runRound(round);
    const ratios = run.ratios();
    const wide = tooWide(ratios, plan.targetShare);
    const stoppedBy = stopReason(plan, round, wide.length, deadline - now(), (now() - started) / round);
    run.onRound?.({ series: run.series, round, ratios, tooWide: wide, stoppedBy });
    if (stoppedBy) return { series: run.series, rounds: round, stoppedBy, tooWide: wide.map(describeWide) };
  }
}

/** `--reps`: a whole number of rounds from 1, or "auto". */
export function parseReps(text: string | number): number | "auto" {
  if (text === "auto") return "auto";
  const reps = Number(text);
  if (!Number.isInteger(reps) || reps < 1 || reps > 10_000) {
    throw new VhiveError("ERR_VALIDATION", `--reps ${text}: expected a whole number of rounds from 1, or auto`, {
      remedy: "e.g. --reps 5, or --reps auto --max-time 20m (rounds until every ratio's 95% interval is within +-5%)",
    });
  }
  return reps;
}

/** Ratios only exist when two compared modes run: auto needs at least one to narrow. */
export function assertSomethingToNarrow(plan: RepsPlan, modes: readonly BenchMode[]): void {
  if (typeof plan === "number" || ratioPairs(modes).length > 0) return;
  throw new VhiveError("ERR_VALIDATION", `--reps auto has no ratio to narrow: modes ${modes.join(", ")} are not compared with each other`, {
    remedy: "run two modes that the bench compares (e.g. vanilla-4k and prefetch, or prefetch and floor), or give --reps a number",
  });
}
