/** REAP memory management: the pager process, and the working sets it records and prefetches. */
export { Pager, assertNativeBuilt, nativePath, shimEnv, type PagerMode, type PagerStats, type PagerOptions, type WorkingSetFiles } from "./pager.js";
export { loadWorkingSet, commitWorkingSet, removeWorkingSet, workingSetPaths, readOffsets, type WorkingSet, type WorkingSetMeta } from "./working-set.js";
