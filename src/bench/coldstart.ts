/**
 * Cold starts of one function in one memory mode, as rows: the unit every experiment is built
 * from. Each restore starts with the snapshot's, its working set's and the image's files
 * evicted from the page cache, so memory comes from disk as on a real cold start.
 */
import type { StoredImage } from "../image/index.js";
import { restoreOnce, type Host, type MemoryMode, type RestoreResult } from "../start/index.js";
import type { StoredSnapshot } from "../snapshot/index.js";

export interface ColdStartRow {
  function: string;
  /** The mode asked for; reap rows say what it resolved to in `result.mode`. */
  mode: MemoryMode;
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

export async function coldStart(host: Host, image: StoredImage, snapshot: StoredSnapshot, mode: MemoryMode, rep: number, options: ColdStartOptions = {}): Promise<ColdStartRow> {
  const result = await restoreOnce(host, snapshot, options.data, { mode, evict: true, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  return { function: image.name, mode, rep, concurrency: 1, result };
}

/** `count` cold starts at once, after one eviction (they share the page cache, as on a busy host). */
export async function concurrentColdStarts(host: Host, image: StoredImage, snapshot: StoredSnapshot, mode: MemoryMode, count: number, rep: number, options: ColdStartOptions = {}): Promise<ColdStartRow[]> {
  const first = restoreOnce(host, snapshot, options.data, { mode, evict: true, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  const rest = Array.from({ length: count - 1 }, () => restoreOnce(host, snapshot, options.data, { mode, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs }));
  const results = await Promise.all([first, ...rest]);
  return results.map((result) => ({ function: image.name, mode, rep, concurrency: count, result }));
}
