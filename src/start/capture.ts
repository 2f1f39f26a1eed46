/**
 * The snapshot capture start path: a VM booted with guest RAM in a snapshot draft's shared
 * memory file is paused, its device state saved, and the draft committed with its meta.json.
 * Two ways in: `vhive snapshot create` (createSnapshot: boot, warm up, save at once), and
 * SnapshotCapture, an instance that serves requests like any other and is saved as its
 * function's snapshot when it is retired (the daemon's first instance under a snapshot policy).
 * The memory file and the state file are fsynced, so a later restore can evict them from the
 * page cache and read them cold.
 */
import { stat } from "node:fs/promises";
import type { StoredImage } from "../image/index.js";
import { roundMs } from "../metrics/index.js";
import { digestFile } from "../shared/digest.js";
import { messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import { UndoStack } from "../shared/undo.js";
import { SNAPSHOT_FORMAT, SnapshotStore, stampVerified, syncFile, writePageSums, type SnapshotDraft, type SnapshotMeta, type StoredSnapshot } from "../snapshot/index.js";
import { bootInstance, type BootOptions } from "./boot.js";
import { fingerprintFor } from "./fingerprint.js";
import type { Host } from "./host.js";
import { DEFAULT_VCPUS, defaultRequestData, memMibFor, type BootStart, type Instance } from "./instance.js";

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

  const warmupData = options.warmupData ?? defaultRequestData(image);
  const firstRequest = warmup > 0 ? () => warmupData : undefined;
  const instance = await bootInstance(host, image, { ...options, memMib, vcpus, memoryFile: { path: draft.memPath, share: true }, firstRequest });
  undo.defer("stop the VM", () => instance.vm.destroy());
  for (let i = 0; i < warmup; i++) {
    await instance.invoke(warmupData, { signal: options.signal });
  }
  const snapshot = await saveSnapshot(host, store, draft, instance, { memMib, vcpus, warmupInvocations: warmup, createStartAt: instance.vm.timeline.spawnAt });
  undo.release();
  return snapshot;
}

export interface SaveSnapshotInfo {
  memMib: number;
  vcpus: number;
  /** Invocations the function served before the snapshot. */
  warmupInvocations: number;
  /** performance.now() from which meta.createMs counts. */
  createStartAt: number;
}

/**
 * Pause an instance booted into `draft` (guest RAM in draft.memPath, shared), write its device
 * state, stop it, and commit the draft with its meta.json. The caller still owns the draft if
 * this throws (discard it), and must stop the VM then too.
 */
export async function saveSnapshot(host: Host, store: SnapshotStore, draft: SnapshotDraft, instance: Instance, info: SaveSnapshotInfo): Promise<StoredSnapshot> {
  // Close our connection first: a restored guest should not hold a connection nobody owns.
  instance.client.close();
  await instance.vm.saveState(draft.statePath);
  await instance.vm.stop();
  await syncFile(draft.memPath);
  await syncFile(draft.statePath);
  const checksumStart = performance.now();
  await writePageSums(draft.memPath, draft.sumsPath);
  await stampVerified(draft.dir, draft.memPath);
  const checksumMs = performance.now() - checksumStart;
  const createMs = performance.now() - info.createStartAt;
  const meta: SnapshotMeta = {
    format: SNAPSHOT_FORMAT,
    id: draft.id,
    function: draft.function,
    imageId: instance.image.id,
    createdAt: new Date().toISOString(),
    fingerprint: fingerprintFor(host, instance.image, { memMib: info.memMib, vcpus: info.vcpus }),
    guestPort: instance.image.config.port,
    warmupInvocations: info.warmupInvocations,
    createMs: roundMs(createMs),
    checksumMs: roundMs(checksumMs),
    files: {
      state: { bytes: (await stat(draft.statePath)).size, digest: await digestFile(draft.statePath) },
      mem: { bytes: (await stat(draft.memPath)).size },
      sums: { bytes: (await stat(draft.sumsPath)).size },
    },
  };
  return store.commit(draft, meta);
}

/**
 * A function's first instance under a snapshot policy (vanilla, reap) doubles as its snapshot:
 * it is booted with guest RAM in a snapshot draft's memory file (shared), serves requests like
 * any instance, and when it is retired (keep-alive expiry, shutdown) it is paused and saved
 * instead of just stopped. If it dies or is destroyed, the draft is discarded.
 */
export class SnapshotCapture {
  readonly instance: Instance<BootStart>;
  readonly #host: Host;
  readonly #store: SnapshotStore;
  readonly #draft: SnapshotDraft;
  readonly #log: Log;
  readonly #size: { memMib: number; vcpus: number };
  #ended: Promise<StoredSnapshot | undefined> | undefined;

  private constructor(host: Host, store: SnapshotStore, draft: SnapshotDraft, instance: Instance<BootStart>, size: { memMib: number; vcpus: number }) {
    this.#host = host;
    this.#store = store;
    this.#draft = draft;
    this.instance = instance;
    this.#size = size;
    this.#log = host.log.child({ fn: draft.function, snapshot: draft.id });
  }

  /** Boot `image` for function `fn` into a new snapshot draft. */
  static async boot(host: Host, fn: string, image: StoredImage, options: BootOptions & { memMib: number; vcpus: number }): Promise<SnapshotCapture> {
    const store = new SnapshotStore(host.paths);
    const draft = await store.draft(fn);
    try {
      const instance = await bootInstance(host, image, { ...options, memoryFile: { path: draft.memPath, share: true } });
      return new SnapshotCapture(host, store, draft, instance, { memMib: options.memMib, vcpus: options.vcpus });
    } catch (error) {
      await store.discard(draft);
      throw error;
    }
  }

  /**
   * Pause and save the instance as the function's snapshot, then stop it; on failure the VM is
   * ended and the draft discarded (resolves undefined). Idempotent.
   */
  save(invocations: number): Promise<StoredSnapshot | undefined> {
    this.#ended ??= (async () => {
      const started = performance.now();
      try {
        const snapshot = await saveSnapshot(this.#host, this.#store, this.#draft, this.instance, {
          ...this.#size,
          warmupInvocations: invocations,
          createStartAt: started - this.instance.start.times.bootMs,
        });
        this.#log.info("snapshot saved", { snapshot: snapshot.meta.id, saveMs: Math.round(performance.now() - started) });
        return snapshot;
      } catch (error) {
        this.#log.warn("saving the snapshot failed; it is discarded", { error: messageOf(error) });
        await this.instance.vm.destroy();
        await this.#store.discard(this.#draft);
        return undefined;
      }
    })();
    return this.#ended;
  }

  /** End the VM at once and discard the draft. Idempotent. */
  discard(): Promise<StoredSnapshot | undefined> {
    this.#ended ??= (async () => {
      await this.instance.destroy();
      await this.#store.discard(this.#draft);
      return undefined;
    })();
    return this.#ended;
  }
}
