/** REAP memory management: the pager process, and the working sets it records and prefetches. */
export { Pager, shimEnv, DEFAULT_WS_READ, WS_READS, type PagerMode, type PagerStats, type PagerOptions, type PrefetchFiles, type RecordEncoding, type WorkingSetFiles, type WsRead } from "./pager.js";
export {
  addEncoding,
  commitWorkingSet,
  DEFAULT_WS_CODEC,
  encodingPaths,
  loadWorkingSet,
  moveWorkingSetAside,
  pickEncoding,
  readOffsets,
  removeWorkingSet,
  workingSetPaths,
  WORKING_SET_FORMAT,
  WS_CODECS,
  type WorkingSet,
  type WorkingSetEncoding,
  type WorkingSetMeta,
  type WsCodec,
} from "./working-set.js";
