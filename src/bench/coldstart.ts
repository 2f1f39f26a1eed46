/**
 * Cold starts of one function in one memory mode, as rows: the unit every experiment is built
 * from. Each restore starts with the snapshot's, its working set's and the image's files
 * evicted from the page cache, so memory comes from disk as on a real cold start.
 */
import type { StoredImage } from "../image/index.js";
import { evictRestoreFiles, restoreOnce, type Host, type RestoreResult } from "../start/index.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import { restoreOptionsOf, type RestoreBenchMode } from "./rows.js";

export interface ColdStartRow {
  function: string;
  /** The mode asked for (a prefetch variant's result.mode is prefetch). */
  mode: RestoreBenchMode;
  rep: number;
  /** How many cold starts ran at once (1 = alone). */
  concurrency: number;
  result: RestoreResult;
}

export interface ColdStartOptions {
  data?: string;
  /** How long one invocation may take (default 30 s). */
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
}

export async function coldStart(host: Host, image: StoredImage, snapshot: StoredSnapshot, mode: RestoreBenchMode, rep: number, options: ColdStartOptions = {}): Promise<ColdStartRow> {
  const result = await restoreOnce(host, snapshot, options.data, { ...restoreOptionsOf(mode), evict: true, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  return { function: image.name, mode, rep, concurrency: 1, result };
}

/**
 * `count` cold starts at once, after one eviction that ends before any of them starts (they
 * share the page cache, as on a busy host: what one reads from disk the others may find there).
 */
export async function concurrentColdStarts(host: Host, image: StoredImage, snapshot: StoredSnapshot, mode: RestoreBenchMode, count: number, rep: number, options: ColdStartOptions = {}): Promise<ColdStartRow[]> {
  const restore = restoreOptionsOf(mode);
  await evictRestoreFiles(host, snapshot);
  const results = await Promise.all(Array.from({ length: count }, () => restoreOnce(host, snapshot, options.data, { ...restore, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs })));
  return results.map((result) => ({ function: image.name, mode, rep, concurrency: count, result }));
}
