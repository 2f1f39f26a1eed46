/**
 * Start paths: how one function instance comes to be, one module per start kind (boot.ts,
 * restore.ts in every memory mode, capture.ts for a snapshot), with what they share in
 * instance.ts. The daemon's orchestrator and the containerd shim both start instances through
 * here; nothing in this folder knows who asked.
 */
export { openHost, probeHostAccel, type Host, type OpenHostOptions } from "./host.js";
export {
  Instance,
  DEFAULT_MEM_MIB,
  DEFAULT_VCPUS,
  DEFAULT_READY_TIMEOUT_MS,
  memMibFor,
  defaultRequestData,
  createClient,
  checkStart,
  isPoolMode,
  POOL_MODES,
  type PoolMode,
  type StartOptions,
  type ClientOptions,
  type MemoryMode,
  type BootTimes,
  type RestoreTimes,
  type StartRecord,
  type PooledFigures,
  type BootStart,
  type RestoreStart,
} from "./instance.js";
export { bootInstance, type BootOptions } from "./boot.js";
export { restoreInstance, checkSnapshot, evictRestoreFiles, resolveMode, saveRecordedWorkingSet, RESTORE_MODES, type RestoreMode, type RestoreOptions } from "./restore.js";
export { createSnapshot, saveSnapshot, SnapshotCapture, type CreateSnapshotOptions, type SaveSnapshotInfo } from "./capture.js";
export { findUsableSnapshot, usableSnapshot, type FindSnapshotOptions } from "./snapshot-find.js";
export { runOnce, restoreOnce, RESTORE_ONCE_MODES, type RunResult, type RestoreResult, type RestoreOnceMode, type RestoreOnceOptions, type PooledRestoreFigures } from "./once.js";
export { setAsideDamage } from "./damage.js";
export { verifySnapshot, type SnapshotVerification, type FileVerdict } from "./verify.js";
export type { RestoreBreakdown } from "../metrics/index.js";
export {
  PooledVmm,
  VmmPool,
  prestartVmm,
  restorePooled,
  type PooledMemory,
  type PrestartOptions,
  type PoolableVmm,
  type PoolBudget,
  type VmmPoolOptions,
  type VmmPoolState,
} from "./vmm-pool.js";
