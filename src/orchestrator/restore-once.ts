/** `vhive snapshot restore`: restore a snapshot, invoke the function once, stop. */
import { roundMs } from "../metrics/index.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import { processIo } from "../vm/index.js";
import type { Host } from "./host.js";
import { restoreInstance, type RestoreMode, type RestoreOptions } from "./restore.js";
import { defaultRequestData } from "./run.js";

export interface RestoreBreakdown {
  loadVmmMs: number;
  restoreMs: number;
  resumeMs: number;
  connectMs: number;
  /** The invocation itself. */
  functionMs: number;
}

export interface RestoreResult {
  snapshot: { id: string; function: string };
  mode: RestoreMode;
  accel: string;
  response: Record<string, unknown>;
  text: string;
  /** QEMU spawn until the reply arrived: the cold start as a client sees it. */
  totalMs: number;
  breakdown: RestoreBreakdown;
  /** Of the QEMU process, from its start to the reply. */
  majorFaults: number;
  bytesRead: number;
}

export async function restoreOnce(host: Host, snapshot: StoredSnapshot, data?: string, options: RestoreOptions & { invokeTimeoutMs?: number } = {}): Promise<RestoreResult> {
  await using instance = await restoreInstance(host, snapshot, options);
  const result = await instance.invoke(data ?? defaultRequestData(instance.image), { timeoutMs: options.invokeTimeoutMs, signal: options.signal });
  const totalMs = performance.now() - instance.vm.timeline.spawnAt;
  const io = await processIo(instance.vm.pid!);
  const { loadVmmMs, restoreMs, resumeMs, connectMs } = instance.start.times;
  return {
    snapshot: { id: snapshot.meta.id, function: snapshot.meta.function },
    mode: options.mode ?? "vanilla",
    accel: host.accel,
    response: result.response,
    text: result.text,
    totalMs: roundMs(totalMs),
    breakdown: {
      loadVmmMs: roundMs(loadVmmMs),
      restoreMs: roundMs(restoreMs),
      resumeMs: roundMs(resumeMs),
      connectMs: roundMs(connectMs),
      functionMs: roundMs(result.ms),
    },
    majorFaults: io.majorFaults,
    bytesRead: io.bytesRead,
  };
}
