/** The bootstrap intervals and the --reps auto stopping rule, on synthetic data. */
import { describe, expect, it } from "vitest";
import { runSeries, stopReason, TimeBudget, parseReps, type AutoReps } from "../../../src/bench/auto-reps.js";
import { bootstrapIntervals, ratioOfMedians, relativeHalfWidth, roundsOf, type Round } from "../../../src/bench/bootstrap.js";
import { normalDraw as normal, seededRandom } from "../../../src/bench/random.js";
import { ratioFigures, ratioPairs, tooWide } from "../../../src/bench/ratios.js";
import { isVhiveError } from "../../../src/shared/errors.js";


/** Rounds of two modes: `a` around meanA, `b` around meanB, independent normal noise of sd `sd` (a share of the mean). */
function independentRounds(count: number, meanA: number, meanB: number, sd: number, random: () => number): Round[] {
  return Array.from({ length: count }, () => ({ a: [meanA * (1 + sd * normal(random))], b: [meanB * (1 + sd * normal(random))] }));
}

const ratio = { ratio: ratioOfMedians("a", "b") };

describe("bootstrap intervals", () => {
  it("the estimate is the ratio of the medians as measured, and the interval lies around it", () => {
    const rounds: Round[] = [
      { a: [210], b: [100] },
      { a: [190], b: [98] },
      { a: [205], b: [103] },
      { a: [200], b: [101] },
      { a: [198], b: [99] },
    ];
    const { ratio: interval } = bootstrapIntervals(rounds, ratio);
    expect(interval.estimate).toBe(200 / 100);
    expect(interval.rounds).toBe(5);
    expect(interval.low!).toBeLessThanOrEqual(interval.estimate);
    expect(interval.high!).toBeGreaterThanOrEqual(interval.estimate);
    expect(interval.low!).toBeGreaterThan(1.8);
    expect(interval.high!).toBeLessThan(2.2);
  });

  /** Of `experiments` runs of `rounds` rounds (a ~ N(200, 10%), b ~ N(100, 10%): true ratio 2), the share whose interval holds 2. */
  function coverage(rounds: number, experiments: number): number {
    const data = seededRandom(42);
    let covered = 0;
    for (let e = 0; e < experiments; e++) {
      const { ratio: interval } = bootstrapIntervals(independentRounds(rounds, 200, 100, 0.1, data), ratio, { resamples: 400, seed: e + 1 });
      if (interval.low! <= 2 && 2 <= interval.high!) covered++;
    }
    return covered / experiments;
  }

  it("covers the true ratio of known distributions about 95% of the time, from 5 rounds on", () => {
    // The percentile bootstrap of a median misses by a few points either way; 200 runs add +-3.
    for (const rounds of [5, 30]) {
      expect(coverage(rounds, 200), `${rounds} rounds`).toBeGreaterThan(0.88);
      expect(coverage(rounds, 200), `${rounds} rounds`).toBeLessThan(0.995);
    }
    // With 3 it is too narrow (about 76%): why --reps auto never stops before 5.
    expect(coverage(3, 200)).toBeLessThan(0.85);
  }, 120_000); // 600 bootstraps of 2000 resamples: seconds alone, far longer on a loaded host

  it("narrows as rounds are added, roughly as one over the square root of their number", () => {
    const data = seededRandom(7);
    const widths = [10, 40, 160].map((count) => {
      const { ratio: interval } = bootstrapIntervals(independentRounds(count, 200, 100, 0.1, data), ratio);
      return interval.high! - interval.low!;
    });
    expect(widths[1]!).toBeLessThan(widths[0]!);
    expect(widths[2]!).toBeLessThan(widths[1]!);
    expect(widths[2]! / widths[0]!).toBeGreaterThan(0.1);
    expect(widths[2]! / widths[0]!).toBeLessThan(0.5); // 1/4 in theory
  });

  it("keeps the pairing: noise shared by the modes of a round cancels in their ratio", () => {
    // Each round's machine speed (factor 0.6..1.8) slows both modes alike; a is always twice b (+-1%).
    const data = seededRandom(3);
    const rounds: Round[] = Array.from({ length: 12 }, () => {
      const machine = 0.6 + 1.2 * data();
      return { a: [200 * machine * (1 + 0.01 * normal(data))], b: [100 * machine * (1 + 0.01 * normal(data))] };
    });
    const { ratio: paired } = bootstrapIntervals(rounds, ratio);
    expect(relativeHalfWidth(paired)).toBeLessThan(0.05);
    // The same samples with the pairing broken (b taken from another round) give a far wider interval.
    const unpaired = rounds.map((round, i) => ({ a: round.a!, b: rounds[(i + 5) % rounds.length]!.b! }));
    const { ratio: broken } = bootstrapIntervals(unpaired, ratio);
    expect(relativeHalfWidth(broken)).toBeGreaterThan(3 * relativeHalfWidth(paired));
  });

  it("pools every sample of a mode in a round: concurrent starts count each", () => {
    const rounds: Round[] = [{ a: [10, 20, 30], b: [10] }, { a: [40], b: [10, 10] }];
    expect(bootstrapIntervals(rounds, ratio).ratio.estimate).toBe(25 / 10);
  });

  it("is deterministic: the same rounds give the same interval; another seed a slightly different one", () => {
    const rounds = independentRounds(8, 200, 100, 0.2, seededRandom(11));
    const first = bootstrapIntervals(rounds, ratio).ratio;
    expect(bootstrapIntervals(rounds, ratio).ratio).toEqual(first);
    const other = bootstrapIntervals(rounds, ratio, { seed: 99 }).ratio;
    expect(other.estimate).toBe(first.estimate);
    expect(other.low).not.toBe(first.low);
    expect(Math.abs(other.low! - first.low!) / first.estimate).toBeLessThan(0.05);
  });

  it("gives no interval with fewer than two rounds, and such a figure is always too wide", () => {
    const { ratio: one } = bootstrapIntervals([{ a: [200], b: [100] }], ratio);
    expect(one).toEqual({ estimate: 2, low: null, high: null, rounds: 1 });
    expect(relativeHalfWidth(one)).toBe(Number.POSITIVE_INFINITY);
    expect(tooWide([one], 0.05)).toEqual([one]);
  });

  it("drops resamples where a statistic is undefined (a mode missing from the drawn rounds)", () => {
    const rounds: Round[] = [{ a: [200], b: [100] }, { a: [210] }, { a: [190], b: [95] }];
    const { ratio: interval } = bootstrapIntervals(rounds, ratio);
    expect(Number.isFinite(interval.low!)).toBe(true);
    expect(interval.estimate).toBeCloseTo(200 / 97.5, 10);
  });

  it("roundsOf groups samples by rep, in rep order", () => {
    const rounds = roundsOf([
      { mode: "a", rep: 2, ms: 3 },
      { mode: "a", rep: 1, ms: 1 },
      { mode: "b", rep: 1, ms: 2 },
      { mode: "a", rep: 2, ms: 4 },
    ]);
    expect(rounds).toEqual([{ a: [1], b: [2] }, { a: [3, 4] }]);
  });
});

