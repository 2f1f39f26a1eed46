/**
 * Reads the Azure Functions Trace 2019 (Shahrad et al., ATC'20; AzurePublicDataset,
 * AzureFunctionsDataset2019.md) from its own CSV files, streaming (csv-parse), so a day's files
 * with tens of thousands of functions are read in memory bounded by the functions' summaries,
 * never by their 1440 per-minute counts. Per day dd (01..14; memory only 01..12):
 *
 *   invocations_per_function_md.anon.d<dd>.csv
 *     HashOwner, HashApp, HashFunction, Trigger, 1, 2, ..., 1440   (invocations in each minute)
 *   function_durations_percentiles.anon.d<dd>.csv
 *     HashOwner, HashApp, HashFunction, Average, Count, Minimum, Maximum,
 *     percentile_Average_0, _1, _25, _50, _75, _99, _100            (execution time, ms)
 *   app_memory_percentiles.anon.d<dd>.csv
 *     HashOwner, HashApp, SampleCount, AverageAllocatedMb,
 *     AverageAllocatedMb_pct1, _pct5, _pct25, _pct50, _pct75, _pct95, _pct99, _pct100
 *
 * Columns are found by name in the header (other columns are ignored). A missing column, a
 * malformed row or a value that is not a number >= 0 is ERR_TRACE_INVALID naming the file, the
 * line and the column. As In-Vitro's preprocessing does, only functions present in all three
 * files are kept, and an application's memory is split evenly among its functions (the trace
 * measures memory per application, the unit of allocation in Azure Functions).
 *
 * The cells are checked by hand, not with a zod schema per row: a day has ~60 million
 * per-minute cells, and a schema call per cell would take a minute.
 */
import { createReadStream } from "node:fs";
import { basename, join } from "node:path";
import { parse } from "csv-parse";
import { VhiveError, messageOf } from "../../shared/errors.js";

export const MINUTES_PER_DAY = 1440;

/** The duration percentiles the trace gives, with the percentile each column is. */
export const DURATION_PERCENTILES = [
  [0, "percentile_Average_0"],
  [1, "percentile_Average_1"],
  [25, "percentile_Average_25"],
  [50, "percentile_Average_50"],
  [75, "percentile_Average_75"],
  [99, "percentile_Average_99"],
  [100, "percentile_Average_100"],
] as const;

export const MEMORY_PERCENTILES = [
  [1, "AverageAllocatedMb_pct1"],
  [5, "AverageAllocatedMb_pct5"],
  [25, "AverageAllocatedMb_pct25"],
  [50, "AverageAllocatedMb_pct50"],
  [75, "AverageAllocatedMb_pct75"],
  [95, "AverageAllocatedMb_pct95"],
  [99, "AverageAllocatedMb_pct99"],
  [100, "AverageAllocatedMb_pct100"],
] as const;

const day2 = (day: number) => String(day).padStart(2, "0");
export const traceFiles = (day: number) => ({
  invocations: `invocations_per_function_md.anon.d${day2(day)}.csv`,
  durations: `function_durations_percentiles.anon.d${day2(day)}.csv`,
  memory: `app_memory_percentiles.anon.d${day2(day)}.csv`,
});

/** (percentile, value) points of a distribution, ascending. */
export type Percentiles = readonly (readonly [number, number])[];

/** One trace function, summarised over the replayed window. */
export interface TraceFunction {
  /** HashApp/HashFunction: unique in a day's files. */
  key: string;
  owner: string;
  app: string;
  function: string;
  trigger: string;
  /** Invocations in the window, and in how many of its minutes there were any. */
  invocations: number;
  activeMinutes: number;
  /** Mean execution time over the day, ms. */
  averageMs: number;
  durationPercentiles: Percentiles;
  /** The application's allocated memory split evenly among its functions, MB. */
  averageMb: number;
  memoryPercentiles: Percentiles;
}

export interface TraceWindow {
  /** First minute replayed, 0-based (0..1439). */
  startMinute: number;
  minutes: number;
}

interface Cell {
  file: string;
  line: number;
}

