/**
 * How a container's microVM starts, by its start policy (annotation dev.vhive.start), through
 * the same start paths as the daemon's (src/start), but shared between shims, one process per
 * container, through lock files in the state directory instead of the daemon's memory:
 *
 *   boot     always a fresh boot
 *   vanilla  restore the image's snapshot (mode vanilla); without one, the first container boots
 *            with guest RAM in a snapshot draft and is saved as the snapshot when it stops
 *            (locks/capture-<image>-<size>: one capture at a time; others boot plainly meanwhile)
 *   reap     the same, restoring in mode reap: the first restore records the working set, which
 *            is written when that container stops (the shim sees no requests, so the working set
 *            is what the container touched in its life); prefetch after
 *            (locks/record-<snapshot>: one recorder per snapshot; others restore plainly meanwhile)
 *
 * A snapshot is the image's if it was made from the same image with the same guest size. Damage
 * is set aside as the daemon does (setAsideDamage): a damaged working set moved aside and the
 * restore tried again without it, a damaged snapshot quarantined and the container booted.
 */
import { writeFile, mkdir } from "node:fs/promises";
import { join } from "node:path";
import lockfile from "proper-lockfile";
import type { StoredImage } from "../../image/index.js";
import { loadWorkingSet, type WorkingSet } from "../../memory/index.js";
import { isVhiveError, messageOf, SnapshotCorruptError } from "../../shared/errors.js";
import type { Log } from "../../shared/log.js";
import type { StoredSnapshot } from "../../snapshot/index.js";
import {
  bootInstance,
  findUsableSnapshot,
  restoreInstance,
  saveRecordedWorkingSet,
  setAsideDamage,
  SnapshotCapture,
  type BootOptions,
  type Host,
  type Instance,
  type RestoreStart,
} from "../../start/index.js";
import type { ContainerStartPolicy } from "./spec.js";

/** Errors that mean "this snapshot cannot be used", not "the start failed". */
const SNAPSHOT_UNUSABLE = ["ERR_SNAPSHOT_CORRUPT", "ERR_SNAPSHOT_MISMATCH", "ERR_RESTORE"] as const;

export interface ContainerStartOptions {
  policy: ContainerStartPolicy;
  memMib: number;
  vcpus: number;
  /** The function's port in the container's network namespace, on every address of it. */
  hostPort: number;
  /** The function's console output, line by line (the container's stdout). */
  onConsoleLine?: (line: string) => void;
  signal?: AbortSignal;
}

/** A started container VM, and what its stop must do first (save it as the snapshot, write its working set). */
export interface StartedContainer {
  instance: Instance;
  /** What the start had to do besides starting (a damaged snapshot set aside, ...). */
  notes: string[];
  /**
   * End the VM: gracefully (a capture is saved as the image's snapshot, a recording writes its
   * working set first) or at once (nothing saved). Resolves with what was kept. Idempotent.
   */
  stop(graceful: boolean): Promise<{ savedSnapshot?: string; recordedPages?: number }>;
}

type Release = () => Promise<void>;

/** Take a lock file now or not at all; undefined if another process holds it. */
async function tryLock(dir: string, name: string): Promise<Release | undefined> {
  await mkdir(dir, { recursive: true });
  const path = join(dir, name);
  await writeFile(path, "", { flag: "a" });
  // stale: a holder that died (its shim SIGKILLed) stops refreshing the lock; after 15 s it is free.
  return lockfile.lock(path, { stale: 15_000, update: 5_000, retries: 0, realpath: false }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === "ELOCKED") return undefined;
    throw error;
  });
}

async function isLocked(dir: string, name: string): Promise<boolean> {
  return lockfile.check(join(dir, name), { stale: 15_000, realpath: false }).catch(() => false);
}

export class ContainerStarter {
  readonly #host: Host;
  readonly #log: Log;

  constructor(host: Host, log: Log) {
    this.#host = host;
    this.#log = log;
  }

