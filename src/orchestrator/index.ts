/** The daemon's policy: function registry, instance pools, keep-alive, admission, recovery. */
export { MemoryBudget, type Reclaimer } from "./budget.js";
export { FunctionPool, type PoolOptions, type PoolInvocation, type InstanceInfo, type InstanceState } from "./pool.js";
export type { InstanceStarter, PoolInstance, StartInfo, ColdStartKind, PrestartedVmm } from "./pool-types.js";
export { VmStarter } from "./vm-starter.js";
export { LifetimeLog, MAX_LIFETIMES, type InstanceLifetime } from "./lifetimes.js";
export { createKeepalivePolicy, FixedKeepalive, HybridHistogramKeepalive, HYBRID_DEFAULTS, forecastNext, MIN_ARIMA_SAMPLES, type KeepalivePolicy, type IdleDecision, type HybridOptions } from "./keepalive/index.js";
export { Functions, DEPLOY_DEFAULTS, type DeploySpec, type ImageResolver, type Invocation, type InvocationObserver, type FunctionsOptions } from "./functions.js";
export { recoverState, claimStateDir, leftoverProcesses, type RecoveryReport } from "./recovery.js";
