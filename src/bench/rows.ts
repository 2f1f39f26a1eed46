/**
 * One row per measured start, the unit every experiment writes (CSV, JSON) and every report
 * table and chart is computed from. Warm invocations, cold boots and snapshot restores in any
 * memory mode share the row shape; figures a kind of start does not measure are null.
 */
import { BOOT_PHASES, RESTORE_PHASES } from "../metrics/index.js";
import type { WsCodec, WsRead } from "../memory/index.js";
import type { MemoryMode, RestoreResult, RunResult } from "../start/index.js";
import { median, summarize, type Summary } from "./stats.js";

/**
 * prefetch with one of its settings pinned, so that one run compares them: the working set's
 * encoding (raw: uncompressed; lz4; zstd) and how the pager reads it (direct: O_DIRECT, as REAP;
 * cached: through the page cache, shared by concurrent restores). Plain `prefetch` uses the
 * defaults of both (DEFAULT_WS_CODEC, DEFAULT_WS_READ). `prefetch-unseeded` skips the guest's
 * reseed (clones then share their randomness) and `prefetch-unchecked` the pager's page checks
 * too: only to measure what they cost.
 */
export const PREFETCH_VARIANTS = {
  "prefetch-raw": { wsCodec: "raw" },
  "prefetch-lz4": { wsCodec: "lz4" },
  "prefetch-zstd": { wsCodec: "zstd" },
  "prefetch-direct": { wsRead: "direct" },
  "prefetch-cached": { wsRead: "cached" },
  "prefetch-unseeded": { reseed: false },
  "prefetch-unchecked": { reseed: false, verifyPages: false },
} as const satisfies Record<string, { wsCodec?: WsCodec; wsRead?: WsRead; reseed?: false; verifyPages?: false }>;
export type PrefetchVariant = keyof typeof PREFETCH_VARIANTS;

/**
 * How an instance came to serve the call: already running, booted, restored in a memory mode
 * (or a prefetch variant), or restored on a pooled VMM (pool, pool-installed: pre-started
 * before the timed start).
 */
export const BENCH_MODES = [
  "warm",
  "boot",
  "vanilla",
  "vanilla-4k",
  "lazy",
  "record",
  "prefetch",
  ...(Object.keys(PREFETCH_VARIANTS) as PrefetchVariant[]),
  "floor",
  "pool",
  "pool-installed",
] as const satisfies readonly ("warm" | "boot" | MemoryMode | PrefetchVariant)[];
export type BenchMode = (typeof BENCH_MODES)[number];
/** A mode that restores a snapshot. */
export type RestoreBenchMode = Exclude<BenchMode, "warm" | "boot">;

/** A mode that restores a snapshot (everything but warm and boot). */
export const isRestoreMode = (mode: BenchMode): mode is RestoreBenchMode => mode !== "warm" && mode !== "boot";

/** A prefetch of the working set, plain or a variant. */
export const isPrefetchMode = (mode: BenchMode): boolean => mode === "prefetch" || mode in PREFETCH_VARIANTS;

/** The restore a bench mode stands for. */
export function restoreOptionsOf(mode: RestoreBenchMode): { mode: MemoryMode; wsCodec?: WsCodec; wsRead?: WsRead; reseed?: false; verifyPages?: false } {
  return mode in PREFETCH_VARIANTS ? { mode: "prefetch", ...PREFETCH_VARIANTS[mode as PrefetchVariant] } : { mode: mode as MemoryMode };
}

/** Phases of every kind of start, in the order they happen; a row carries the ones its start has. */
export const ALL_PHASES = [...new Set([...Object.keys(BOOT_PHASES), ...Object.keys(RESTORE_PHASES)])] as readonly string[];

/** What a cold start cost in memory; null where a start has no such figure (warm, boot). */
export interface MemoryFigures {
  /** Page faults that read guest memory (restores only). */
  faults: number | null;
  majorFaults: number | null;
  /** Read from storage by QEMU and the pager, bytes (restores only). */
  bytesRead: number | null;
  /** Pages prefetched (prefetch, floor) or recorded (record), zero pages included. */
  wsPages: number | null;
  /** Those pages' bytes in memory: what working-set format 2 stored on disk. */
  wsBytes: number | null;
  /** The working set on disk as prefetch read it or record wrote it (format 3: zero pages left out, maybe compressed). */
  wsDiskBytes: number | null;
  /** Read from storage by the pager alone (userfaultfd modes). */
  pagerBytesRead: number | null;
  fetchWsMs: number | null;
  installWsMs: number | null;
  /** The pager checking the pages it read against their checksums (within fetch and install). */
  verifyMs: number | null;
  /** QEMU's threads during the cold start, on a core and waiting for one (restores only; absent in rows of older runs). */
  qemuCpuMs?: number | null;
  qemuWaitMs?: number | null;
  /** What the pooled VMM held while it waited, QEMU and its pager: PSS and private bytes (pool modes only; absent in rows of older runs). */
  poolIdlePssBytes?: number | null;
  poolIdlePrivateBytes?: number | null;
}

export interface BenchRow extends MemoryFigures {
  function: string;
  mode: BenchMode;
  /** 1-based repetition. */
  rep: number;
  /** Starts running at once (1 = alone). */
  concurrency: number;
  accel: string;
  /** Time to first response: QEMU spawn until the reply (warm: the call alone; pool modes: from taking the pooled VMM), ms. */
  totalMs: number;
  /** The start's phases, ms (BOOT_PHASES or RESTORE_PHASES keys; warm has invokeMs only). */
  breakdown: Record<string, number>;
  /** The working set's encoding (prefetch, record) and how it was read (prefetch); null otherwise. */
  wsCodec?: WsCodec | null;
  wsRead?: WsRead | null;
  /** One-line summary of the reply, so a wrong answer shows. */
  reply: string;
}

