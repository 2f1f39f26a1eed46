/**
 * Starting a function's instances as microVMs, by its start policy:
 *
 *   boot     always a fresh boot
 *   vanilla  restore the function's snapshot (mode vanilla); without one, boot into a snapshot
 *            draft and save it when that instance retires (SnapshotCapture)
 *   reap     the same, restoring in mode reap: record on the first restore (the working set is
 *            written after that instance's first invocation), prefetch after
 *
 * A snapshot is used only if it belongs to the function, was made from the function's image
 * with its guest size, and passes checkSnapshot; one that fails is skipped (and kept on disk for
 * inspection), so the function falls back to boot + a new snapshot. While an instance is being
 * saved as the snapshot, new starts of that function wait for it.
 */
import { ImageStore, type StoredImage } from "../image/index.js";
import { loadWorkingSet } from "../memory/index.js";
import type { FunctionClient, InvokeResult } from "../invoke/index.js";
import { roundMs } from "../metrics/index.js";
import { VhiveError, isVhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import type { FunctionRecord } from "../store/index.js";
import { bootInstance, createClient, defaultRequestData, findUsableSnapshot, restoreInstance, saveRecordedWorkingSet, SnapshotCapture, type Host, type Instance, type RestoreStart } from "../start/index.js";
import type { InstanceStarter, PoolInstance, StartInfo } from "./pool-types.js";

/** Errors that mean "this snapshot cannot be used", not "the start failed". */
const SNAPSHOT_UNUSABLE = ["ERR_SNAPSHOT_CORRUPT", "ERR_SNAPSHOT_MISMATCH", "ERR_RESTORE"] as const;

export class VmStarter implements InstanceStarter {
  readonly #host: Host;
  readonly #log: Log;
  /** Per function: an instance being kept as the snapshot, and its save while it runs. */
  readonly #captures = new Map<string, { saving: Promise<unknown> | undefined }>();
  /** Snapshots whose working set is being recorded: others restore them plainly meanwhile. */
  readonly #recording = new Set<string>();
  /** Snapshots found unusable, not tried again by this daemon. */
  readonly #unusable = new Set<string>();
  /** Per function: an unconnected client of its deployment, to check requests with (loading a proto per request costs). */
  readonly #checkers = new Map<string, { deployment: string; image: StoredImage; client: FunctionClient }>();

  constructor(host: Host) {
    this.#host = host;
    this.#log = host.log;
  }

  async start(fn: FunctionRecord, options: { signal: AbortSignal }): Promise<PoolInstance> {
    const image = await new ImageStore(this.#host.paths).get(fn.imageId);
    if (!image) {
      throw new VhiveError("ERR_IMAGE_NOT_FOUND", `function ${fn.name}: its image ${fn.imageId.slice(0, 12)} (${fn.imageRef}) is no longer in the image store`, {
        remedy: `build or import it again, then \`vhive deploy ${fn.name} --image <ref>\``,
      });
    }
    const client = clientOptionsOf(fn);
    const boot = { memMib: fn.memMib, vcpus: fn.vcpus, signal: options.signal, ...client };
    if (fn.start === "boot") return new VmInstance(await bootInstance(this.#host, image, boot), image, this.#log);

    await this.#captures.get(fn.name)?.saving;
    const snapshot = await findUsableSnapshot(this.#host, image, {
      accept: (meta) => meta.function === fn.name && !this.#unusable.has(meta.id) && meta.fingerprint.memMib === fn.memMib && meta.fingerprint.vcpus === fn.vcpus,
      onUnusable: (unusable, error) => this.#markUnusable(unusable.meta.id, error),
    });
    if (snapshot) {
      const id = snapshot.meta.id;
      // One recorder per snapshot: while one records, other starts restore it plainly.
      const recorder = fn.start === "reap" && !(await hasWorkingSet(snapshot)) && !this.#recording.has(id);
      if (recorder) this.#recording.add(id);
      const mode = fn.start === "reap" && (recorder || !this.#recording.has(id)) ? "reap" : "vanilla";
      try {
        const instance = await restoreInstance(this.#host, snapshot, { mode, signal: options.signal, ...client });
        const recordInto = instance.start.kind === "record" ? { snapshot, done: () => this.#recording.delete(id) } : undefined;
        if (recorder && !recordInto) this.#recording.delete(id);
        return new VmInstance(instance, image, this.#log, { recordInto });
      } catch (error) {
        if (recorder) this.#recording.delete(id);
        if (!SNAPSHOT_UNUSABLE.some((code) => isVhiveError(error, code)) || options.signal.aborted) throw error;
        this.#markUnusable(id, error);
      }
    }
    if (this.#captures.has(fn.name)) return new VmInstance(await bootInstance(this.#host, image, boot), image, this.#log);
    const entry: { saving: Promise<unknown> | undefined } = { saving: undefined };
    this.#captures.set(fn.name, entry);
    let capture: SnapshotCapture;
    try {
      capture = await SnapshotCapture.boot(this.#host, fn.name, image, boot);
    } catch (error) {
      this.#captures.delete(fn.name);
      throw error;
    }
    const end = (how: (invocations: number) => Promise<unknown>) => (invocations: number) => {
      entry.saving = how(invocations).finally(() => this.#captures.delete(fn.name));
      return entry.saving;
    };
    return new VmInstance(capture.instance, image, this.#log, {
      capture: { save: end((n) => capture.save(n)), discard: end(() => capture.discard()) },
    });
  }

  async checkFunction(fn: FunctionRecord): Promise<void> {
    await this.#checker(fn);
  }

  async checkRequest(fn: FunctionRecord, data: string | undefined): Promise<void> {
    const checker = await this.#checker(fn);
    checker?.client.checkRequest(data ?? defaultRequestData(checker.image));
  }

  /** The function's unconnected client, made once per deployment; undefined if its image is gone (its start says so). */
  async #checker(fn: FunctionRecord): Promise<{ image: StoredImage; client: FunctionClient } | undefined> {
    const deployment = `${fn.imageId} ${fn.method ?? ""} ${fn.protoPath ?? ""} ${fn.updatedAt}`;
    const cached = this.#checkers.get(fn.name);
    if (cached?.deployment === deployment) return cached;
    cached?.client.close();
    this.#checkers.delete(fn.name);
    const image = await new ImageStore(this.#host.paths).get(fn.imageId);
    if (!image) return undefined;
    if (image.config.protocol === "http" && (fn.method !== undefined || fn.protoPath !== undefined)) {
      throw new VhiveError("ERR_VALIDATION", `function ${fn.name}: its image ${image.name} is an HTTP function; a gRPC method and proto do not apply`, {
        remedy: "deploy it without --method and --proto",
      });
    }
    const checker = { deployment, image, client: createClient(image, 1, clientOptionsOf(fn)) };
    this.#checkers.set(fn.name, checker);
    return checker;
  }

  #markUnusable(id: string, error: unknown): void {
    this.#unusable.add(id);
    this.#log.warn("snapshot skipped: it is kept on disk, and the function boots and makes a new one", {
      snapshot: id,
      code: isVhiveError(error) ? error.code : undefined,
      error: messageOf(error),
    });
  }

}

/** The deployment's gRPC method and proto, where it overrides the image's. */
function clientOptionsOf(fn: FunctionRecord): { method?: string; protoPath?: string } {
  return { ...(fn.method === undefined ? {} : { method: fn.method }), ...(fn.protoPath === undefined ? {} : { protoPath: fn.protoPath }) };
}

/** Whether the snapshot has a working set; a damaged one counts, so the restore reports it. */
async function hasWorkingSet(snapshot: StoredSnapshot): Promise<boolean> {
  return loadWorkingSet(snapshot).then(
    (ws) => ws !== undefined,
    () => true,
  );
}

interface RecordTarget {
  snapshot: StoredSnapshot;
  done: () => void;
}

interface VmInstanceOptions {
  /** Record mode: write the working set after the first invocation. */
  recordInto?: RecordTarget;
  /** This instance is the function's snapshot in the making. */
  capture?: { save: (invocations: number) => Promise<unknown>; discard: (invocations: number) => Promise<unknown> };
}

/** A microVM instance as the pool sees it. */
class VmInstance implements PoolInstance {
  readonly id: string;
  readonly started: StartInfo;
  readonly failed: AbortSignal;
  readonly #instance: Instance;
  readonly #image: StoredImage;
  readonly #log: Log;
  readonly #capture: VmInstanceOptions["capture"];
  #recordInto: RecordTarget | undefined;
  /** The working-set write after a record-mode invocation; later calls wait for it. */
  #recorded: Promise<void> | undefined;
  #invocations = 0;
  #ended: Promise<void> | undefined;

  constructor(instance: Instance, image: StoredImage, log: Log, options: VmInstanceOptions = {}) {
    this.#instance = instance;
    this.#image = image;
    this.#capture = options.capture;
    this.#recordInto = options.recordInto;
    this.id = instance.vm.id;
    this.failed = instance.vm.failed;
    this.#log = log.child({ instance: this.id });
    this.started = startInfo(instance);
  }

  get pid(): number | undefined {
    return this.#instance.vm.pid;
  }

  get hostPort(): number {
    return this.#instance.hostPort;
  }

  async invoke(data: string | undefined, options: { signal?: AbortSignal; timeoutMs?: number }): Promise<InvokeResult> {
    await this.#recorded;
    const input = data ?? defaultRequestData(this.#image);
    const result = await this.#instance.invoke(input, options);
    this.#invocations++;
    const target = this.#recordInto;
    if (target) {
      this.#recordInto = undefined;
      this.#recorded = saveRecordedWorkingSet(this.#instance as Instance<RestoreStart>, target.snapshot, input)
        .then((ws) => this.#log.info("working set recorded", { snapshot: target.snapshot.meta.id, pages: ws.meta.pages }))
        .catch((error: unknown) => this.#log.warn("recording the working set failed", { error: messageOf(error) }))
        .finally(target.done);
    }
    return result;
  }

  retire(): Promise<void> {
    this.#ended ??= (async () => {
      await this.#recorded;
      if (this.#capture) await this.#capture.save(this.#invocations);
      else await this.#instance.stop();
    })();
    return this.#ended;
  }

  destroy(): Promise<void> {
    this.#ended ??= (async () => {
      this.#recordInto?.done();
      if (this.#capture) await this.#capture.discard(this.#invocations);
      await this.#instance.destroy();
      await this.#recorded;
    })();
    return this.#ended;
  }
}

function startInfo(instance: Instance): StartInfo {
  const start = instance.start;
  if (start.kind === "boot") {
    const { qemuStartMs, kernelBootMs, initMs, functionReadyMs } = start.times;
    return { kind: "boot", breakdown: { qemuStartMs: roundMs(qemuStartMs), kernelBootMs: roundMs(kernelBootMs), initMs: roundMs(initMs), functionReadyMs: roundMs(functionReadyMs) } };
  }
  const kind = start.kind === "record" || start.kind === "prefetch" ? start.kind : "vanilla";
  const breakdown: Record<string, number> = {};
  for (const [phase, ms] of Object.entries(start.times)) breakdown[phase] = roundMs(ms);
  return { kind, breakdown, snapshotId: start.snapshotId };
}
