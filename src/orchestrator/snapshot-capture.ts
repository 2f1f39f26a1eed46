/**
 * A function's first instance under a snapshot policy (vanilla, reap) doubles as its snapshot:
 * it is booted with guest RAM in a snapshot draft's memory file (shared), serves requests like
 * any instance, and when it is retired (keep-alive expiry, shutdown) it is paused and saved
 * instead of just stopped. If it dies or is destroyed, the draft is discarded.
 */
import type { StoredImage } from "../image/index.js";
import type { Log } from "../shared/log.js";
import { messageOf } from "../shared/errors.js";
import { SnapshotStore, type SnapshotDraft, type StoredSnapshot } from "../snapshot/index.js";
import { bootInstance, type BootOptions } from "./boot.js";
import type { Host } from "./host.js";
import type { BootStart, Instance } from "./instance.js";
import { saveSnapshot } from "./snapshot-create.js";

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
