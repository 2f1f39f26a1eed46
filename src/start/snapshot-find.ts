/** Finding a snapshot a function can restore from on this host. */
import type { StoredImage } from "../image/index.js";
import { isVhiveError } from "../shared/errors.js";
import { SnapshotStore, type SnapshotMeta, type StoredSnapshot } from "../snapshot/index.js";
import type { Host } from "./host.js";
import { checkSnapshot } from "./restore.js";
import { createSnapshot, type CreateSnapshotOptions } from "./capture.js";

export interface FindSnapshotOptions {
  /** Further conditions, e.g. the guest size a deployment asks for. */
  accept?: (meta: SnapshotMeta) => boolean;
  /** Told of each snapshot of the image that failed its checks (it is kept on disk); awaited. */
  onUnusable?: (snapshot: StoredSnapshot, error: unknown) => void | Promise<void>;
}

/** The newest snapshot of the image that passes checkSnapshot (and `accept`), if any. */
export async function findUsableSnapshot(host: Host, image: StoredImage, options: FindSnapshotOptions = {}): Promise<StoredSnapshot | undefined> {
  const { snapshots } = await new SnapshotStore(host.paths).list();
  for (const snapshot of snapshots) {
    if (snapshot.meta.imageId !== image.id || (options.accept && !options.accept(snapshot.meta))) continue;
    try {
      await checkSnapshot(host, snapshot);
      return snapshot;
    } catch (error) {
      if (!isVhiveError(error, "ERR_SNAPSHOT_MISMATCH") && !isVhiveError(error, "ERR_SNAPSHOT_CORRUPT")) throw error;
      await options.onUnusable?.(snapshot, error);
    }
  }
  return undefined;
}

/** A usable snapshot of the image, made now if there is none (experiments use this). */
export async function usableSnapshot(host: Host, image: StoredImage, options: CreateSnapshotOptions = {}): Promise<StoredSnapshot> {
  return (await findUsableSnapshot(host, image)) ?? createSnapshot(host, image, options);
}
