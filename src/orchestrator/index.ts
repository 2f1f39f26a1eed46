/** Starting function instances: boot, snapshot and restore. */
export { openHost, probeHostAccel, type Host, type OpenHostOptions } from "./host.js";
export { bootInstance, memMibFor, DEFAULT_MEM_MIB, DEFAULT_VCPUS, DEFAULT_READY_TIMEOUT_MS, type BootOptions, type StartOptions } from "./boot.js";
export { Instance, type MemoryMode, type BootTimes, type RestoreTimes, type StartRecord, type BootStart, type RestoreStart } from "./instance.js";
export { runOnce, defaultRequestData, type RunResult } from "./run.js";
export { createSnapshot, type CreateSnapshotOptions } from "./snapshot-create.js";
export { restoreInstance, checkSnapshot, resolveMode, saveRecordedWorkingSet, RESTORE_MODES, type RestoreMode, type RestoreOptions } from "./restore.js";
export { restoreOnce, type RestoreResult } from "./restore-once.js";
export type { RestoreBreakdown } from "../metrics/index.js";
export { saveSnapshot, type SaveSnapshotInfo } from "./snapshot-create.js";
export { SnapshotCapture } from "./snapshot-capture.js";
export { MemoryBudget } from "./budget.js";
export { FunctionPool, type PoolOptions, type PoolInvocation, type InstanceInfo, type InstanceState } from "./pool.js";
export type { InstanceStarter, PoolInstance, StartInfo, ColdStartKind } from "./pool-types.js";
export { VmStarter } from "./vm-starter.js";
export { Functions, DEPLOY_DEFAULTS, type DeploySpec, type ImageResolver, type Invocation, type InvocationObserver, type FunctionsOptions } from "./functions.js";
export { recoverState, claimStateDir, leftoverProcesses, type RecoveryReport } from "./recovery.js";
export { findUsableSnapshot, usableSnapshot, type FindSnapshotOptions } from "./snapshot-find.js";
