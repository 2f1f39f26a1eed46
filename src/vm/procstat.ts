/** Per-process counters the cold-start breakdown reports: major page faults, bytes read from storage, CPU time. */
import { readdir, readFile } from "node:fs/promises";

export interface ProcessIo {
  /** Faults that needed I/O (/proc/<pid>/stat field 12). */
  majorFaults: number;
  /** Bytes this process caused to be read from storage, page-cache hits excluded (/proc/<pid>/io read_bytes). */
  bytesRead: number;
}

export function parseMajorFaults(stat: string): number {
  // The command name (field 2) may contain spaces and parentheses: count fields after the last ')'.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(rest[9]); // field 12 overall: state is field 3, so index 12 - 3 = 9
}

export function parseReadBytes(io: string): number {
  return Number(/^read_bytes:\s*(\d+)/m.exec(io)?.[1] ?? Number.NaN);
}

export async function processIo(pid: number): Promise<ProcessIo> {
  const [stat, io] = await Promise.all([readFile(`/proc/${pid}/stat`, "utf8"), readFile(`/proc/${pid}/io`, "utf8")]);
  return { majorFaults: parseMajorFaults(stat), bytesRead: parseReadBytes(io) };
}

/** Time a process's threads spent on a core and runnable but waiting for one, ms. */
export interface ProcessCpu {
  runMs: number;
  waitMs: number;
}

/** Per thread id, as read at one moment. */
export type ThreadsCpu = Map<string, ProcessCpu>;

/** /proc/<pid>/task/<tid>/schedstat: nanoseconds on a core, nanoseconds waiting on a runqueue, timeslices. */
export function parseSchedstat(schedstat: string): ProcessCpu {
  const [run, wait] = schedstat.trim().split(/\s+/).map(Number);
  return { runMs: (run ?? Number.NaN) / 1e6, waitMs: (wait ?? Number.NaN) / 1e6 };
}

/** The threads alive now (one that already exited is not counted). */
export async function threadsCpu(pid: number): Promise<ThreadsCpu> {
  const tasks = await readdir(`/proc/${pid}/task`);
  const read = await Promise.all(tasks.map(async (tid) => [tid, await readFile(`/proc/${pid}/task/${tid}/schedstat`, "utf8").then(parseSchedstat, () => undefined)] as const));
  return new Map(read.filter((entry): entry is readonly [string, ProcessCpu] => entry[1] !== undefined));
}

/**
 * What the threads alive at `after` did since `before` (a thread that started meanwhile counts
 * whole; one that exited meanwhile is missing from both, so it never makes the figures negative).
 */
export function cpuBetween(before: ThreadsCpu | undefined, after: ThreadsCpu): ProcessCpu {
  let runMs = 0;
  let waitMs = 0;
  for (const [tid, now] of after) {
    const then = before?.get(tid);
    runMs += now.runMs - (then?.runMs ?? 0);
    waitMs += now.waitMs - (then?.waitMs ?? 0);
  }
  return { runMs, waitMs };
}
