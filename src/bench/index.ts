/** Experiments: cold-start comparisons that print the figures the paper reports. */
export { benchBootVsRestore, usableSnapshot, type BootVsRestoreReport, type BootVsRestoreOptions } from "./boot-vs-restore.js";
export { median, summarize, medianOfFields, type Summary } from "./stats.js";
export { benchReap, benchReapFunction, REAP_MODES, type ReapReport, type FunctionReport, type ModeFigures, type ReapOptions } from "./reap.js";
export { coldStart, concurrentColdStarts, type ColdStartRow } from "./coldstart.js";
