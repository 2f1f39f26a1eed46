import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readInvocationCounts, readTraceFunctions, traceFiles } from "../../../src/bench/trace/azure.js";
import { fromPercentiles, idleTimesFromCounts, planRequests } from "../../../src/bench/trace/plan.js";
import { features, sampleFunctions, wasserstein } from "../../../src/bench/trace/sample.js";
import { synthesizeTrace } from "../../../src/bench/trace/synth.js";
import { writeAzureTrace, type TraceFileFunction } from "../../../src/bench/trace/write.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
/** A synthetic day (synth.ts), as `vhive bench trace-synth` writes it. */
const synthetic = (functions: number, seed: number) => synthesizeTrace({ functions, seed, day: 1, minutes: 1440 });
afterEach(() => cleanups.run());

async function traceDir(functions: Iterable<TraceFileFunction>, day = 1): Promise<string> {
  const dir = await makeTempDir("trace");
  cleanups.push(() => dir.remove());
  await writeAzureTrace(dir.path, day, functions);
  return dir.path;
}

const fn = (id: string, app: string, counts: number[]): TraceFileFunction => ({
  owner: "o1",
  app,
  fn: id,
  trigger: "http",
  counts,
  durationMs: [10, 20, 80, 100, 150, 900, 1000],
  memoryMb: [100, 110, 120, 130, 140, 150, 160, 170],
});

describe("the Azure Functions trace reader", () => {
  it("reads a day's three files: window invocations per function, duration percentiles, memory split among the app's functions", async () => {
    const dir = await traceDir([fn("f1", "a1", [0, 3, 0, 2, 7]), fn("f2", "a1", [1]), fn("f3", "a2", [])]);
    const functions = await readTraceFunctions(dir, 1, { startMinute: 1, minutes: 3 });
    expect(functions.map((f) => [f.function, f.invocations, f.activeMinutes])).toEqual([
      ["f1", 5, 2],
      ["f2", 0, 0],
      ["f3", 0, 0],
    ]);
    const [f1] = functions;
    expect(f1).toMatchObject({ key: "a1/f1", owner: "o1", app: "a1", trigger: "http", averageMs: 100, averageMb: 65 });
    expect(f1!.durationPercentiles).toEqual([[0, 10], [1, 20], [25, 80], [50, 100], [75, 150], [99, 900], [100, 1000]]);
    expect(f1!.memoryPercentiles[0]).toEqual([1, 50]); // a1's 100 MB split between f1 and f2
    expect(functions[2]!.averageMb).toBe(130);
    const counts = await readInvocationCounts(dir, 1, { startMinute: 1, minutes: 4 }, new Set(["a1/f1"]));
    expect([...counts]).toEqual([["a1/f1", [3, 0, 2, 7]]]);
  });

  it("keeps only functions present in all three files, as In-Vitro's preprocessing does", async () => {
    const dir = await traceDir([fn("f1", "a1", [1]), fn("f2", "a2", [1])]);
    const { memory } = traceFiles(1);
    const text = await readFile(join(dir, memory), "utf8");
    await writeFile(join(dir, memory), text.split("\n").filter((line) => !line.includes(",a2,")).join("\n"));
    expect((await readTraceFunctions(dir, 1, { startMinute: 0, minutes: 10 })).map((f) => f.function)).toEqual(["f1"]);
  });

  it("reads a whole day of thousands of functions", async () => {
    const dir = await traceDir(synthetic(3000, 5));
    const functions = await readTraceFunctions(dir, 1, { startMinute: 0, minutes: 1440 });
    expect(functions).toHaveLength(3000);
    expect(functions.some((f) => f.invocations > 100_000)).toBe(true);
  });

  it("refuses a file lacking a column, naming the file, the header line and the column", async () => {
    const dir = await traceDir([fn("f1", "a1", [1])]);
    const { durations } = traceFiles(1);
    const text = await readFile(join(dir, durations), "utf8");
    await writeFile(join(dir, durations), text.replace("percentile_Average_99", "p99"));
    await expect(readTraceFunctions(dir, 1, { startMinute: 0, minutes: 10 })).rejects.toMatchObject({
      code: "ERR_TRACE_INVALID",
      message: "function_durations_percentiles.anon.d01.csv, line 1: the header lacks column percentile_Average_99",
    });
  });

  it("refuses a malformed value, naming the file, the line and the minute's column", async () => {
    const dir = await traceDir([fn("f1", "a1", [1]), fn("f2", "a1", [0, 0, 4])]);
    const { invocations } = traceFiles(1);
    const lines = (await readFile(join(dir, invocations), "utf8")).split("\n");
    lines[2] = lines[2]!.replace(",4,", ",four,");
    await writeFile(join(dir, invocations), lines.join("\n"));
    await expect(readTraceFunctions(dir, 1, { startMinute: 0, minutes: 10 })).rejects.toMatchObject({
      code: "ERR_TRACE_INVALID",
      message: 'invocations_per_function_md.anon.d01.csv, line 3: column 3: "four" is not a whole number >= 0',
    });
  });

  it("refuses a row with too few fields and a missing file, saying which", async () => {
    const dir = await traceDir([fn("f1", "a1", [1])]);
    const { memory, durations } = traceFiles(1);
    await writeFile(join(dir, memory), (await readFile(join(dir, memory), "utf8")) + "o9,a9,1000\n");
    await expect(readTraceFunctions(dir, 1, { startMinute: 0, minutes: 10 })).rejects.toMatchObject({ code: "ERR_TRACE_INVALID", message: expect.stringMatching(/^app_memory_percentiles\.anon\.d01\.csv, line 3: /) });
    await rm(join(dir, durations));
    await expect(readTraceFunctions(dir, 1, { startMinute: 0, minutes: 10 })).rejects.toMatchObject({ code: "ERR_TRACE_INVALID", message: expect.stringContaining(`no trace file ${durations}`) });
    await expect(readTraceFunctions(dir, 1, { startMinute: 1400, minutes: 60 })).rejects.toMatchObject({ code: "ERR_VALIDATION" });
  });
});

