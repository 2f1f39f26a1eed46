/**
 * The paper's figures, to print beside vhive's. Source: D. Ustiugov, P. Petrov, M. Kogias,
 * E. Bugnion, B. Grot, "Benchmarking, Analysis, and Optimization of Serverless Function
 * Snapshots", ASPLOS 2021 (the vHive/REAP paper), as tabulated in the project's background
 * notes (docs/background.md of the shared notes). Host: Xeon E5-2680 v3, SATA SSD (850 MB/s),
 * Firecracker under KVM, 1 vCPU and 256 MiB per function, page cache flushed before each run.
 *
 * The paper's "vanilla" is Firecracker's lazy mmap of the memory file, one 4 KiB read per
 * fault: vhive's `vanilla-4k`. Its "REAP" is a cold start with the working set prefetched:
 * vhive's `prefetch`.
 */
import type { BenchMode } from "./rows.js";

export interface PaperFunction {
  /** Memory-resident instance: invocation latency, ms. */
  warmMs: number;
  /** Cold start from a snapshot, pages faulted in lazily, ms. */
  vanillaMs: number;
  /** Cold start with REAP's prefetched working set, ms. */
  reapMs: number;
  /** vanillaMs / reapMs as the paper prints it. */
  speedup: number;
  /** Working set of one invocation, MB. */
  wsMb: number;
}

export const PAPER_FUNCTIONS = {
  helloworld: { warmMs: 1, vanillaMs: 232, reapMs: 60, speedup: 3.9, wsMb: 8 },
  chameleon: { warmMs: 29, vanillaMs: 437, reapMs: 97, speedup: 4.5, wsMb: 13 },
  pyaes: { warmMs: 3, vanillaMs: 309, reapMs: 55, speedup: 5.6, wsMb: 8 },
  image_rotate: { warmMs: 37, vanillaMs: 594, reapMs: 207, speedup: 2.9, wsMb: 24 },
  json_serdes: { warmMs: 27, vanillaMs: 535, reapMs: 127, speedup: 4.2, wsMb: 22 },
  lr_serving: { warmMs: 2, vanillaMs: 647, reapMs: 66, speedup: 9.8, wsMb: 10 },
  cnn_serving: { warmMs: 192, vanillaMs: 1424, reapMs: 237, speedup: 6.0, wsMb: 28 },
  rnn_serving: { warmMs: 25, vanillaMs: 503, reapMs: 82, speedup: 6.1, wsMb: 11 },
  lr_training: { warmMs: 4991, vanillaMs: 8057, reapMs: 6090, speedup: 1.3, wsMb: 99 },
  video_processing: { warmMs: 1476, vanillaMs: 2642, reapMs: 2540, speedup: 1.04, wsMb: 32 },
} as const satisfies Record<string, PaperFunction>;

export type PaperFunctionName = keyof typeof PAPER_FUNCTIONS;

export function paperFunction(name: string): PaperFunction | undefined {
  return Object.hasOwn(PAPER_FUNCTIONS, name) ? PAPER_FUNCTIONS[name as PaperFunctionName] : undefined;
}

/** Concurrent helloworld cold starts: level -> median latency, ms. */
export const PAPER_CONCURRENCY: readonly { level: number; vanillaMs: number; reapMs: number }[] = [
  { level: 1, vanillaMs: 232, reapMs: 60 },
  { level: 2, vanillaMs: 405, reapMs: 96 },
  { level: 4, vanillaMs: 442, reapMs: 149 },
  { level: 8, vanillaMs: 745, reapMs: 185 },
  { level: 16, vanillaMs: 1256, reapMs: 522 },
  { level: 32, vanillaMs: 2787, reapMs: 730 },
  { level: 64, vanillaMs: 6435, reapMs: 1063 },
];

/** The paper's other headline figures. */
export const PAPER_FACTS = {
  /** Share of a working set's pages common to invocations with different inputs: at least this for 7 of 10 functions. */
  reuseShareMost: 0.97,
  /** ... and at least this for the rest. */
  reuseShareAll: 0.76,
  /** Working set as a share of the booted footprint (148-256 MB): 3-39%, 9% on average. */
  wsShareMin: 0.03,
  wsShareMax: 0.39,
  wsShareAverage: 0.09,
  /** The record phase is this much slower than a vanilla cold start, on average. */
  recordOverhead: 0.28,
  /** Page faults REAP removes. */
  faultsRemoved: 0.97,
  /** Average cold-start speedup of REAP over vanilla. */
  averageSpeedup: 3.7,
  /** Loading the VMM and reconnecting to the function, ms. */
  vmmAndConnectMs: [156, 317] as const,
  /** Helloworld with REAP: reading its working set, ms, at 533 MB/s. */
  helloworldWsFetchMs: 15,
} as const;

/** The paper's figure for a function in a mode, if it has one (vanilla-4k is its vanilla, prefetch its REAP). */
export function paperLatencyMs(fn: string, mode: BenchMode): number | undefined {
  const paper = paperFunction(fn);
  if (!paper) return undefined;
  if (mode === "warm") return paper.warmMs;
  if (mode === "vanilla-4k") return paper.vanillaMs;
  if (mode === "prefetch") return paper.reapMs;
  return undefined;
}
