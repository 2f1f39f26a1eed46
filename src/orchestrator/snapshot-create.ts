/**
 * Making a snapshot: boot the image with guest RAM in a shared file, wait until the function
 * answers, warm it up, then pause and save the device state. The memory file and the state file
 * are fsynced, so a later restore can evict them from the page cache and read them cold.
 */
import { stat } from "node:fs/promises";
import type { StoredImage } from "../image/index.js";
import { roundMs } from "../metrics/index.js";
import { digestFile } from "../shared/digest.js";
import { UndoStack } from "../shared/undo.js";
import { SnapshotStore, syncFile, type SnapshotMeta, type StoredSnapshot } from "../snapshot/index.js";
import { bootInstance, DEFAULT_VCPUS, memMibFor, type BootOptions } from "./boot.js";
import { fingerprintFor } from "./fingerprint.js";
import type { Host } from "./host.js";
import { defaultRequestData } from "./run.js";

export interface CreateSnapshotOptions extends Omit<BootOptions, "memoryFile" | "hostPort"> {
  /** Invocations before the snapshot, so it holds a warmed-up function (default 1). */
  warmup?: number;
  /** Request data for the warm-up invocations (default: the protocol's default). */
  warmupData?: string;
}

export async function createSnapshot(host: Host, image: StoredImage, options: CreateSnapshotOptions = {}): Promise<StoredSnapshot> {
  const memMib = memMibFor(image, options.memMib);
  const vcpus = options.vcpus ?? DEFAULT_VCPUS;
  const warmup = options.warmup ?? 1;
  const store = new SnapshotStore(host.paths);
  await using undo = new UndoStack();
  const draft = await store.draft(image.name);
  undo.defer("discard the unfinished snapshot", () => store.discard(draft));

  const instance = await bootInstance(host, image, { ...options, memMib, vcpus, memoryFile: { path: draft.memPath, share: true } });
  undo.defer("stop the VM", () => instance.vm.destroy());
  for (let i = 0; i < warmup; i++) {
    await instance.invoke(options.warmupData ?? defaultRequestData(image), { signal: options.signal });
  }
  // Close our connection first: a restored guest should not hold a connection nobody owns.
  instance.client.close();
  await instance.vm.saveState(draft.statePath);
  await instance.vm.stop();
  await syncFile(draft.memPath);
  await syncFile(draft.statePath);
  const createMs = performance.now() - instance.vm.timeline.spawnAt;

  const meta: SnapshotMeta = {
    format: 1,
    id: draft.id,
    function: image.name,
    imageId: image.id,
    createdAt: new Date().toISOString(),
    fingerprint: fingerprintFor(host, image, { memMib, vcpus }),
    guestPort: image.config.port,
    warmupInvocations: warmup,
    createMs: roundMs(createMs),
    files: {
      state: { bytes: (await stat(draft.statePath)).size, digest: await digestFile(draft.statePath) },
      mem: { bytes: (await stat(draft.memPath)).size },
    },
  };
  const snapshot = await store.commit(draft, meta);
  undo.release();
  return snapshot;
}
