/** The daemon's policy: function registry, instance pools, keep-alive, admission, recovery. */
export { MemoryBudget } from "./budget.js";
export { FunctionPool, type PoolOptions, type PoolInvocation, type InstanceInfo, type InstanceState } from "./pool.js";
export type { InstanceStarter, PoolInstance, StartInfo, ColdStartKind } from "./pool-types.js";
export { VmStarter } from "./vm-starter.js";
export { Functions, DEPLOY_DEFAULTS, type DeploySpec, type ImageResolver, type Invocation, type InvocationObserver, type FunctionsOptions } from "./functions.js";
export { recoverState, claimStateDir, leftoverProcesses, type RecoveryReport } from "./recovery.js";
