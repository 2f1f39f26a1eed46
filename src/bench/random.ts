/**
 * Seeded randomness for the benches: one small generator (mulberry32) and the draws built on
 * it. Everything a bench draws goes through here, so a seed repeats a run exactly.
 */
import { createHash } from "node:crypto";

/** A uniform draw in [0, 1). */
export type Random = () => number;

/** A small seeded generator (mulberry32): the same seed gives the same sequence. */
export function seededRandom(seed: number): Random {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A seed of its own for one part of a run (a function, an app), from the run's seed and the
 * part's name: parts drawn from separate streams stay the same when other parts change.
 */
export function partSeed(seed: number, ...part: (string | number)[]): number {
  return createHash("sha256").update([seed, ...part].join("/")).digest().readUInt32LE(0);
}

/** A standard normal draw (Box-Muller, two uniforms per draw). */
export function normalDraw(random: Random): number {
  return Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
}

/** A draw log-uniform between `low` and `high` (both > 0). */
export function logUniformDraw(random: Random, low: number, high: number): number {
  return low * (high / low) ** random();
}

/**
 * A Poisson count of mean `mean`: Knuth's product of uniforms up to a mean of 30, above it
 * the normal approximation (rounded, never below 0), whose error there is under 1%.
 */
export function poissonDraw(random: Random, mean: number): number {
  if (!(mean > 0)) return 0;
  if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * normalDraw(random)));
  const limit = Math.exp(-mean);
  let count = 0;
  for (let product = random(); product > limit; product *= random()) count++;
  return count;
}

/** One of `choices` with probability proportional to its weight. */
export function weightedDraw<T>(random: Random, choices: readonly (readonly [T, number])[]): T {
  const total = choices.reduce((sum, [, weight]) => sum + weight, 0);
  let left = random() * total;
  for (const [choice, weight] of choices) {
    left -= weight;
    if (left < 0) return choice;
  }
  return choices[choices.length - 1]![0];
}
