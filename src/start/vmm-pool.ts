/**
 * Pre-started VMMs: QEMU processes started for one snapshot before any request needs them, so a
 * cold start skips QEMU's start-up (the restore's loadVmmMs). A pooled VMM is QEMU with the
 * snapshot's devices and guest size, waiting in `-incoming defer`, its guest RAM handed to its
 * pager (the shim connects while QEMU starts) and the function's loopback port already
 * forwarded. The cold start that takes it loads the device state, waits for the working set,
 * resumes the vCPUs, reseeds the guest (fresh entropy before any request, as every restore) and
 * connects. Two modes, by what the VMM holds while it waits:
 *
 *   pool            the pager attached with its prefetch deferred: nothing of the working set
 *                   read or installed. The cold start sends the prefetch as the device state
 *                   loads (one O_DIRECT read, UFFDIO_COPY, as in prefetch). Idle, it holds
 *                   QEMU's own memory and the pager's: no guest page
 *   pool-installed  the working set read and installed while the VMM waits: the cold start
 *                   only loads the device state. Idle, it holds the working set's pages too,
 *                   as private anonymous memory of QEMU (PSS grows by the working set's size)
 *
 * memory() measures what a pooled VMM really holds (PSS and private bytes of QEMU and its pager,
 * from /proc/<pid>/smaps_rollup), which is what a budget should count, not its guest size.
 *
 * The port: chosen when the VMM is pre-started, and QEMU listens on it from its start (slirp
 * binds hostfwd at start-up, -incoming defer or not), so nothing can take it while the VMM waits.
 * A port taken between choosing it and QEMU binding it fails that QEMU (ERR_PORT_IN_USE), which is
 * discarded and another port used (withHostPort).
 *
 * VmmPool keeps up to `depth` pooled VMMs of one kind (the daemon: one function's), refilled in
 * the background when its owner asks, each counted against a budget by its measured memory, and
 * ends them all on drain() or close(). It knows nothing of functions, so the daemon's
 * orchestrator and the containerd shim can both keep one.
 *
 * :raise ERR_VALIDATION: the snapshot has no working set (a pooled VMM prefetches one)
 */
import type { StoredImage } from "../image/index.js";
import { loadWorkingSet, type Pager } from "../memory/index.js";
import { untilAborted } from "../shared/abort.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import { assertNativeBuilt } from "../shared/native.js";
import { UndoStack } from "../shared/undo.js";
import type { StoredSnapshot } from "../snapshot/index.js";
import { procMemoryProbe, type MemoryProbe } from "../vm/index.js";
import type { Host } from "./host.js";
import { checkStart, withHostPort, type Instance, type PoolMode, type RestoreStart, type StartOptions } from "./instance.js";
import { checkSnapshot, explainRestoreFailure, launchVmm, prefetchFiles, resumeVmm, type LaunchedVmm, type RestoreOptions } from "./restore.js";

const MIB = 1024 * 1024;

/** What a pooled VMM holds while it waits, bytes (QEMU and its pager together, and each). */
export interface PooledMemory {
  pssBytes: number;
  privateBytes: number;
  qemuPssBytes: number;
  qemuPrivateBytes: number;
  pagerPssBytes: number;
  pagerPrivateBytes: number;
}

export interface PrestartOptions extends Pick<StartOptions, "hostPort" | "hostAddress" | "keepRunDir" | "signal" | "method" | "protoPath" | "firstRequest" | "dieWithParent" | "onConsoleLine">, Pick<RestoreOptions, "wsCodec" | "wsRead" | "verifyPages"> {
  mode: PoolMode;
}

