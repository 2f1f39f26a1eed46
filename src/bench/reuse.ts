/**
 * Working-set reuse across inputs (the paper's finding that over 97% of the pages one
 * invocation touches are the same for another input, for 7 of 10 functions): for each function,
 * record the working set with input A, with input B, and with A again (how much two recordings
 * of the same input differ: the noise), keep a copy of each ws.index and trace, and compare the
 * page sets. Also the working set's share of the guest memory the function touched at all: the
 * non-zero pages of the snapshot's memory file.
 *
 * Files written to the output directory: ws/<function>-<A|B|A2>.index and .trace (the
 * formats of native/include/vhive_uffd.h).
 */
import { copyFile, mkdir, open } from "node:fs/promises";
import { join } from "node:path";
import type { StoredImage } from "../image/index.js";
import { loadWorkingSet, pickEncoding, readOffsets } from "../memory/index.js";
import { restoreOnce, type Host, usableSnapshot } from "../start/index.js";
import { VhiveError } from "../shared/errors.js";

export interface PageOverlap {
  aPages: number;
  bPages: number;
  commonPages: number;
  /** |A ∩ B| / |A| (0 when A is empty). */
  shareOfA: number;
  /** |A ∩ B| / |B|. */
  shareOfB: number;
}

/** How many page offsets two working sets share (duplicates count once). */
export function pageOverlap(a: readonly bigint[], b: readonly bigint[]): PageOverlap {
  const setA = new Set(a);
  const setB = new Set(b);
  let commonPages = 0;
  for (const offset of setA) if (setB.has(offset)) commonPages++;
  return {
    aPages: setA.size,
    bPages: setB.size,
    commonPages,
    shareOfA: setA.size === 0 ? 0 : commonPages / setA.size,
    shareOfB: setB.size === 0 ? 0 : commonPages / setB.size,
  };
}

/** Pages of a memory file that hold anything but zeros (the guest touched them), and all its pages. */
export async function countNonZeroPages(path: string, pageSizeBytes: number): Promise<{ nonZeroPages: number; totalPages: number }> {
  const pagesPerChunk = Math.max(1, Math.floor((8 << 20) / pageSizeBytes));
  const chunk = Buffer.alloc(pagesPerChunk * pageSizeBytes);
  const zero = Buffer.alloc(pageSizeBytes);
  await using file = await open(path, "r");
  let nonZeroPages = 0;
  let totalPages = 0;
  for (let position = 0; ; ) {
    const { bytesRead } = await file.read(chunk, 0, chunk.length, position);
    if (bytesRead === 0) break;
    for (let at = 0; at < bytesRead; at += pageSizeBytes) {
      totalPages++;
      if (!chunk.subarray(at, Math.min(at + pageSizeBytes, bytesRead)).equals(zero.subarray(0, Math.min(pageSizeBytes, bytesRead - at)))) nonZeroPages++;
    }
    position += bytesRead;
  }
  return { nonZeroPages, totalPages };
}

/** Where a function's two inputs come from. */
export type ReuseInputs = { a: string; b: string; source: "option" | "recipe" | "greeting" } | { skip: string };

/**
 * The inputs to compare: the ones asked for, else the recipe's first two, else (for a gRPC
 * function that declares no inputs, such as helloworld, which greets any name) two names.
 */
export function reuseInputs(config: { inputs?: string[]; protocol: string }, asked?: readonly string[]): ReuseInputs {
  if (asked && asked.length >= 2) return { a: asked[0]!, b: asked[1]!, source: "option" };
  const inputs = config.inputs ?? [];
  if (inputs.length >= 2) return { a: inputs[0]!, b: inputs[1]!, source: "recipe" };
  if (inputs.length === 0 && config.protocol === "grpc") return { a: "world", b: "vhive reuse", source: "greeting" };
  return { skip: `its recipe declares ${inputs.length === 0 ? "no inputs" : "one input"}; give two with --inputs A,B` };
}

export interface Recording {
  label: "A" | "B" | "A2";
  input: string;
  pages: number;
  bytes: number;
  /** The record-mode cold start, ms. */
  totalMs: number;
  indexFile: string;
  traceFile: string;
  reply: string;
}

