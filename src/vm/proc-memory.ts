/**
 * What memory a process holds and what the host has left, from /proc:
 *
 *   /proc/<pid>/smaps_rollup  the process's mappings summed: Rss, Pss (each page divided by the
 *                             number of processes that map it), Pss_Anon / Pss_File / Pss_Shmem,
 *                             Private_Clean + Private_Dirty (pages no other process maps)
 *   /proc/<pid>/smaps         the same per mapping; guest RAM is QEMU's one mapping of exactly
 *                             the guest's size (the memory file mapped privately for vanilla,
 *                             anonymous memory for boot and the userfaultfd modes)
 *   /proc/meminfo             MemTotal and MemAvailable (what the kernel could give without swap)
 *
 * Values there are in kB (KiB); here they are bytes.
 */
import { readFile } from "node:fs/promises";

const KIB = 1024;

/** A process's memory, bytes. */
export interface ProcessMemory {
  rssBytes: number;
  pssBytes: number;
  pssAnonBytes: number;
  pssFileBytes: number;
  pssShmemBytes: number;
  /** Pages mapped by this process alone (Private_Clean + Private_Dirty). */
  privateBytes: number;
  /** Anonymous pages (private copies, never the page cache). */
  anonymousBytes: number;
}

/** Guest RAM's mapping in QEMU, bytes. */
export interface GuestRamMemory {
  sizeBytes: number;
  rssBytes: number;
  pssBytes: number;
  privateBytes: number;
  /** Anonymous pages: pages the guest wrote (vanilla), or all (boot, userfaultfd modes). */
  anonymousBytes: number;
  /** Pss of the page-cache pages mapped (vanilla: the snapshot's memory file, shared by every instance until written). */
  pageCachePssBytes: number;
  /** The file mapped, if any. */
  file: string | null;
}

export interface HostMemory {
  totalBytes: number;
  availableBytes: number;
}

/** "Key:   123 kB" lines as bytes by key. */
function kbFields(lines: readonly string[]): Record<string, number> {
  const fields: Record<string, number> = {};
  for (const line of lines) {
    const match = /^(\w+):\s+(\d+) kB$/.exec(line.trim());
    if (match) fields[match[1]!] = Number(match[2]) * KIB;
  }
  return fields;
}

function memoryOf(fields: Record<string, number>): ProcessMemory {
  const get = (key: string) => fields[key] ?? 0;
  return {
    rssBytes: get("Rss"),
    pssBytes: get("Pss"),
    pssAnonBytes: get("Pss_Anon"),
    pssFileBytes: get("Pss_File"),
    pssShmemBytes: get("Pss_Shmem"),
    privateBytes: get("Private_Clean") + get("Private_Dirty"),
    anonymousBytes: get("Anonymous"),
  };
}

export function parseSmapsRollup(text: string): ProcessMemory {
  return memoryOf(kbFields(text.split("\n")));
}

interface Mapping {
  sizeBytes: number;
  file: string | null;
  fields: Record<string, number>;
}

const MAPPING_HEADER = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/;

export function parseSmaps(text: string): Mapping[] {
  const mappings: { header: RegExpExecArray; lines: string[] }[] = [];
  for (const line of text.split("\n")) {
    const header = MAPPING_HEADER.exec(line);
    if (header) mappings.push({ header, lines: [] });
    else mappings.at(-1)?.lines.push(line);
  }
  return mappings.map(({ header, lines }) => ({
    sizeBytes: parseInt(header[2]!, 16) - parseInt(header[1]!, 16),
    file: header[3] ? header[3] : null,
    fields: kbFields(lines),
  }));
}

/** Guest RAM among a QEMU's mappings: the one mapping of exactly `memBytes`; undefined if there is not exactly one. */
export function guestRamOf(mappings: readonly Mapping[], memBytes: number): GuestRamMemory | undefined {
  const candidates = mappings.filter((mapping) => mapping.sizeBytes === memBytes);
  if (candidates.length !== 1) return undefined;
  const { sizeBytes, file, fields } = candidates[0]!;
  const memory = memoryOf(fields);
  return {
    sizeBytes,
    rssBytes: memory.rssBytes,
    pssBytes: memory.pssBytes,
    privateBytes: memory.privateBytes,
    anonymousBytes: memory.anonymousBytes,
    // Anonymous pages are this process's alone, so their Pss is their size; the rest is page cache.
    pageCachePssBytes: Math.max(0, memory.pssBytes - memory.anonymousBytes),
    file: file && !file.startsWith("[") ? file : null,
  };
}

export function parseMeminfo(text: string): HostMemory {
  const fields = kbFields(text.split("\n"));
  return { totalBytes: fields.MemTotal ?? Number.NaN, availableBytes: fields.MemAvailable ?? Number.NaN };
}

/** Reads a process's and the host's memory; an interface so that tests can fake /proc. */
export interface MemoryProbe {
  host(): Promise<HostMemory>;
  process(pid: number): Promise<ProcessMemory>;
  /** Guest RAM's mapping in a QEMU process, if it can be told apart. */
  guestRam(pid: number, memBytes: number): Promise<GuestRamMemory | undefined>;
}

export const procMemoryProbe: MemoryProbe = {
  host: async () => parseMeminfo(await readFile("/proc/meminfo", "utf8")),
  process: async (pid) => parseSmapsRollup(await readFile(`/proc/${pid}/smaps_rollup`, "utf8")),
  guestRam: async (pid, memBytes) => guestRamOf(parseSmaps(await readFile(`/proc/${pid}/smaps`, "utf8")), memBytes),
};
