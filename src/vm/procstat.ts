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

/** /proc/<pid>/task/<tid>/schedstat: nanoseconds on a core, nanoseconds waiting on a runqueue, timeslices. */
export function parseSchedstat(schedstat: string): ProcessCpu {
  const [run, wait] = schedstat.trim().split(/\s+/).map(Number);
  return { runMs: (run ?? Number.NaN) / 1e6, waitMs: (wait ?? Number.NaN) / 1e6 };
}

/** Summed over the threads alive now (a thread that already exited is not counted). */
export async function processCpu(pid: number): Promise<ProcessCpu> {
  const tasks = await readdir(`/proc/${pid}/task`);
  const threads = await Promise.all(tasks.map((tid) => readFile(`/proc/${pid}/task/${tid}/schedstat`, "utf8").then(parseSchedstat, () => ({ runMs: 0, waitMs: 0 }))));
  return threads.reduce((sum, t) => ({ runMs: sum.runMs + t.runMs, waitMs: sum.waitMs + t.waitMs }), { runMs: 0, waitMs: 0 });
}