  async start(image: StoredImage, options: ContainerStartOptions): Promise<StartedContainer> {
    const boot: BootOptions = {
      memMib: options.memMib,
      vcpus: options.vcpus,
      hostPort: options.hostPort,
      hostAddress: "0.0.0.0",
      dieWithParent: true,
      signal: options.signal,
      onConsoleLine: options.onConsoleLine,
    };
    const notes: string[] = [];
    if (options.policy === "boot") return plain(await bootInstance(this.#host, image, boot), notes);

    const snapshot = await findUsableSnapshot(this.#host, image, {
      accept: (meta) => meta.fingerprint.memMib === options.memMib && meta.fingerprint.vcpus === options.vcpus,
      onUnusable: (unusable, error) => this.#unusable(unusable, error, notes),
    });
    if (snapshot) {
      const restored = await this.#restore(snapshot, image, options, boot, notes);
      if (restored) return restored;
    }
    const locks = this.#host.paths.locksDir;
    const release = await tryLock(locks, `capture-${image.id.slice(0, 16)}-${options.memMib}-${options.vcpus}`);
    if (!release) {
      notes.push("another container of this image is becoming its snapshot: this one boots");
      return plain(await bootInstance(this.#host, image, boot), notes);
    }
    let capture: SnapshotCapture;
    try {
      capture = await SnapshotCapture.boot(this.#host, image.name, image, { ...boot, memMib: options.memMib, vcpus: options.vcpus });
    } catch (error) {
      await release();
      throw error;
    }
    let stopped: Promise<{ savedSnapshot?: string }> | undefined;
    return {
      instance: capture.instance,
      notes,
      stop: (graceful) =>
        (stopped ??= (async () => {
          try {
            if (!graceful) return (await capture.discard(), {});
            const saved = await capture.save(0);
            return saved ? { savedSnapshot: saved.meta.id } : {};
          } finally {
            await release();
          }
        })()),
    };
  }

  async #restore(snapshot: StoredSnapshot, image: StoredImage, options: ContainerStartOptions, boot: BootOptions, notes: string[]): Promise<StartedContainer | undefined> {
    const locks = this.#host.paths.locksDir;
    const recordLock = `record-${snapshot.meta.id}`;
    for (let attempt = 1; ; attempt++) {
      const workingSet = await loadWorkingSet(snapshot).catch(() => "damaged" as const);
      // One recorder per snapshot: while one records, other starts restore it plainly.
      const release = options.policy === "reap" && workingSet === undefined ? await tryLock(locks, recordLock) : undefined;
      const mode = options.policy === "reap" && (release || (workingSet !== undefined && !(await isLocked(locks, recordLock)))) ? "reap" : "vanilla";
      try {
        const instance = await restoreInstance(this.#host, snapshot, { ...boot, mode });
        if (instance.start.kind !== "record") await release?.();
        void instance.vm.failure.then((error) => {
          if (error instanceof SnapshotCorruptError) void setAsideDamage(this.#host.paths, snapshot, workingSet === "damaged" ? undefined : workingSet, error, this.#log);
        });
        return instance.start.kind === "record" ? recording(instance as Instance<RestoreStart>, snapshot, release, notes, this.#log) : plain(instance, notes);
      } catch (error) {
        await release?.();
        if (options.signal?.aborted) throw error;
        if (error instanceof SnapshotCorruptError && error.part === "working-set" && attempt === 1) {
          notes.push(await setAsideDamage(this.#host.paths, snapshot, workingSet === "damaged" ? undefined : (workingSet as WorkingSet | undefined), error, this.#log));
          continue;
        }
        if (!SNAPSHOT_UNUSABLE.some((code) => isVhiveError(error, code))) throw error;
        await this.#unusable(snapshot, error, notes);
        return undefined;
      }
    }
  }

  /** Damage is set aside; a mismatch (made with another kernel, QEMU, ...) only skips the snapshot. */
  async #unusable(snapshot: StoredSnapshot, error: unknown, notes: string[]): Promise<void> {
    if (error instanceof SnapshotCorruptError) {
      notes.push(await setAsideDamage(this.#host.paths, snapshot, undefined, error, this.#log));
      return;
    }
    this.#log.warn("snapshot skipped: it is kept on disk, and the container boots", { snapshot: snapshot.meta.id, error: messageOf(error) });
    notes.push(`snapshot ${snapshot.meta.id} cannot be used (${messageOf(error)}): the container boots`);
  }
}

function plain(instance: Instance, notes: string[]): StartedContainer {
  let stopped: Promise<object> | undefined;
  return {
    instance,
    notes,
    stop: (graceful) => (stopped ??= (graceful ? instance.stop() : instance.destroy()).then(() => ({}))),
  };
}

/** A record-mode restore: its working set is written when the container stops, then the lock freed. */
function recording(instance: Instance<RestoreStart>, snapshot: StoredSnapshot, release: Release | undefined, notes: string[], log: Log): StartedContainer {
  let stopped: Promise<{ recordedPages?: number }> | undefined;
  return {
    instance,
    notes,
    stop: (graceful) =>
      (stopped ??= (async () => {
        try {
          // The pager writes the pages from the snapshot's memory file, not from the guest: a VM
          // that is still running is fine, one that died by itself is not (its pager is gone).
          if (!instance.vm.failed.aborted) {
            const ws = await saveRecordedWorkingSet(instance, snapshot, "container").catch((error: unknown) => {
              log.warn("writing the recorded working set failed", { snapshot: snapshot.meta.id, error: messageOf(error) });
              return undefined;
            });
            if (ws) return { recordedPages: ws.meta.pages };
          }
          return {};
        } finally {
          await (graceful ? instance.stop() : instance.destroy());
          await release?.();
        }
      })()),
  };
}