export function restoreRow(fn: string, mode: BenchMode, rep: number, concurrency: number, result: RestoreResult): BenchRow {
  return {
    function: fn,
    mode,
    rep,
    concurrency,
    accel: result.accel,
    totalMs: result.totalMs,
    breakdown: { ...result.breakdown },
    faults: result.faults,
    majorFaults: result.majorFaults,
    bytesRead: result.bytesRead,
    wsPages: result.wsPages,
    wsBytes: result.wsBytes,
    wsDiskBytes: result.wsCodec ? result.wsDiskBytes : null,
    pagerBytesRead: result.pagerBytesRead,
    wsCodec: result.wsCodec ?? null,
    wsRead: result.wsRead ?? null,
    fetchWsMs: result.fetchWsMs,
    installWsMs: result.installWsMs,
    verifyMs: result.verifyMs,
    qemuCpuMs: result.qemuCpuMs,
    qemuWaitMs: result.qemuWaitMs,
    poolIdlePssBytes: result.pooled?.idle.pssBytes ?? null,
    poolIdlePrivateBytes: result.pooled?.idle.privateBytes ?? null,
    reply: result.text,
  };
}

/** Boot and warm starts read no snapshot memory. */
const NO_MEMORY_FIGURES: MemoryFigures = {
  faults: null,
  majorFaults: null,
  bytesRead: null,
  wsPages: null,
  wsBytes: null,
  wsDiskBytes: null,
  pagerBytesRead: null,
  fetchWsMs: null,
  installWsMs: null,
  verifyMs: null,
  qemuCpuMs: null,
  qemuWaitMs: null,
  poolIdlePssBytes: null,
  poolIdlePrivateBytes: null,
};

export function bootRow(fn: string, rep: number, result: RunResult): BenchRow {
  return {
    function: fn,
    mode: "boot",
    rep,
    concurrency: 1,
    accel: result.accel,
    totalMs: result.totalMs,
    breakdown: { ...result.breakdown },
    ...NO_MEMORY_FIGURES,
    reply: result.text,
  };
}

export function warmRow(fn: string, rep: number, accel: string, invokeMs: number, reply: string): BenchRow {
  return {
    function: fn,
    mode: "warm",
    rep,
    concurrency: 1,
    accel,
    totalMs: invokeMs,
    breakdown: { invokeMs },
    ...NO_MEMORY_FIGURES,
    reply,
  };
}

/** The medians of one function in one mode at one concurrency. */
export interface ModeSummary extends MemoryFigures {
  function: string;
  mode: BenchMode;
  concurrency: number;
  totalMs: Summary;
  /** Median of each phase. */
  breakdown: Record<string, number>;
}

function medianOrNull(values: readonly (number | null | undefined)[]): number | null {
  const present = values.filter((value): value is number => typeof value === "number");
  return present.length === 0 ? null : median(present);
}

/** Rows grouped by (function, mode, concurrency), in first-seen order. */
export function groupRows(rows: readonly BenchRow[]): BenchRow[][] {
  const groups = new Map<string, BenchRow[]>();
  for (const row of rows) {
    const key = `${row.function}\0${row.mode}\0${row.concurrency}`;
    const group = groups.get(key);
    if (group) group.push(row);
    else groups.set(key, [row]);
  }
  return [...groups.values()];
}

/** Group rows by (function, mode, concurrency), in first-seen order, with medians. */
export function summarizeRows(rows: readonly BenchRow[]): ModeSummary[] {
  return groupRows(rows).map((group) => {
    const first = group[0]!;
    const phases = ALL_PHASES.filter((phase) => group.some((row) => phase in row.breakdown));
    const pick = (field: keyof MemoryFigures) => medianOrNull(group.map((row) => row[field] ?? null));
    return {
      function: first.function,
      mode: first.mode,
      concurrency: first.concurrency,
      totalMs: summarize(group.map((row) => row.totalMs)),
      breakdown: Object.fromEntries(phases.map((phase) => [phase, median(group.flatMap((row) => (phase in row.breakdown ? [row.breakdown[phase]!] : [])))])),
      faults: pick("faults"),
      majorFaults: pick("majorFaults"),
      bytesRead: pick("bytesRead"),
      wsPages: pick("wsPages"),
      wsBytes: pick("wsBytes"),
      wsDiskBytes: pick("wsDiskBytes"),
      pagerBytesRead: pick("pagerBytesRead"),
      fetchWsMs: pick("fetchWsMs"),
      installWsMs: pick("installWsMs"),
      verifyMs: pick("verifyMs"),
      qemuCpuMs: pick("qemuCpuMs"),
      qemuWaitMs: pick("qemuWaitMs"),
      poolIdlePssBytes: pick("poolIdlePssBytes"),
      poolIdlePrivateBytes: pick("poolIdlePrivateBytes"),
    };
  });
}

/** The summary of one function in one mode, alone (concurrency 1). */
export function findSummary(summaries: readonly ModeSummary[], fn: string, mode: BenchMode, concurrency = 1): ModeSummary | undefined {
  return summaries.find((s) => s.function === fn && s.mode === mode && s.concurrency === concurrency);
}
