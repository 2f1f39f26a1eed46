/** Per-process counters the cold-start breakdown reports: major page faults and bytes read from storage. */
import { readFile } from "node:fs/promises";

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
