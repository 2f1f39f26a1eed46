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
 *
 * Damage is recovered from without losing what is still good: a working set that fails its
 * checksums is moved aside and the restore tried again without it (recording a new one); a
 * damaged memory file, checksum file or device state quarantines the snapshot, and the function
 * boots and makes a new one. Damage found while an instance runs ends that instance; the pool
 * then serves the request again on a new one.
 *
 * Pre-started VMMs (reap with poolDepth > 0, src/start/vmm-pool.ts): prestart() starts one for
 * the snapshot a restore would use, once it has a working set (a recording in progress is waited
 * for). A start given one restores on it (kind pool or pool-installed) if it still fits: made
 * for this deployment, its snapshot not set aside and still on disk, with the same working set;
 * else it is ended and the start goes as usual, as does a start whose pooled restore fails (with
 * a note). A quarantined or skipped snapshot, and a working set moved aside, end that snapshot's
 * pooled VMMs at once.
 */
import { ImageStore, type StoredImage } from "../image/index.js";
import { loadWorkingSet, type WorkingSet } from "../memory/index.js";
import type { FunctionClient, InvokeResult } from "../invoke/index.js";
import { roundMs } from "../metrics/index.js";
import { SnapshotCorruptError, VhiveError, isVhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import type { FunctionRecord } from "../store/index.js";
import { access } from "node:fs/promises";
import { untilAborted } from "../shared/abort.js";
import type { SnapshotMeta } from "../snapshot/index.js";
import {
  bootInstance,
  createClient,
  defaultRequestData,
  findUsableSnapshot,
  isPoolMode,
  PooledVmm,
  prestartVmm,
  restoreInstance,
  restorePooled,
  saveRecordedWorkingSet,
  setAsideDamage,
  SnapshotCapture,
  type Host,
  type Instance,
  type RestoreStart,
} from "../start/index.js";
import type { InstanceStarter, PoolInstance, PrestartedVmm, StartInfo } from "./pool-types.js";

/** Errors that mean "this snapshot cannot be used", not "the start failed". */
const SNAPSHOT_UNUSABLE = ["ERR_SNAPSHOT_CORRUPT", "ERR_SNAPSHOT_MISMATCH", "ERR_RESTORE"] as const;

export class VmStarter implements InstanceStarter {
  readonly #host: Host;
  readonly #log: Log;
  /** Per function: an instance being kept as the snapshot, and its save while it runs. */
  readonly #captures = new Map<string, { saving: Promise<unknown> | undefined }>();
  /** Snapshots whose working set is being recorded (others restore them plainly meanwhile), and when that ends. */
  readonly #recording = new Map<string, { ended: Promise<void>; end: () => void }>();
  /** Pooled VMMs prestart() handed out, until they are used or ended: ended at once if their snapshot is set aside. */
  readonly #pooled = new Set<PooledVmm>();
  /** Snapshots found unusable, not tried again by this daemon. */
  readonly #unusable = new Set<string>();
  /**
   * Per function: recoveries that happened outside any request (an idle instance died of a
   * damaged snapshot), told to the function's next start so its request's record says why.
   */
  readonly #untold = new Map<string, string[]>();
  /** Per function: an unconnected client of its deployment, to check requests with (loading a proto per request costs). */
  readonly #checkers = new Map<string, { deployment: string; image: StoredImage; client: FunctionClient }>();

  constructor(host: Host) {
    this.#host = host;
    this.#log = host.log;
  }

  async start(fn: FunctionRecord, options: { signal: AbortSignal; pooled?: PrestartedVmm }): Promise<PoolInstance> {
    let image: StoredImage;
    try {
      image = await this.#imageOf(fn);
    } catch (error) {
      await options.pooled?.destroy();
      throw error;
    }
    /** What this start had to do on the way (recoveries), for the request's record. */
    const notes: string[] = this.#untold.get(fn.name) ?? [];
    this.#untold.delete(fn.name);
    if (options.pooled) {
      const restored = await this.#fromPool(fn, options.pooled, image, options.signal, notes);
      if (restored) return restored;
    }
    const client = clientOptionsOf(fn);
    const boot = { memMib: fn.memMib, vcpus: fn.vcpus, signal: options.signal, ...client };
    if (fn.start === "boot") return new VmInstance(await bootInstance(this.#host, image, boot), image, this.#log, { notes });

    await this.#captures.get(fn.name)?.saving;
    const snapshot = await findUsableSnapshot(this.#host, image, {
      accept: this.#accepts(fn),
      onUnusable: (unusable, error) => this.#snapshotUnusable(unusable, error, notes),
    });
    if (snapshot) {
      const restored = await this.#restore(fn, snapshot, image, options.signal, notes);
      if (restored) return restored;
    }
    if (this.#captures.has(fn.name)) return new VmInstance(await bootInstance(this.#host, image, boot), image, this.#log, { notes });
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
      notes,
    });
  }

  async prestart(fn: FunctionRecord, options: { signal: AbortSignal }): Promise<PrestartedVmm | undefined> {
    const { signal } = options;
    if (fn.start !== "reap" || !fn.poolDepth) return undefined;
    const image = await new ImageStore(this.#host.paths).get(fn.imageId);
    if (!image) return undefined; // its next start says so
    const notes = this.#untoldFor(fn.name);
    await untilAborted(Promise.resolve(this.#captures.get(fn.name)?.saving), signal, "pre-starting a VMM");
    const snapshot = await findUsableSnapshot(this.#host, image, { accept: this.#accepts(fn), onUnusable: (unusable, error) => this.#snapshotUnusable(unusable, error, notes) });
    if (!snapshot) return undefined;
    const recording = this.#recording.get(snapshot.meta.id);
    if (recording) await untilAborted(recording.ended, signal, "pre-starting a VMM");
    const workingSet = await workingSetOf(snapshot);
    if (workingSet === undefined || workingSet === "damaged" || this.#unusable.has(snapshot.meta.id)) return undefined;
    let vmm: PooledVmm;
    try {
      vmm = await prestartVmm(this.#host, snapshot, { mode: fn.poolInstalled ? "pool-installed" : "pool", signal, ...clientOptionsOf(fn) });
    } catch (error) {
      if (error instanceof SnapshotCorruptError) await this.#damaged(snapshot, workingSet, error, notes);
      throw error;
    }
    if (this.#unusable.has(snapshot.meta.id)) {
      await vmm.destroy(); // set aside while it started
      return undefined;
    }
    this.#pooled.add(vmm);
    void vmm.whenGone.then(() => this.#pooled.delete(vmm));
    return vmm;
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


  async #imageOf(fn: FunctionRecord): Promise<StoredImage> {
    const image = await new ImageStore(this.#host.paths).get(fn.imageId);
    if (!image) {
      throw new VhiveError("ERR_IMAGE_NOT_FOUND", `function ${fn.name}: its image ${fn.imageId.slice(0, 12)} (${fn.imageRef}) is no longer in the image store`, {
        remedy: `build or import it again, then \`vhive deploy ${fn.name} --image <ref>\``,
      });
    }
    return image;
  }

  /** The snapshots a start of `fn` may restore: its own, of its guest size, not set aside. */
  #accepts(fn: FunctionRecord): (meta: SnapshotMeta) => boolean {
    return (meta) => meta.function === fn.name && !this.#unusable.has(meta.id) && meta.fingerprint.memMib === fn.memMib && meta.fingerprint.vcpus === fn.vcpus;
  }

  /** The function's notes for its next start's request (recoveries done outside any request). */
  #untoldFor(fn: string): string[] {
    let untold = this.#untold.get(fn);
    if (!untold) this.#untold.set(fn, (untold = []));
    return untold;
  }

  /**
   * A start on a pooled VMM, if it still fits the function; else it is ended, and undefined
   * returned (so is it if the restore on it fails): the caller then starts as usual.
   */
  async #fromPool(fn: FunctionRecord, vmm: PrestartedVmm, image: StoredImage, signal: AbortSignal, notes: string[]): Promise<VmInstance | undefined> {
    const pooled = vmm instanceof PooledVmm ? vmm : undefined;
    if (pooled) this.#pooled.delete(pooled);
    const unfit = pooled ? await this.#unfit(fn, pooled, image) : "it is not a pooled VMM";
    if (unfit !== undefined || !pooled) {
      this.#log.info("pooled VMM not used", { reason: unfit });
      await vmm.destroy();
      return undefined;
    }
    const { snapshot } = pooled;
    const workingSet = await workingSetOf(snapshot);
    try {
      const instance = await restorePooled(this.#host, pooled, { signal, ...clientOptionsOf(fn) });
      this.#watchForDamage(fn, instance, snapshot, workingSet);
      return new VmInstance(instance, image, this.#log, { notes });
    } catch (error) {
      if (signal.aborted) throw error;
      if (error instanceof SnapshotCorruptError) await this.#damaged(snapshot, workingSet, error, notes);
      else if (SNAPSHOT_UNUSABLE.some((code) => isVhiveError(error, code))) this.#snapshotUnusable(snapshot, error, notes);
      this.#log.warn("a restore on a pooled VMM failed; the instance is started as usual", { snapshot: snapshot.meta.id, error: messageOf(error) });
      notes.push(`a restore on pooled VMM ${pooled.id} failed (${messageOf(error)}); the instance was started as usual`);
      return undefined;
    }
  }

  /** Why a pooled VMM can no longer serve `fn`'s cold starts, or undefined if it can. */
  async #unfit(fn: FunctionRecord, pooled: PooledVmm, image: StoredImage): Promise<string | undefined> {
    const { snapshot } = pooled;
    if (pooled.failed.aborted) return `it died while it waited: ${messageOf(pooled.failed.reason)}`;
    if (pooled.image.id !== image.id || !this.#accepts(fn)(snapshot.meta)) return `its snapshot ${snapshot.meta.id} is not one this deployment restores`;
    if (fn.start !== "reap") return `the function's start policy is ${fn.start}`;
    if (!(await access(snapshot.statePath).then(() => true, () => false))) return `its snapshot ${snapshot.meta.id} was removed`;
    const workingSet = await workingSetOf(snapshot);
    if (workingSet === undefined || workingSet === "damaged" || workingSet.meta.recordedAt !== pooled.workingSetRecordedAt) return `the working set of snapshot ${snapshot.meta.id} changed`;
    return undefined;
  }

  /**
   * Damage found later, by a fault the pager serves while the instance runs: the pool retries
   * the request; make sure no other start uses the damage meanwhile.
   */
  #watchForDamage(fn: FunctionRecord, instance: Instance, snapshot: StoredSnapshot, workingSet: WorkingSet | "damaged" | undefined): void {
    void instance.vm.failure.then((error) => {
      if (!(error instanceof SnapshotCorruptError)) return;
      void this.#damaged(snapshot, workingSet, error, this.#untoldFor(fn.name));
    });
  }

  /** End the pooled VMMs of a snapshot that was set aside (or whose working set was). */
  #endPooled(snapshotId: string, why: string): void {
    for (const pooled of [...this.#pooled]) {
      if (pooled.snapshot.meta.id !== snapshotId) continue;
      this.#pooled.delete(pooled);
      this.#log.info("pooled VMM ended: its snapshot was set aside", { snapshot: snapshotId, reason: why });
      void pooled.discard(new VhiveError("ERR_SNAPSHOT_MISMATCH", `pooled VMM of snapshot ${snapshotId} ended: ${why}`));
    }
  }

  /**
   * Restore the snapshot by the function's policy. A damaged working set is moved aside and the
   * restore tried once more without it (recording a new one); a snapshot that cannot be used is
   * quarantined or skipped: undefined, and the caller boots.
   */
  async #restore(fn: FunctionRecord, snapshot: StoredSnapshot, image: StoredImage, signal: AbortSignal, notes: string[]): Promise<VmInstance | undefined> {
    const id = snapshot.meta.id;
    for (let attempt = 1; ; attempt++) {
      const workingSet = await workingSetOf(snapshot);
      // One recorder per snapshot: while one records, other starts restore it plainly.
      const recorder = fn.start === "reap" && workingSet === undefined && !this.#recording.has(id);
      if (recorder) this.#beginRecording(id);
      const mode = fn.start === "reap" && (recorder || !this.#recording.has(id)) ? "reap" : "vanilla";
      try {
        const instance = await restoreInstance(this.#host, snapshot, { mode, signal, ...clientOptionsOf(fn) });
        const recordInto = instance.start.kind === "record" ? { snapshot, done: () => this.#endRecording(id) } : undefined;
        if (recorder && !recordInto) this.#endRecording(id);
        this.#watchForDamage(fn, instance, snapshot, workingSet);
        return new VmInstance(instance, image, this.#log, { recordInto, notes });
      } catch (error) {
        if (recorder) this.#endRecording(id);
        if (signal.aborted) throw error;
        if (error instanceof SnapshotCorruptError && error.part === "working-set" && attempt === 1) {
          await this.#damaged(snapshot, workingSet, error, notes);
          continue;
        }
        if (!SNAPSHOT_UNUSABLE.some((code) => isVhiveError(error, code))) throw error;
        if (error instanceof SnapshotCorruptError) await this.#damaged(snapshot, workingSet, error, notes);
        else this.#snapshotUnusable(snapshot, error, notes);
        return undefined;
      }
    }
  }

  #beginRecording(id: string): void {
    let end = () => {};
    const ended = new Promise<void>((resolve) => (end = resolve));
    this.#recording.set(id, { ended, end });
  }

  /** Its working set is written (or its recording failed): prestarts waiting for it go on. */
  #endRecording(id: string): void {
    this.#recording.get(id)?.end();
    this.#recording.delete(id);
  }

  /**
   * Recover from damage (setAsideDamage), saying what was done in `notes`. A snapshot set aside
   * is marked unusable at once, so a start that begins meanwhile skips it too.
   */
  async #damaged(snapshot: StoredSnapshot, workingSet: WorkingSet | "damaged" | undefined, error: SnapshotCorruptError, notes: string[]): Promise<void> {
    const id = snapshot.meta.id;
    this.#endPooled(id, error.message);
    if (error.part !== "working-set") this.#unusable.add(id);
    notes.push(await setAsideDamage(this.#host.paths, snapshot, workingSet === "damaged" ? undefined : workingSet, error, this.#log));
  }

  /** A snapshot that fails its checks: damage quarantines it; a mismatch only skips it. */
  async #snapshotUnusable(snapshot: StoredSnapshot, error: unknown, notes: string[]): Promise<void> {
    if (error instanceof SnapshotCorruptError) {
      await this.#damaged(snapshot, undefined, error, notes);
      return;
    }
    this.#unusable.add(snapshot.meta.id);
    this.#endPooled(snapshot.meta.id, messageOf(error));
    this.#log.warn("snapshot skipped: it is kept on disk, and the function boots and makes a new one", {
      snapshot: snapshot.meta.id,
      code: isVhiveError(error) ? error.code : undefined,
      error: messageOf(error),
    });
    notes.push(`snapshot ${snapshot.meta.id} cannot be used (${messageOf(error)}); the function boots and makes a new one`);
  }
}

/** The deployment's gRPC method and proto, where it overrides the image's. */
function clientOptionsOf(fn: FunctionRecord): { method?: string; protoPath?: string } {
  return { ...(fn.method === undefined ? {} : { method: fn.method }), ...(fn.protoPath === undefined ? {} : { protoPath: fn.protoPath }) };
}

/** The snapshot's working set, "damaged" if it cannot be read (the restore then reports it), or undefined. */
async function workingSetOf(snapshot: StoredSnapshot): Promise<WorkingSet | "damaged" | undefined> {
  return loadWorkingSet(snapshot).catch(() => "damaged" as const);
}

interface RecordTarget {
  snapshot: StoredSnapshot;
  done: () => void;
}

interface VmInstanceOptions {
  /** Record mode: write the working set after the first invocation. */
  recordInto?: RecordTarget;
  /** What the start had to do besides starting (recoveries), reported with the request. */
  notes?: readonly string[];
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
    this.started = startInfo(instance, options.notes ?? []);
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

function startInfo(instance: Instance, notes: readonly string[]): StartInfo {
  const start = instance.start;
  const said = notes.length > 0 ? { notes: [...notes] } : {};
  if (start.kind === "boot") {
    const { qemuStartMs, kernelBootMs, initMs, functionReadyMs } = start.times;
    return { kind: "boot", breakdown: { qemuStartMs: roundMs(qemuStartMs), kernelBootMs: roundMs(kernelBootMs), initMs: roundMs(initMs), functionReadyMs: roundMs(functionReadyMs) }, ...said };
  }
  const kind = start.kind === "record" || start.kind === "prefetch" || isPoolMode(start.kind) ? start.kind : "vanilla";
  const breakdown: Record<string, number> = {};
  for (const [phase, ms] of Object.entries(start.times)) breakdown[phase] = roundMs(ms);
  return { kind, breakdown, snapshotId: start.snapshotId, ...said };
}
