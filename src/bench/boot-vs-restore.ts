/**
 * Boot versus snapshot restore, side by side: for one function, N cold boots and N cold
 * restores (vanilla, the snapshot's files evicted from the page cache), interleaved so that
 * machine noise hits both alike. Boots have the image, kernel and initramfs evicted too. The
 * figure is time to first response: QEMU spawn until the reply arrived.
 */
import type { StoredImage } from "../image/index.js";
import { restoreOnce, runOnce, usableSnapshot, type Host, type RestoreResult, type RunResult } from "../start/index.js";
import { evictFromPageCache } from "../snapshot/index.js";
import { medianOfFields, summarize, type Summary } from "./stats.js";

export interface BootVsRestoreOptions {
  reps: number;
  /** How long one invocation may take (default 30 s). */
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  /** Called after each cold start, for progress displays. */
  onRun?: (done: number, total: number, what: string) => void;
}

export interface BootVsRestoreReport {
  function: string;
  snapshotId: string;
  accel: string;
  reps: number;
  boot: { totalMs: Summary; breakdown: RunResult["breakdown"]; runs: RunResult[] };
  restore: { totalMs: Summary; breakdown: RestoreResult["breakdown"]; majorFaults: number; bytesRead: number; runs: RestoreResult[] };
  /** median boot totalMs / median restore totalMs */
  speedup: number;
}

export async function benchBootVsRestore(host: Host, image: StoredImage, options: BootVsRestoreOptions): Promise<BootVsRestoreReport> {
  const snapshot = await usableSnapshot(host, image, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs });
  const boots: RunResult[] = [];
  const restores: RestoreResult[] = [];
  const total = options.reps * 2;
  for (let rep = 0; rep < options.reps; rep++) {
    await evictFromPageCache([image.rootfsPath, host.guest.kernel.path, host.guest.initramfs.path]);
    boots.push(await runOnce(host, image, undefined, { signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs }));
    options.onRun?.(boots.length + restores.length, total, "boot");
    restores.push(await restoreOnce(host, snapshot, undefined, { evict: true, signal: options.signal, invokeTimeoutMs: options.invokeTimeoutMs }));
    options.onRun?.(boots.length + restores.length, total, "restore");
  }
  const bootTotal = summarize(boots.map((run) => run.totalMs));
  const restoreTotal = summarize(restores.map((run) => run.totalMs));
  return {
    function: image.name,
    snapshotId: snapshot.meta.id,
    accel: host.accel,
    reps: options.reps,
    boot: { totalMs: bootTotal, breakdown: medianOfFields(boots.map((run) => run.breakdown)), runs: boots },
    restore: {
      totalMs: restoreTotal,
      breakdown: medianOfFields(restores.map((run) => run.breakdown)),
      majorFaults: summarize(restores.map((run) => run.majorFaults)).median,
      bytesRead: summarize(restores.map((run) => run.bytesRead)).median,
      runs: restores,
    },
    speedup: bootTotal.median / restoreTotal.median,
  };
}
