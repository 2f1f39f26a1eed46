/** Starting function instances; today the boot path, later snapshot restore and REAP. */
export { openHost, type Host, type OpenHostOptions } from "./host.js";
export { bootInstance, Instance, DEFAULT_MEM_MIB, DEFAULT_VCPUS, DEFAULT_READY_TIMEOUT_MS, type BootOptions, type BootTimes } from "./boot.js";
export { runOnce, defaultRequestData, type RunResult } from "./run.js";
