/**
 * Latency phases, in one place (as vHive's metrics/metrics.go). Every breakdown vhive reports
 * uses these keys, in milliseconds.
 */
export const BOOT_PHASES = {
  qemuStartMs: "QEMU spawn to monitor ready",
  kernelBootMs: "vCPUs resumed to guest init started (kernel boot)",
  initMs: "guest init to function entrypoint started (modules, network, disk)",
  functionReadyMs: "entrypoint started to function answering (runtime start-up)",
  invokeMs: "the invocation itself",
} as const;

export type BootPhase = keyof typeof BOOT_PHASES;
export type BootBreakdown = Record<BootPhase, number>;

export const RESTORE_PHASES = {
  loadVmmMs: "QEMU spawn to monitor ready (load the VMM)",
  restoreMs: "device state loaded from the snapshot",
  // prefetch waits before resume (counted in its total); the floor installs everything before QEMU maps memory (left out of its total)
  memoryWaitMs: "waiting for the pager to install the working set (prefetch, floor, pool)",
  resumeMs: "vCPUs resumed",
  reseedMs: "the guest's CRNG reseeded with host entropy and its after-restore hooks run",
  connectMs: "reseeded to the function answering on a new connection",
  functionMs: "the invocation itself (guest memory faulted in on the way)",
} as const;

export type RestorePhase = keyof typeof RESTORE_PHASES;
export type RestoreBreakdown = Record<RestorePhase, number>;

/** Round to 0.1 ms for reports. */
export function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
