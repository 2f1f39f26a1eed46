/**
 * Writes small trace files in exactly the Azure Functions Trace 2019's format (the real ones
 * cannot be downloaded here): the three CSV files of one day, with the published headers.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { seededRandom } from "../../../src/bench/index.js";
import { DURATION_PERCENTILES, MEMORY_PERCENTILES, traceFiles } from "../../../src/bench/trace/azure.js";

export interface FakeTraceFunction {
  owner: string;
  app: string;
  fn: string;
  trigger: string;
  /** Invocations per minute; minutes not listed (past the array's end) are 0. */
  counts: number[];
  /** Duration percentiles 0, 1, 25, 50, 75, 99, 100 (ms); the average is the median. */
  durationMs: [number, number, number, number, number, number, number];
  /** The application's memory percentiles 1, 5, 25, 50, 75, 95, 99, 100 (MB). */
  memoryMb: [number, number, number, number, number, number, number, number];
}

const MINUTE_HEADER = Array.from({ length: 1440 }, (_, i) => String(i + 1));

export async function writeAzureTrace(dir: string, day: number, functions: readonly FakeTraceFunction[]): Promise<void> {
  const files = traceFiles(day);
  const invocations = [["HashOwner", "HashApp", "HashFunction", "Trigger", ...MINUTE_HEADER].join(",")];
  const durations = [["HashOwner", "HashApp", "HashFunction", "Average", "Count", "Minimum", "Maximum", ...DURATION_PERCENTILES.map(([, c]) => c)].join(",")];
  const memory = [["HashOwner", "HashApp", "SampleCount", "AverageAllocatedMb", ...MEMORY_PERCENTILES.map(([, c]) => c)].join(",")];
  const apps = new Set<string>();
  for (const f of functions) {
    const counts = Array.from({ length: 1440 }, (_, i) => f.counts[i] ?? 0);
    invocations.push([f.owner, f.app, f.fn, f.trigger, ...counts].join(","));
    const total = counts.reduce((a, b) => a + b, 0);
    durations.push([f.owner, f.app, f.fn, f.durationMs[3], total, f.durationMs[0], f.durationMs[6], ...f.durationMs].join(","));
    if (!apps.has(f.app)) {
      apps.add(f.app);
      memory.push([f.owner, f.app, 1000, f.memoryMb[3], ...f.memoryMb].join(","));
    }
  }
  await writeFile(join(dir, files.invocations), invocations.join("\n") + "\n");
  await writeFile(join(dir, files.durations), durations.join("\n") + "\n");
  await writeFile(join(dir, files.memory), memory.join("\n") + "\n");
}

/**
 * A population with the trace's shape: invocation rates log-uniform over 5 orders of magnitude
 * (from one call in a few hours to hundreds a minute), durations log-normal around 1 s, one
 * function per app. Counts are Poisson-ish per minute over the whole day.
 */
export function syntheticPopulation(size: number, seed: number): FakeTraceFunction[] {
  const random = seededRandom(seed);
  return Array.from({ length: size }, (_, i) => {
    const perMinute = 10 ** (-2.5 + random() * 5);
    const counts = Array.from({ length: 1440 }, () => {
      // Sum of Bernoulli draws approximating a Poisson count at rate perMinute.
      const whole = Math.floor(perMinute);
      return whole + (random() < perMinute - whole ? 1 : 0);
    });
    const medianMs = 10 ** (1 + random() * 3);
    const mb = 50 + random() * 250;
    const hex = (n: number) => n.toString(16).padStart(8, "0");
    return {
      owner: `o${hex(i)}`,
      app: `a${hex(i)}`,
      fn: `f${hex(i)}`,
      trigger: random() < 0.5 ? "http" : "timer",
      counts,
      durationMs: [medianMs * 0.2, medianMs * 0.3, medianMs * 0.7, medianMs, medianMs * 1.4, medianMs * 4, medianMs * 6].map(Math.round) as FakeTraceFunction["durationMs"],
      memoryMb: [mb * 0.8, mb * 0.85, mb * 0.95, mb, mb * 1.05, mb * 1.15, mb * 1.2, mb * 1.3].map(Math.round) as FakeTraceFunction["memoryMb"],
    };
  });
}