describe("sampling functions from a trace", () => {
  it("the Wasserstein distance of two samples is the area between their CDFs", () => {
    expect(wasserstein([0, 1], [0, 1])).toBe(0);
    expect(wasserstein([0], [2])).toBe(2);
    expect(wasserstein([0, 2], [1])).toBe(1);
    expect(wasserstein([1, 2, 3], [2, 3, 4])).toBeCloseTo(1);
  });

  it("keeps the trace's distributions of invocation rates, durations and memory better than a typical random sample", async () => {
    const dir = await traceDir(synthetic(2000, 11));
    const population = await readTraceFunctions(dir, 1, { startMinute: 0, minutes: 60 });
    const sample = sampleFunctions(population, { size: 30, seed: 7, trials: 400, minutes: 60 });
    expect(sample.functions).toHaveLength(30);
    expect(new Set(sample.functions.map((f) => f.key)).size).toBe(30);
    expect(sample.score.mean).toBeLessThan(sample.medianCandidateScore);
    // The sample's quartiles of each log10 feature sit close to the trace's.
    const invoked = population.filter((f) => f.invocations > 0);
    const quartiles = (values: number[]) => {
      const sorted = [...values].sort((a, b) => a - b);
      return [0.25, 0.5, 0.75].map((q) => sorted[Math.floor(q * (sorted.length - 1))]!);
    };
    for (const feature of ["rate", "duration", "memory"] as const) {
      const ofSample = quartiles(sample.functions.map((f) => features(f, 60)[feature]));
      const ofTrace = quartiles(invoked.map((f) => features(f, 60)[feature]));
      for (const [k, q] of ofSample.entries()) expect(Math.abs(q - ofTrace[k]!)).toBeLessThan(feature === "rate" ? 0.6 : 0.35);
    }
  });

  it("the same seed gives the same sample; another seed another; too large a sample is refused", async () => {
    const dir = await traceDir(synthetic(300, 3));
    const population = await readTraceFunctions(dir, 1, { startMinute: 0, minutes: 30 });
    const keys = (seed: number) => sampleFunctions(population, { size: 10, seed, trials: 50, minutes: 30 }).functions.map((f) => f.key);
    expect(keys(1)).toEqual(keys(1));
    expect(keys(1)).not.toEqual(keys(2));
    expect(() => sampleFunctions(population, { size: 10_000, seed: 1, minutes: 30 })).toThrow(expect.objectContaining({ code: "ERR_VALIDATION", message: expect.stringContaining("functions invoked in the window") }));
  });
});

describe("planning a replay", () => {
  it("turns a function's past per-minute counts into idle times at the trace's resolution", () => {
    expect(idleTimesFromCounts([0, 2, 0, 0, 1, 3])).toEqual([0, 3 * 60_000, 60_000, 0, 0]);
    expect(idleTimesFromCounts([0, 0])).toEqual([]);
  });

  it("draws values between the percentiles the trace gives", () => {
    const points = [[0, 10], [50, 100], [100, 200]] as const;
    expect(fromPercentiles(points, 0)).toBe(10);
    expect(fromPercentiles(points, 0.25)).toBe(55);
    expect(fromPercentiles(points, 0.75)).toBe(150);
    expect(fromPercentiles(points, 1)).toBe(200);
  });

  it("spreads each minute's invocations within it, scales counts, caps runtime and memory, and is seeded", () => {
    const f = { ...fn("f1", "a1", []), key: "a1/f1", owner: "o1", app: "a1", function: "f1", invocations: 0, activeMinutes: 0, averageMs: 100, averageMb: 130 } as const;
    const trace = {
      ...f,
      durationPercentiles: [[0, 10], [50, 100], [100, 60_000]] as const,
      memoryPercentiles: [[1, 100], [100, 2000]] as const,
    };
    const options = { seed: 3, scale: 1, maxRuntimeMs: 5000, maxMemoryMib: 128 };
    const requests = planRequests([trace, trace], [[2, 0, 5], [0, 1]], options);
    expect(requests).toHaveLength(8);
    expect(requests.filter((r) => r.fn === 0 && r.dueMs < 60_000)).toHaveLength(2);
    expect(requests.filter((r) => r.fn === 0 && r.dueMs >= 120_000 && r.dueMs < 180_000)).toHaveLength(5);
    expect(requests.map((r) => r.dueMs)).toEqual([...requests.map((r) => r.dueMs)].sort((a, b) => a - b));
    expect(requests.every((r) => r.runtimeMs <= 5000 && r.runtimeMs === Math.min(5000, r.drawnMs) && r.memoryMib <= 128)).toBe(true);
    expect(planRequests([trace, trace], [[2, 0, 5], [0, 1]], options)).toEqual(requests);
    // Scaled by a tenth, 1000 invocations a minute for 10 minutes are about 1000 requests.
    const scaled = planRequests([trace], [Array(10).fill(1000)], { ...options, scale: 0.1 });
    expect(scaled.length).toBe(1000);
    const fractional = planRequests([trace], [Array(1000).fill(1)], { ...options, scale: 0.3 });
    expect(fractional.length).toBeGreaterThan(240);
    expect(fractional.length).toBeLessThan(360);
  });
});
