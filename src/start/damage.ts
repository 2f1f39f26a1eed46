/**
 * Setting damage aside, for every front end that restores snapshots (the daemon, the containerd
 * shim): a working set that fails its checksums is moved aside, so the next REAP start records a
 * new one; a damaged memory file, checksum file or device state quarantines the snapshot (kept for
 * inspection, listed as damaged), so the function boots and makes a new one. Idempotent.
 */
import { moveWorkingSetAside, type WorkingSet } from "../memory/index.js";
import { messageOf, type SnapshotCorruptError } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { StatePaths } from "../shared/paths.js";
import { SnapshotStore, type StoredSnapshot } from "../snapshot/index.js";

/**
 * Do it, and say what was done, for the record of the request or container that found it.
 * `workingSet` is the one the restore used, if known: a newer one recorded since is left alone.
 */
export async function setAsideDamage(paths: StatePaths, snapshot: StoredSnapshot, workingSet: WorkingSet | undefined, error: SnapshotCorruptError, log: Log): Promise<string> {
  const id = snapshot.meta.id;
  if (error.part === "working-set") {
    const movedTo = await moveWorkingSetAside(snapshot, workingSet?.meta.recordedAt, error.message).catch((moveError: unknown) => {
      log.error("moving a damaged working set aside failed", { snapshot: id, error: messageOf(moveError) });
      return undefined;
    });
    log.warn("damaged working set moved aside", { snapshot: id, error: error.message, movedTo });
    return `${error.message}; the working set was moved aside${movedTo ? ` to ${movedTo}` : ""} and is recorded again`;
  }
  log.warn("damaged snapshot quarantined: it is kept on disk, and the function boots and makes a new one", { snapshot: id, error: error.message });
  await new SnapshotStore(paths).quarantine(snapshot, error.message).catch((quarantineError: unknown) => {
    log.error("quarantining a damaged snapshot failed", { snapshot: id, error: messageOf(quarantineError) });
  });
  return `${error.message}; the snapshot was quarantined (kept in ${snapshot.dir}) and the function boots and makes a new one`;
}
