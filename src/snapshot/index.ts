/** Snapshots of function microVMs on disk: layout, metadata, fingerprints, page-cache control. */
export { SnapshotStore, type StoredSnapshot, type DamagedSnapshot, type SnapshotDraft } from "./store.js";
export { fingerprintDifferences, SnapshotMetaSchema, type Fingerprint, type SnapshotMeta } from "./meta.js";
export { evictFromPageCache, dropAllCaches, residentBytes, syncFile } from "./page-cache.js";