export interface ReuseFunctionResult {
  function: string;
  snapshotId: string;
  inputs: { a: string; b: string };
  pageSizeBytes: number;
  recordings: Recording[];
  /** A against B: the paper's figure. */
  aVsB: PageOverlap;
  /** A against A recorded again: what differs between two runs of the same input. */
  aVsA2: PageOverlap;
  /** Non-zero pages of the snapshot's memory file: what the guest ever touched. */
  touchedPages: number;
  /** All pages of guest memory. */
  memPages: number;
  /** |A| / touchedPages. */
  wsShareOfTouched: number;
}

export interface ReuseReport {
  experiment: "reuse";
  accel: string;
  startedAt: string;
  functions: ReuseFunctionResult[];
  skipped: { function: string; reason: string }[];
}

export interface ReuseOptions {
  outDir: string;
  /** Input A and B for every function (default: each recipe's). */
  inputs?: readonly string[];
  /** How long one invocation may take (default 30 s). */
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (done: number, total: number, what: string) => void;
}

export async function benchReuse(host: Host, images: readonly StoredImage[], options: ReuseOptions): Promise<ReuseReport> {
  const report: ReuseReport = { experiment: "reuse", accel: host.accel, startedAt: new Date().toISOString(), functions: [], skipped: [] };
  const wsDir = join(options.outDir, "ws");
  await mkdir(wsDir, { recursive: true });
  const plans = images.map((image) => ({ image, inputs: reuseInputs(image.config, options.inputs) }));
  const total = plans.filter((plan) => !("skip" in plan.inputs)).length * 3;
  let done = 0;
  for (const { image, inputs } of plans) {
    if ("skip" in inputs) {
      report.skipped.push({ function: image.name, reason: inputs.skip });
      continue;
    }
    options.onProgress?.(done, total, `${image.name}: snapshot`);
    const snapshot = await usableSnapshot(host, image, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
    const recordings: Recording[] = [];
    // A last, so the snapshot keeps the working set of its default input for later prefetches.
    for (const [label, input] of [["A", inputs.a], ["B", inputs.b], ["A2", inputs.a]] as const) {
      options.onProgress?.(done, total, `${image.name}: record with input ${label}`);
      const result = await restoreOnce(host, snapshot, input, { mode: "record", evict: true, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
      const recorded = await loadWorkingSet(snapshot);
      if (!recorded) throw new VhiveError("ERR_SNAPSHOT_CORRUPT", `snapshot ${snapshot.meta.id} has no working set after recording one`);
      const indexFile = join(wsDir, `${image.name}-${label}.index`);
      const traceFile = join(wsDir, `${image.name}-${label}.trace`);
      await copyFile(pickEncoding(recorded)!.indexPath, indexFile);
      await copyFile(recorded.tracePath, traceFile);
      recordings.push({ label, input, pages: result.wsPages, bytes: result.wsBytes, totalMs: result.totalMs, indexFile, traceFile, reply: result.text });
      done++;
    }
    const workingSet = await loadWorkingSet(snapshot);
    if (!workingSet) throw new VhiveError("ERR_SNAPSHOT_CORRUPT", `snapshot ${snapshot.meta.id} has no working set after recording one`);
    const pageSizeBytes = workingSet.meta.pageSize;
    const [a, b, a2] = await Promise.all(recordings.map((recording) => readOffsets(recording.indexFile)));
    options.onProgress?.(done, total, `${image.name}: counting touched pages`);
    const { nonZeroPages, totalPages } = await countNonZeroPages(snapshot.memPath, pageSizeBytes);
    const aVsB = pageOverlap(a!, b!);
    report.functions.push({
      function: image.name,
      snapshotId: snapshot.meta.id,
      inputs: { a: inputs.a, b: inputs.b },
      pageSizeBytes,
      recordings,
      aVsB,
      aVsA2: pageOverlap(a!, a2!),
      touchedPages: nonZeroPages,
      memPages: totalPages,
      wsShareOfTouched: nonZeroPages === 0 ? 0 : aVsB.aPages / nonZeroPages,
    });
  }
  options.onProgress?.(done, total, "done");
  return report;
}