describe("the ratios a bench prints", () => {
  it("are the pairs whose modes both ran, recording over vanilla-4k or else vanilla", () => {
    const labels = (modes: Parameters<typeof ratioPairs>[0]) => ratioPairs(modes).map((p) => `${p.numerator} / ${p.denominator}`);
    expect(labels(["warm", "boot", "vanilla", "vanilla-4k", "record", "prefetch", "floor"])).toEqual(["vanilla / prefetch", "vanilla-4k / prefetch", "prefetch / floor", "record / vanilla-4k"]);
    expect(labels(["vanilla", "record", "prefetch"])).toEqual(["vanilla / prefetch", "record / vanilla"]);
    expect(labels(["warm", "boot", "vanilla"])).toEqual([]);
  });

  it("a ratio is within the target when its whole interval is within +-target of it", () => {
    const [figure] = ratioFigures(independentRounds(40, 200, 100, 0.05, seededRandom(5)), [{ numerator: "a" as never, denominator: "b" as never }]);
    const share = relativeHalfWidth(figure!);
    expect(tooWide([figure!], share * 1.01)).toEqual([]);
    expect(tooWide([figure!], share * 0.99)).toEqual([figure]);
  });
});

describe("--reps auto: the stopping rule", () => {
  const plan: AutoReps = { minRounds: 5, maxTimeMs: 60_000, targetShare: 0.05 };

  it("runs the minimum whatever the intervals or the clock, then stops when every ratio is precise", () => {
    expect(stopReason(plan, 4, 0, 1e9, 1)).toBeUndefined();
    expect(stopReason(plan, 4, 3, -1, 1)).toBeUndefined();
    expect(stopReason(plan, 5, 0, 1e9, 1)).toBe("precise");
  });

  it("stops at the time cap when the next round would end past it, and otherwise goes on", () => {
    expect(stopReason(plan, 6, 1, 5_000, 6_000)).toBe("time cap");
    expect(stopReason(plan, 6, 1, 7_000, 6_000)).toBeUndefined();
    expect(stopReason(plan, 6, 0, 0, 6_000)).toBe("precise"); // precise wins over the cap
  });

  /** A series on a fake clock: each round takes `roundMs`; the ratio's noise shrinks as rounds are added. */
  async function fakeSeries(roundMs: number, noise: number, seriesPlan: AutoReps | number, deadline?: number) {
    let clock = 0;
    const data = seededRandom(1);
    const rounds: Round[] = [];
    const statuses: string[] = [];
    const outcome = await runSeries({
      series: "fn",
      plan: seriesPlan,
      deadline,
      now: () => clock,
      runRound: async () => {
        clock += roundMs;
        rounds.push({ a: [200 * (1 + noise * normal(data))], b: [100 * (1 + noise * normal(data))] });
      },
      ratios: () => ratioFigures(rounds, [{ numerator: "a" as never, denominator: "b" as never }]),
      onRound: (status) => statuses.push(`${status.round}:${status.tooWide.length}${status.stoppedBy ? `:${status.stoppedBy}` : ""}`),
    });
    return { outcome, statuses, rounds: rounds.length };
  }

  it("with little noise: the minimum, then precise", async () => {
    const { outcome, statuses } = await fakeSeries(1000, 0.005, plan);
    expect(outcome).toEqual({ series: "fn", rounds: 5, stoppedBy: "precise", tooWide: [] });
    expect(statuses.at(-1)).toBe("5:0:precise");
    expect(statuses).toHaveLength(5);
  });

  it("with more noise: rounds are added until precise, each reported", async () => {
    const { outcome, statuses } = await fakeSeries(1000, 0.04, plan);
    expect(outcome.stoppedBy).toBe("precise");
    expect(outcome.rounds).toBeGreaterThan(5);
    expect(statuses.at(-2)).toMatch(/:1$/); // the round before the last was still too wide
  });

  it("with too much noise for the time: stops at the cap and names what is still too wide", async () => {
    const { outcome, rounds } = await fakeSeries(10_000, 0.5, { ...plan, maxTimeMs: 95_000 });
    expect(outcome.stoppedBy).toBe("time cap");
    expect(rounds).toBe(9); // a 10th round would end at 100 s, past the 95 s cap
    expect(outcome.tooWide).toHaveLength(1);
    expect(outcome.tooWide[0]).toMatch(/^a \/ b ±\d+\.\d%$/);
  });

  it("a series' own deadline bounds it before the cap", async () => {
    const { outcome } = await fakeSeries(10_000, 0.5, plan, 70_000);
    expect(outcome).toMatchObject({ stoppedBy: "time cap", rounds: 7 }); // the 7th ends at 70 s, just in time
  });

  it("a fixed number of rounds runs exactly that many and reports no rounds", async () => {
    const { outcome, statuses, rounds } = await fakeSeries(1000, 0.5, 3);
    expect(outcome).toEqual({ series: "fn", rounds: 3, stoppedBy: "fixed", tooWide: [] });
    expect(rounds).toBe(3);
    expect(statuses).toEqual([]);
  });

  it("the time cap is shared by the series still to run, and time one leaves passes to the next", () => {
    let clock = 0;
    const budget = new TimeBudget(90_000, 3, () => clock);
    expect(budget.nextDeadline()).toBe(30_000);
    clock = 10_000; // the first series finished early
    expect(budget.nextDeadline()).toBe(10_000 + 40_000);
    clock = 50_000;
    expect(budget.nextDeadline()).toBe(90_000);
  });

  it("--reps takes a whole number from 1, or auto", () => {
    expect(parseReps("5")).toBe(5);
    expect(parseReps("auto")).toBe("auto");
    for (const bad of ["0", "-1", "2.5", "x", ""]) {
      try {
        parseReps(bad);
        expect.unreachable(bad);
      } catch (error) {
        expect(isVhiveError(error, "ERR_VALIDATION"), bad).toBe(true);
      }
    }
  });
});