/** One pre-started VMM; taken once by restorePooled, or destroyed. */
export class PooledVmm implements AsyncDisposable {
  readonly mode: PoolMode;
  readonly snapshot: StoredSnapshot;
  readonly image: StoredImage;
  readonly hostPort: number;
  /** When the working set it prefetches was recorded: it serves cold starts while the snapshot still has that one. */
  readonly workingSetRecordedAt: string;
  /** QEMU spawn until ready (pager attached; pool-installed: working set installed), ms. */
  readonly prestartMs: number;
  /** performance.now() when it became ready. */
  readonly readyAt: number;
  /** Aborts if QEMU or its pager dies while it waits, or it is discarded; the reason is a VhiveError. */
  readonly failed: AbortSignal;
  readonly #launched: LaunchedVmm;
  readonly #discard = new AbortController();
  #taken = false;
  #ended: Promise<void> | undefined;
  #gone = () => {};
  /** Resolves once it was taken by a cold start or ended. */
  readonly whenGone = new Promise<void>((resolve) => (this.#gone = resolve));

  constructor(launched: LaunchedVmm, mode: PoolMode, workingSetRecordedAt: string) {
    this.#launched = launched;
    this.mode = mode;
    this.snapshot = launched.snapshot;
    this.image = launched.image;
    this.hostPort = launched.hostPort;
    this.workingSetRecordedAt = workingSetRecordedAt;
    this.readyAt = performance.now();
    this.prestartMs = this.readyAt - launched.vm.timeline.spawnAt;
    this.failed = AbortSignal.any([launched.vm.failed, this.#discard.signal]);
  }

  /** The VM id: names it in logs. */
  get id(): string {
    return this.#launched.vm.id;
  }

  get pid(): number | undefined {
    return this.#launched.vm.pid;
  }

  get pagerPid(): number | undefined {
    return this.#launched.pager?.pid;
  }

  /** Taken by a cold start, or ended. */
  get gone(): boolean {
    return this.#taken || this.#ended !== undefined;
  }

  /** What it holds now, from /proc (QEMU's and the pager's smaps_rollup). */
  async memory(probe: MemoryProbe = procMemoryProbe): Promise<PooledMemory> {
    const qemu = await probe.process(this.pid!);
    const pager = this.pagerPid === undefined ? undefined : await probe.process(this.pagerPid);
    return {
      pssBytes: qemu.pssBytes + (pager?.pssBytes ?? 0),
      privateBytes: qemu.privateBytes + (pager?.privateBytes ?? 0),
      qemuPssBytes: qemu.pssBytes,
      qemuPrivateBytes: qemu.privateBytes,
      pagerPssBytes: pager?.pssBytes ?? 0,
      pagerPrivateBytes: pager?.privateBytes ?? 0,
    };
  }

  /** Its PSS in whole MiB, rounded up: what a budget counts for it. */
  async memoryMib(): Promise<number> {
    return Math.max(1, Math.ceil((await this.memory()).pssBytes / MIB));
  }

  /** For restorePooled: QEMU and its pager now belong to the cold start. Once, and not after it ended or died. */
  take(): LaunchedVmm {
    if (this.gone) throw new VhiveError("ERR_DISPOSED", `pooled VMM ${this.id} was already taken or ended`);
    if (this.failed.aborted) throw this.failed.reason as VhiveError;
    this.#taken = true;
    this.#gone();
    return this.#launched;
  }

  /** End it because it can no longer serve (its snapshot was quarantined, ...): `failed` fires with `reason`. */
  discard(reason: VhiveError): Promise<void> {
    this.#discard.abort(reason);
    return this.destroy();
  }

  /** End QEMU and its pager (SIGKILL); nothing once taken. Idempotent. */
  destroy(): Promise<void> {
    if (this.#taken) return Promise.resolve();
    this.#ended ??= (async () => {
      try {
        await this.#launched.vm.destroy();
      } finally {
        await this.#launched.pager?.destroy();
        this.#gone();
      }
    })();
    return this.#ended;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy();
  }
}

/**
 * Start a pooled VMM for the snapshot (checked first, as for any restore) and wait until it is
 * ready: its pager attached, and in pool-installed its working set installed.
 */
export async function prestartVmm(host: Host, snapshot: StoredSnapshot, options: PrestartOptions): Promise<PooledVmm> {
  const image = await checkSnapshot(host, snapshot);
  checkStart(image, options); // a bad --proto/--method or --data fails before QEMU starts
  const stored = await loadWorkingSet(snapshot);
  if (!stored) {
    throw new VhiveError("ERR_VALIDATION", `snapshot ${snapshot.meta.id} has no working set for a pooled VMM to prefetch yet`, {
      remedy: "restore it once with --mode record (or --mode reap, which records first)",
    });
  }
  await assertNativeBuilt();
  const { mode } = options;
  const { workingSet, prefetch } = await prefetchFiles(snapshot, stored, options);
  const launchOptions: RestoreOptions = { verifyPages: options.verifyPages, keepRunDir: options.keepRunDir, signal: options.signal, hostAddress: options.hostAddress, dieWithParent: options.dieWithParent, onConsoleLine: options.onConsoleLine };
  return withHostPort(options.hostPort, async (hostPort) => {
    await using undo = new UndoStack();
    let launched: LaunchedVmm | undefined;
    try {
      launched = await launchVmm(host, snapshot, image, hostPort, mode, prefetch, launchOptions, undo);
      const { vm, pager } = launched;
      const died = vm.failure.then((error) => Promise.reject(error));
      await untilAborted(Promise.race([pager!.attached(), died]), options.signal, "pre-starting a VMM");
      if (mode === "pool-installed") await untilAborted(Promise.race([pager!.prefetchDone(), died]), options.signal, "pre-starting a VMM");
      undo.release();
      return new PooledVmm(launched, mode, workingSet.meta.recordedAt);
    } catch (error) {
      throw await explainRestoreFailure(error, snapshot, mode, launched?.pager);
    }
  }, options.hostAddress);
}

/**
 * A cold start on a pooled VMM: from the moment it is taken (coldStartAt), device state,
 * working set (pool: prefetched now), resume, reseed, connect. The VMM is the instance's from
 * here, also if this fails (then it is ended).
 */
export async function restorePooled(host: Host, pooled: PooledVmm, options: RestoreOptions = {}): Promise<Instance<RestoreStart>> {
  const takenAt = performance.now();
  const launched = pooled.take();
  await using undo = new UndoStack();
  undo.defer("stop the pager", () => launched.pager?.destroy());
  undo.defer("stop the VM", () => launched.vm.destroy());
  try {
    const instance = await resumeVmm(host, launched, options, undo, { coldStartAt: takenAt, pooled: { prestartMs: pooled.prestartMs, idleMs: takenAt - pooled.readyAt } });
    undo.release();
    return instance;
  } catch (error) {
    throw await explainRestoreFailure(error, launched.snapshot, launched.mode, launched.pager);
  }
}

// ---- the pool ---------------------------------------------------------------------------------

/** What a VmmPool keeps: a pre-started VMM (PooledVmm), or a fake of one in tests. */
export interface PoolableVmm {
  /** Aborts if it dies or is discarded while it waits: the pool drops it then. */
  readonly failed: AbortSignal;
  /** What it holds while it waits, MiB: measured once it is ready. */
  memoryMib(): Promise<number>;
  destroy(): Promise<void>;
}

/** Room for pooled VMMs, MiB (the daemon's MemoryBudget). */
export interface PoolBudget {
  /** Reserve `mib` for a pooled VMM if it fits in what is free (never at an instance's expense). */
  tryReserveIdle(mib: number): boolean;
  release(mib: number): void;
}

export interface VmmPoolOptions<V extends PoolableVmm> {
  /** How many ready VMMs to keep. */
  depth: number;
  /** Start one; undefined when there is nothing to pre-start yet (no snapshot or working set). */
  prestart: (signal: AbortSignal) => Promise<V | undefined>;
  budget?: PoolBudget;
  /**
   * Reserved for a VMM while it starts, before it can be measured, MiB: what the first one may
   * hold at most (the guest's size); later ones reserve what the last one measured.
   */
  startingMib: number;
  log: Log;
}

/** A VmmPool's state, for the API. */
export interface VmmPoolState {
  depth: number;
  ready: number;
  starting: number;
  /** Reserved from the budget by the pool: measured for ready VMMs, estimated for starting ones. */
  heldMib: number;
}

interface Pooled<V> {
  vmm: V;
  mib: number;
  onFailed: () => void;
}

export class VmmPool<V extends PoolableVmm> {
  readonly depth: number;
  readonly #options: VmmPoolOptions<V>;
  readonly #log: Log;
  /** Ready VMMs, oldest first. */
  readonly #ready: Pooled<V>[] = [];
  /** Ends in progress (drained, shed or dead VMMs), awaited by drain(). */
  readonly #ending = new Set<Promise<void>>();
  /** The refill loop while it runs: one pre-start at a time. */
  #filling: Promise<void> | undefined;
  #again = false;
  /** The last fill stopped because the budget had no room. */
  #noRoom = false;
  #startingMib = 0;
  #starting = 0;
  /** Aborted by drain(): pre-starts under way end what they started. */
  #generation = new AbortController();
  /** What the last VMM measured, the reservation for the next one that starts. */
  #lastMib: number | undefined;
  #closed = false;

  constructor(options: VmmPoolOptions<V>) {
    this.#options = options;
    this.depth = options.depth;
    this.#log = options.log;
  }

  state(): VmmPoolState {
    return { depth: this.depth, ready: this.#ready.length, starting: this.#starting, heldMib: this.#ready.reduce((sum, entry) => sum + entry.mib, 0) + this.#startingMib };
  }

  /**
   * Pre-start VMMs in the background, one at a time, until `depth` are ready. It stops early,
   * until the next refill(), when a pre-start has nothing to start, fails (logged), or the
   * budget has no room.
   */
  refill(): void {
    if (this.#closed) return;
    if (this.#filling) {
      this.#again = true; // asked while it fills: one more pass once this one stops
      return;
    }
    this.#filling = (async () => {
      do {
        this.#again = false;
        await this.#fill();
      } while (this.#again && !this.#closed);
    })().finally(() => (this.#filling = undefined));
  }

  /** refill() if the last fill stopped for want of room in the budget (the owner calls this when memory is released). */
  refillIfNoRoom(): void {
    if (!this.#noRoom) return;
    this.#noRoom = false;
    this.refill();
  }

  /** A ready VMM for a cold start, now its taker's (its reservation is given back), or undefined. */
  take(): V | undefined {
    while (this.#ready.length > 0) {
      const entry = this.#ready.shift()!;
      this.#forget(entry);
      if (!entry.vmm.failed.aborted) return entry.vmm;
      this.#end(entry.vmm);
    }
    return undefined;
  }

  /**
   * Give memory back at once, for a start that needs it: ready VMMs are dropped, the newest
   * first, until `mib` is freed or none is left; they are ended in the background. Returns the
   * MiB their reservations held, which the caller takes over: they are not released to the budget.
   */
  shed(mib: number): number {
    let freed = 0;
    while (freed < mib && this.#ready.length > 0) {
      const entry = this.#ready.pop()!;
      entry.vmm.failed.removeEventListener("abort", entry.onFailed);
      freed += entry.mib;
      this.#log.info("pooled VMM ended to make room for an instance", { mib: entry.mib });
      this.#end(entry.vmm);
    }
    return freed;
  }

  /** End every VMM, ready or starting; refill() fills the pool again. */
  async drain(): Promise<void> {
    this.#generation.abort(new VhiveError("ERR_ABORTED", "the VMM pool was drained"));
    this.#generation = new AbortController();
    this.#again = false;
    for (const entry of this.#ready.splice(0)) {
      this.#forget(entry);
      this.#end(entry.vmm);
    }
    await this.#filling;
    while (this.#ending.size > 0) await Promise.all([...this.#ending]);
  }

  /** drain(), and refill no more. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.drain();
  }

  async #fill(): Promise<void> {
    while (!this.#closed && this.#ready.length + this.#starting < this.depth) {
      const signal = this.#generation.signal;
      const reservedMib = this.#lastMib ?? this.#options.startingMib;
      if (this.#options.budget && !this.#options.budget.tryReserveIdle(reservedMib)) {
        this.#log.debug("VMM pool not refilled: the memory budget has no room", { mib: reservedMib });
        this.#noRoom = true;
        return;
      }
      this.#starting++;
      this.#startingMib += reservedMib;
      let vmm: V | undefined;
      try {
        vmm = await this.#options.prestart(signal);
      } catch (error) {
        if (!signal.aborted) this.#log.warn("pre-starting a VMM failed", { error: messageOf(error) });
      } finally {
        this.#starting--;
        this.#startingMib -= reservedMib;
      }
      if (!vmm || signal.aborted || this.#closed) {
        this.#options.budget?.release(reservedMib);
        if (vmm) this.#end(vmm);
        return;
      }
      const mib = await vmm.memoryMib().catch(() => reservedMib);
      this.#lastMib = mib;
      // Count what it really holds: give back the estimate, reserve the measure.
      if (mib !== reservedMib && this.#options.budget) {
        this.#options.budget.release(reservedMib);
        if (!this.#options.budget.tryReserveIdle(mib)) {
          this.#log.debug("pooled VMM ended: the memory budget has no room for it", { mib });
          this.#noRoom = true;
          this.#end(vmm);
          return;
        }
      }
      if (this.#generation.signal !== signal || vmm.failed.aborted) {
        // Drained while it was measured, or it died: it never joins.
        this.#options.budget?.release(mib);
        this.#end(vmm);
        if (this.#generation.signal !== signal) return;
        continue;
      }
      this.#add(vmm, mib);
    }
  }

  #add(vmm: V, mib: number): void {
    const entry: Pooled<V> = {
      vmm,
      mib,
      onFailed: () => {
        const at = this.#ready.indexOf(entry);
        if (at < 0) return;
        this.#ready.splice(at, 1);
        this.#forget(entry);
        this.#log.warn("pooled VMM died while it waited", { error: messageOf(vmm.failed.reason) });
        this.#end(vmm);
      },
    };
    vmm.failed.addEventListener("abort", entry.onFailed, { once: true });
    this.#ready.push(entry);
  }

  /** Out of the pool: stop watching it and give back its reservation. */
  #forget(entry: Pooled<V>): void {
    entry.vmm.failed.removeEventListener("abort", entry.onFailed);
    this.#options.budget?.release(entry.mib);
  }

  #end(vmm: V): void {
    const ending = vmm
      .destroy()
      .catch((error: unknown) => this.#log.warn("ending a pooled VMM failed", { error: messageOf(error) }))
      .finally(() => this.#ending.delete(ending));
    this.#ending.add(ending);
  }
}