function invalid(where: Cell, problem: string, remedy = "use the trace's files as published (AzureFunctionsDataset2019), or fix the line named"): VhiveError {
  return new VhiveError("ERR_TRACE_INVALID", `${where.file}, line ${where.line}: ${problem}`, { remedy });
}

/** A number >= 0 (an integer if asked) from a cell, or ERR_TRACE_INVALID naming file, line and column. */
function numberAt(where: Cell, column: string, text: string | undefined, integer = false): number {
  const value = text === undefined || text.trim() === "" ? Number.NaN : Number(text);
  if (!Number.isFinite(value) || value < 0 || (integer && !Number.isInteger(value))) {
    throw invalid(where, `column ${column}: ${JSON.stringify(text ?? "")} is not ${integer ? "a whole number" : "a number"} >= 0`);
  }
  return value;
}

/**
 * Each row of a CSV file as an object of the wanted columns, checked against the header first.
 * Yields [line, cells] where cells maps a wanted column to its text.
 */
async function* rows(path: string, wanted: readonly string[], options: { minuteColumns?: boolean } = {}): AsyncGenerator<{ line: number; get: (column: string) => string | undefined; minutes?: string[] }> {
  const file = basename(path);
  const parser = parse({ info: true, skip_empty_lines: true });
  const stream = createReadStream(path);
  // pipe() does not forward a read error (a missing file): end the parser with it.
  stream.on("error", (error) => parser.destroy(error));
  stream.pipe(parser);
  let index: Map<string, number> | undefined;
  let firstMinute = -1;
  try {
    for await (const { info, record } of parser as AsyncIterable<{ info: { lines: number }; record: string[] }>) {
      const line = info.lines;
      if (!index) {
        index = new Map(record.map((name, i) => [name, i]));
        const missing = wanted.filter((column) => !index!.has(column));
        if (options.minuteColumns) {
          firstMinute = index.get("1") ?? -1;
          const minutes = record.slice(firstMinute, firstMinute + MINUTES_PER_DAY);
          if (firstMinute === -1 || minutes.some((name, i) => name !== String(i + 1)) || minutes.length !== MINUTES_PER_DAY) {
            missing.push("1 .. 1440 (one column per minute, in order)");
          }
        }
        if (missing.length > 0) throw invalid({ file, line }, `the header lacks column${missing.length === 1 ? "" : "s"} ${missing.join(", ")}`);
        continue;
      }
      const columns = index;
      yield {
        line,
        get: (column) => record[columns.get(column)!],
        minutes: options.minuteColumns ? record.slice(firstMinute, firstMinute + MINUTES_PER_DAY) : undefined,
      };
    }
  } catch (error) {
    if (error instanceof VhiveError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new VhiveError("ERR_TRACE_INVALID", `no trace file ${file} in ${join(path, "..")}`, {
        remedy: "download and unpack azurefunctions-dataset2019.tar.xz (see the README's trace section), and pick a --day whose three files are there",
      });
    }
    // csv-parse's own errors (a row with the wrong number of fields, a stray quote) say where.
    const line = (error as { lines?: number }).lines;
    throw new VhiveError("ERR_TRACE_INVALID", `${file}${line ? `, line ${line}` : ""}: ${messageOf(error)}`, { cause: error, remedy: "use the trace's files as published (AzureFunctionsDataset2019)" });
  } finally {
    stream.destroy();
  }
  if (!index) throw invalid({ file, line: 1 }, "the file is empty (no header)");
}

const DURATION_COLUMNS = ["HashApp", "HashFunction", "Average", ...DURATION_PERCENTILES.map(([, column]) => column)];
const MEMORY_COLUMNS = ["HashApp", "AverageAllocatedMb", ...MEMORY_PERCENTILES.map(([, column]) => column)];
const INVOCATION_COLUMNS = ["HashOwner", "HashApp", "HashFunction", "Trigger"];

