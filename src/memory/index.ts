/** REAP memory management: the pager process, and the working sets it records and prefetches. */
export { Pager, shimEnv, type PagerMode, type PagerStats, type PagerOptions, type WorkingSetFiles } from "./pager.js";
export { loadWorkingSet, commitWorkingSet, removeWorkingSet, moveWorkingSetAside, workingSetPaths, readOffsets, WORKING_SET_FORMAT, type WorkingSet, type WorkingSetMeta } from "./working-set.js";
