/** The synthetic trace generator: its files are the dataset's, repeatable, and shaped like the paper's figures. */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { readTraceFunctions, traceFiles, type TraceFunction } from "../../../src/bench/trace/azure.js";
import { invocationShares, parseSynthOptions, synthesizeTrace, type SynthOptions, type SyntheticFunction } from "../../../src/bench/trace/synth.js";
import { writeAzureTrace } from "../../../src/bench/trace/write.js";
import { makeTempDir } from "../../../src/shared/tmp.js";
import { Cleanups } from "../test-shared/cleanups.js";

const cleanups = new Cleanups();
afterEach(() => cleanups.run());

const options = (o: Partial<SynthOptions> = {}): SynthOptions => ({ functions: 200, day: 1, seed: 1, minutes: 1440, ...o });

async function synthesized(o: Partial<SynthOptions> = {}): Promise<{ dir: string; files: string[] }> {
  const dir = await makeTempDir("synth");
  cleanups.push(() => dir.remove());
  const { files } = await writeAzureTrace(dir.path, options(o).day, synthesizeTrace(options(o)));
  return { dir: dir.path, files };
}

const fullDay = { startMinute: 0, minutes: 1440 };
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const quantile = (values: readonly number[], q: number) => [...values].sort((a, b) => a - b)[Math.floor(q * (values.length - 1))]!;