function checkWindow(window: TraceWindow): void {
  const { startMinute, minutes } = window;
  if (!Number.isInteger(startMinute) || !Number.isInteger(minutes) || startMinute < 0 || minutes < 1 || startMinute + minutes > MINUTES_PER_DAY) {
    throw new VhiveError("ERR_VALIDATION", `the window of minutes ${startMinute}..${startMinute + minutes - 1} is not within a day's 1440 minutes`, {
      remedy: "choose --start-minute and --minutes so that they add up to at most 1440",
    });
  }
}

/**
 * Every function of the day present in all three files, summarised over `window`: what the
 * sampler chooses from. Memory holds one summary per function.
 */
export async function readTraceFunctions(dir: string, day: number, window: TraceWindow): Promise<TraceFunction[]> {
  checkWindow(window);
  const files = traceFiles(day);
  const durations = new Map<string, { averageMs: number; percentiles: Percentiles }>();
  for await (const row of rows(join(dir, files.durations), DURATION_COLUMNS)) {
    const where = { file: files.durations, line: row.line };
    durations.set(`${row.get("HashApp")}/${row.get("HashFunction")}`, {
      averageMs: numberAt(where, "Average", row.get("Average")),
      percentiles: DURATION_PERCENTILES.map(([p, column]) => [p, numberAt(where, column, row.get(column))] as const),
    });
  }
  const memory = new Map<string, { averageMb: number; percentiles: Percentiles }>();
  for await (const row of rows(join(dir, files.memory), MEMORY_COLUMNS)) {
    const where = { file: files.memory, line: row.line };
    memory.set(row.get("HashApp")!, {
      averageMb: numberAt(where, "AverageAllocatedMb", row.get("AverageAllocatedMb")),
      percentiles: MEMORY_PERCENTILES.map(([p, column]) => [p, numberAt(where, column, row.get(column))] as const),
    });
  }
  const found: Omit<TraceFunction, "averageMb" | "memoryPercentiles">[] = [];
  const functionsPerApp = new Map<string, number>();
  for await (const row of rows(join(dir, files.invocations), INVOCATION_COLUMNS, { minuteColumns: true })) {
    const where = { file: files.invocations, line: row.line };
    const app = row.get("HashApp")!;
    const fn = row.get("HashFunction")!;
    const key = `${app}/${fn}`;
    let invocations = 0;
    let activeMinutes = 0;
    for (let minute = 0; minute < MINUTES_PER_DAY; minute++) {
      // Every cell is checked, not only the window's: a damaged file is refused whatever is replayed.
      const count = numberAt(where, String(minute + 1), row.minutes![minute], true);
      if (minute >= window.startMinute && minute < window.startMinute + window.minutes && count > 0) {
        invocations += count;
        activeMinutes++;
      }
    }
    const duration = durations.get(key);
    if (!duration || !memory.has(app)) continue;
    functionsPerApp.set(app, (functionsPerApp.get(app) ?? 0) + 1);
    found.push({ key, owner: row.get("HashOwner")!, app, function: fn, trigger: row.get("Trigger")!, invocations, activeMinutes, averageMs: duration.averageMs, durationPercentiles: duration.percentiles });
  }
  return found.map((fn) => {
    const share = 1 / functionsPerApp.get(fn.app)!;
    const mem = memory.get(fn.app)!;
    return { ...fn, averageMb: mem.averageMb * share, memoryPercentiles: mem.percentiles.map(([p, mb]) => [p, mb * share] as const) };
  });
}

/** The per-minute invocation counts of the window for the functions in `keys` (a second pass). */
export async function readInvocationCounts(dir: string, day: number, window: TraceWindow, keys: ReadonlySet<string>): Promise<Map<string, number[]>> {
  checkWindow(window);
  const file = traceFiles(day).invocations;
  const counts = new Map<string, number[]>();
  for await (const row of rows(join(dir, file), INVOCATION_COLUMNS, { minuteColumns: true })) {
    const key = `${row.get("HashApp")}/${row.get("HashFunction")}`;
    if (!keys.has(key)) continue;
    const where = { file, line: row.line };
    const minutes = row.minutes!.slice(window.startMinute, window.startMinute + window.minutes);
    counts.set(key, minutes.map((text, i) => numberAt(where, String(window.startMinute + i + 1), text, true)));
  }
  return counts;
}
