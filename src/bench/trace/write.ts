/**
 * Writes trace files in exactly the Azure Functions Trace 2019's format, as azure.ts reads
 * them and as the dataset publishes them: the three CSV files of one day with the published
 * headers (see azure.ts for the columns). For synthetic traces (synth.ts) and tests; the real
 * trace is downloaded, never written.
 *
 * Line by line, in chunks, so a day of tens of thousands of functions (1440 counts each) never
 * sits in memory whole. The files are created, never overwritten: a directory that already has
 * one of them (a real trace's, say) is refused and left as it was. On a failure midway, the
 * files this call created are removed again.
 *
 * :raise ERR_VALIDATION: the directory already has one of the day's files.
 */
import { mkdir, open, rm, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { VhiveError } from "../../shared/errors.js";
import { UndoStack } from "../../shared/undo.js";
import { csvLine, type CsvValue } from "../csv.js";
import { DURATION_PERCENTILES, MEMORY_PERCENTILES, MINUTES_PER_DAY, traceFiles } from "./azure.js";

/** One function's rows, as the three files hold them. */
export interface TraceFileFunction {
  owner: string;
  app: string;
  fn: string;
  trigger: string;
  /** Invocations per minute from minute 0; minutes past the array's end are 0. */
  counts: readonly number[];
  /** Execution-time percentiles 0, 1, 25, 50, 75, 99, 100 (ms); Minimum and Maximum are the 0th and 100th. */
  durationMs: readonly [number, number, number, number, number, number, number];
  /** Mean execution time, ms (default: the median). */
  averageMs?: number;
  /** The application's allocated-memory percentiles 1, 5, 25, 50, 75, 95, 99, 100 (MB); the first function of an app gives its app's row. */
  memoryMb: readonly [number, number, number, number, number, number, number, number];
  /** The application's mean allocated memory, MB (default: the median). */
  averageMb?: number;
  /** SampleCount of the app's memory row (default 1000). */
  memorySamples?: number;
}

export interface WrittenTrace {
  /** The three files, invocations first. */
  files: string[];
  functions: number;
  apps: number;
}

/** Text is buffered up to this many characters per file between writes. */
const CHUNK_CHARS = 1 << 20;

class LineFile {
  #buffered: string[] = [];
  #chars = 0;
  constructor(readonly handle: FileHandle) {}

  async line(record: readonly CsvValue[]): Promise<void> {
    const text = csvLine(record) + "\n";
    this.#buffered.push(text);
    this.#chars += text.length;
    if (this.#chars >= CHUNK_CHARS) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#chars === 0) return;
    const text = this.#buffered.join("");
    this.#buffered = [];
    this.#chars = 0;
    // On a FileHandle, writeFile writes all of it from the current position: chunks append.
    await this.handle.writeFile(text);
  }
}

async function create(path: string, name: string, dir: string): Promise<FileHandle> {
  try {
    return await open(path, "wx");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "EEXIST") {
      throw new VhiveError("ERR_VALIDATION", `${dir} already has ${name}: trace files are never overwritten`, {
        remedy: "write into an empty directory (or another --day), or remove the day's three files first",
      });
    }
    throw error;
  }
}

const MINUTE_HEADER = Array.from({ length: MINUTES_PER_DAY }, (_, i) => String(i + 1));

export async function writeAzureTrace(dir: string, day: number, functions: Iterable<TraceFileFunction>): Promise<WrittenTrace> {
  await mkdir(dir, { recursive: true });
  const names = traceFiles(day);
  const paths = { invocations: join(dir, names.invocations), durations: join(dir, names.durations), memory: join(dir, names.memory) };
  const created = new UndoStack();
  const handles: FileHandle[] = [];
  try {
    const files = {} as Record<keyof typeof paths, LineFile>;
    for (const key of ["invocations", "durations", "memory"] as const) {
      const handle = await create(paths[key], names[key], dir);
      handles.push(handle);
      created.defer(`remove ${paths[key]}`, () => rm(paths[key], { force: true }));
      files[key] = new LineFile(handle);
    }
    await files.invocations.line(["HashOwner", "HashApp", "HashFunction", "Trigger", ...MINUTE_HEADER]);
    await files.durations.line(["HashOwner", "HashApp", "HashFunction", "Average", "Count", "Minimum", "Maximum", ...DURATION_PERCENTILES.map(([, column]) => column)]);
    await files.memory.line(["HashOwner", "HashApp", "SampleCount", "AverageAllocatedMb", ...MEMORY_PERCENTILES.map(([, column]) => column)]);
    const apps = new Set<string>();
    let written = 0;
    for (const f of functions) {
      const counts = Array.from({ length: MINUTES_PER_DAY }, (_, i) => f.counts[i] ?? 0);
      await files.invocations.line([f.owner, f.app, f.fn, f.trigger, ...counts]);
      const total = counts.reduce((a, b) => a + b, 0);
      const d = f.durationMs;
      await files.durations.line([f.owner, f.app, f.fn, f.averageMs ?? d[3], total, d[0], d[6], ...d]);
      if (!apps.has(f.app)) {
        apps.add(f.app);
        await files.memory.line([f.owner, f.app, f.memorySamples ?? 1000, f.averageMb ?? f.memoryMb[3], ...f.memoryMb]);
      }
      written++;
    }
    for (const file of Object.values(files)) await file.flush();
    created.release();
    return { files: [paths.invocations, paths.durations, paths.memory], functions: written, apps: apps.size };
  } finally {
    for (const handle of handles) await handle.close();
    await created.unwind();
  }
}