describe("vhive bench trace-synth's generator", () => {
  it("writes exactly the day's three files, with the dataset's headers, and the reader reads every function back", async () => {
    const { dir, files } = await synthesized({ functions: 150, day: 3 });
    const names = traceFiles(3);
    expect((await readdir(dir)).sort()).toEqual([names.memory, names.durations, names.invocations].sort());
    expect(files.map((file) => file.slice(dir.length + 1))).toEqual([names.invocations, names.durations, names.memory]);
    const header = async (name: string) => (await readFile(join(dir, name), "utf8")).split("\n", 1)[0]!.split(",");
    expect(await header(names.invocations)).toEqual(["HashOwner", "HashApp", "HashFunction", "Trigger", ...Array.from({ length: 1440 }, (_, i) => String(i + 1))]);
    expect(await header(names.durations)).toEqual(["HashOwner", "HashApp", "HashFunction", "Average", "Count", "Minimum", "Maximum", "percentile_Average_0", "percentile_Average_1", "percentile_Average_25", "percentile_Average_50", "percentile_Average_75", "percentile_Average_99", "percentile_Average_100"]);
    expect(await header(names.memory)).toEqual(["HashOwner", "HashApp", "SampleCount", "AverageAllocatedMb", "AverageAllocatedMb_pct1", "AverageAllocatedMb_pct5", "AverageAllocatedMb_pct25", "AverageAllocatedMb_pct50", "AverageAllocatedMb_pct75", "AverageAllocatedMb_pct95", "AverageAllocatedMb_pct99", "AverageAllocatedMb_pct100"]);

    const functions = await readTraceFunctions(dir, 3, fullDay);
    expect(functions).toHaveLength(150);
    expect(new Set(functions.map((f) => f.key)).size).toBe(150);
    for (const f of functions) {
      expect(f.invocations).toBeGreaterThan(0);
      expect([f.owner, f.app, f.function].every((id) => /^[0-9a-f]{64}$/.test(id))).toBe(true);
      expect(["http", "timer", "queue", "orchestration", "storage", "event", "others"]).toContain(f.trigger);
      // Percentiles ascend, and the mean lies within them.
      const ms = f.durationPercentiles.map(([, v]) => v);
      expect(ms).toEqual([...ms].sort((a, b) => a - b));
      expect(f.averageMs).toBeGreaterThanOrEqual(ms[0]! - 1);
      expect(f.averageMs).toBeLessThanOrEqual(ms.at(-1)! + 1);
      const mb = f.memoryPercentiles.map(([, v]) => v);
      expect(mb).toEqual([...mb].sort((a, b) => a - b));
    }
    // The durations file's Count is what the invocations file adds up to.
    const lines = (await readFile(join(dir, names.durations), "utf8")).trim().split("\n").slice(1);
    const counted = new Map(lines.map((line) => line.split(",")).map((cells) => [`${cells[1]}/${cells[2]}`, Number(cells[4])]));
    for (const f of functions) expect(counted.get(f.key)).toBe(f.invocations);
  });

  it("the same options write the same bytes; another seed other functions", async () => {
    const a = await synthesized({ seed: 42 });
    const b = await synthesized({ seed: 42 });
    const c = await synthesized({ seed: 43 });
    for (const [k, file] of a.files.entries()) expect(await readFile(b.files[k]!, "utf8")).toBe(await readFile(file, "utf8"));
    expect(await readFile(c.files[0]!, "utf8")).not.toBe(await readFile(a.files[0]!, "utf8"));
  });

  it("a shorter day is the full day's beginning: the same functions, the same counts", async () => {
    const day = [...synthesizeTrace(options({ functions: 400, seed: 5 }))];
    const hour = [...synthesizeTrace(options({ functions: 50, seed: 5, minutes: 60 }))];
    expect(hour).toHaveLength(50);
    const byId = new Map(day.map((f) => [f.fn, f]));
    for (const f of hour) {
      expect(f.counts).toHaveLength(60);
      expect(sum(f.counts)).toBeGreaterThan(0);
      expect(f.counts).toEqual(byId.get(f.fn)!.counts.slice(0, 60));
    }
  });

  it("is heavy-tailed as the paper's Figure 5(a): most functions rare, a few invoked millions of times a day", async () => {
    const { dir } = await synthesized({ functions: 2000, seed: 11 });
    const functions = await readTraceFunctions(dir, 1, fullDay);
    const shares = invocationShares(functions, 1440);
    // The paper: 45% of apps at most once an hour, 81% at most once a minute; Figure 5(a)'s
    // functions about 64% and 92%. Bands wide enough for a sample of 2000.
    expect(shares.appsHourly).toBeGreaterThan(0.35);
    expect(shares.appsHourly).toBeLessThan(0.55);
    expect(shares.appsMinutely).toBeGreaterThan(0.72);
    expect(shares.appsMinutely).toBeLessThan(0.88);
    expect(shares.functionsHourly).toBeGreaterThan(0.55);
    expect(shares.functionsHourly).toBeLessThan(0.72);
    expect(shares.functionsMinutely).toBeGreaterThan(0.87);
    expect(shares.functionsMinutely).toBeLessThan(0.96);
    const counts = functions.map((f) => f.invocations).sort((a, b) => b - a);
    expect(counts[0]! / counts.at(-1)!).toBeGreaterThan(1e6);
    // The busiest 5% of functions get almost every invocation.
    expect(sum(counts.slice(0, counts.length / 20)) / sum(counts)).toBeGreaterThan(0.9);
  });

  it("durations are log-normal around a second (Figure 7), app memory around 150 MB (Figure 8)", async () => {
    const { dir, files } = await synthesized({ functions: 2000, seed: 12 });
    const functions: TraceFunction[] = await readTraceFunctions(dir, 1, fullDay);
    const log10ms = functions.map((f) => Math.log10(f.averageMs));
    expect(quantile(log10ms, 0.5)).toBeGreaterThan(Math.log10(500));
    expect(quantile(log10ms, 0.5)).toBeLessThan(Math.log10(2000));
    // Figure 7's quartiles of the average are ~0.27 s and ~5 s: more than a decade apart.
    expect(quantile(log10ms, 0.75) - quantile(log10ms, 0.25)).toBeGreaterThan(1);
    expect(quantile(log10ms, 0.75) - quantile(log10ms, 0.25)).toBeLessThan(1.8);
    const appMb = (await readFile(files[2]!, "utf8")).trim().split("\n").slice(1).map((line) => Number(line.split(",")[3]));
    expect(quantile(appMb, 0.5)).toBeGreaterThan(120);
    expect(quantile(appMb, 0.5)).toBeLessThan(180);
    expect(quantile(appMb, 0.9)).toBeLessThan(400);
  });

  it("timers fire periodically, bursty functions cluster, others arrive as Poisson per minute", () => {
    const functions: SyntheticFunction[] = [...synthesizeTrace(options({ functions: 3000, seed: 13 }))];
    const timers = functions.filter((f) => f.pattern === "timer" && sum(f.counts) >= 3 && sum(f.counts) <= 720);
    expect(timers.length).toBeGreaterThan(50);
    for (const f of timers) {
      // Minutes between firings differ by at most one (the period in whole minutes, rounded either way).
      const active = f.counts.flatMap((count, minute) => (count > 0 ? [minute] : []));
      const gaps = active.slice(1).map((minute, k) => minute - active[k]!);
      expect(Math.max(...gaps) - Math.min(...gaps)).toBeLessThanOrEqual(1);
    }
    // The variance of per-minute counts over their mean: 1 for Poisson, far more for bursts.
    const dispersion = (counts: readonly number[]) => {
      const mean = sum(counts) / counts.length;
      return sum(counts.map((c) => (c - mean) ** 2)) / counts.length / mean;
    };
    const busy = (pattern: string) => functions.filter((f) => f.pattern === pattern && sum(f.counts) >= 2000);
    expect(busy("poisson").length).toBeGreaterThan(10);
    for (const f of busy("poisson")) expect(dispersion(f.counts)).toBeLessThan(1.5);
    expect(busy("bursty").length).toBeGreaterThan(10);
    expect(quantile(busy("bursty").map((f) => dispersion(f.counts)), 0.5)).toBeGreaterThan(3);
    expect(functions.filter((f) => f.trigger === "timer").length / functions.length).toBeCloseTo(0.156, 1);
  });

  it("refuses options out of range or unknown, naming the option", () => {
    expect(() => parseSynthOptions({ ...options(), functions: 0 })).toThrow(expect.objectContaining({ code: "ERR_VALIDATION", message: expect.stringContaining("--functions") }));
    expect(() => parseSynthOptions({ ...options(), minutes: 1441 })).toThrow(expect.objectContaining({ code: "ERR_VALIDATION", message: expect.stringContaining("--minutes") }));
    expect(() => parseSynthOptions({ ...options(), day: 2.5 })).toThrow(expect.objectContaining({ message: expect.stringContaining("--day") }));
    expect(() => parseSynthOptions({ ...options(), hours: 3 })).toThrow(expect.objectContaining({ code: "ERR_VALIDATION" }));
    expect(parseSynthOptions(options({ seed: 7 }))).toEqual(options({ seed: 7 }));
  });
});

describe("writing trace files", () => {
  it("never overwrites a day's file: the directory is left as it was", async () => {
    const dir = await makeTempDir("synth");
    cleanups.push(() => dir.remove());
    const names = traceFiles(1);
    await writeFile(join(dir.path, names.durations), "a real trace's file\n");
    await expect(writeAzureTrace(dir.path, 1, synthesizeTrace(options({ functions: 5 })))).rejects.toMatchObject({
      code: "ERR_VALIDATION",
      message: `${dir.path} already has ${names.durations}: trace files are never overwritten`,
    });
    expect(await readdir(dir.path)).toEqual([names.durations]);
    expect(await readFile(join(dir.path, names.durations), "utf8")).toBe("a real trace's file\n");
  });

  it("removes what it wrote when the functions fail midway", async () => {
    const dir = await makeTempDir("synth");
    cleanups.push(() => dir.remove());
    function* failing() {
      yield* synthesizeTrace(options({ functions: 3 }));
      throw new Error("the generator broke");
    }
    await expect(writeAzureTrace(dir.path, 1, failing())).rejects.toThrow("the generator broke");
    expect(await readdir(dir.path)).toEqual([]);
  });
});
