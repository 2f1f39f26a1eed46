/** Snapshots of function microVMs on disk: layout, metadata, fingerprints, page-cache control. */
export { SnapshotStore, type StoredSnapshot, type DamagedSnapshot, type SnapshotDraft } from "./store.js";
export { damagedFile } from "./damage.js";
export { writePageSums, checkPages, memoryUnchangedSinceVerified, stampVerified, type FileCheck } from "./checksums.js";
export { fingerprintDifferences, SnapshotMetaSchema, SNAPSHOT_FORMAT, type Fingerprint, type SnapshotMeta } from "./meta.js";
export { evictFromPageCache, evictTreeFromPageCache, dropAllCaches, residentBytes, syncFile } from "./page-cache.js";
