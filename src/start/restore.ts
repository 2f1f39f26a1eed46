/**
 * The restore start path: a new QEMU loads a snapshot's device state, and guest memory comes
 * from the snapshot's memory file in one of these modes:
 *
 *   vanilla     mapped privately, pages read lazily on first touch (Firecracker's default); QEMU's
 *               hugepage hint makes each fault read up to 2 MiB on this host
 *   vanilla-4k  the same with the hint dropped and MADV_RANDOM: one 4 KiB read per fault, the
 *               paper's baseline (the shim adjusts QEMU's madvise calls)
 *   lazy        through userfaultfd: the pager serves each fault with one page
 *   record      lazy, and the pager records the pages touched; the working set is written after
 *               the first invocation (REAP's record phase)
 *   prefetch    the pager reads the working set in one sequential pass and installs it before
 *               the vCPUs resume; other pages fault lazily (REAP). Which encoding of it (raw,
 *               lz4, zstd: `wsCodec`, packed first if the snapshot lacks it) and how it is read
 *               (`wsRead`: O_DIRECT, or through the page cache shared by concurrent restores)
 *               are options
 *   floor       every page installed (zero pages as the zero page) before QEMU even maps guest
 *               RAM (it waits for the pager), that time left out of totalMs: the restore as if
 *               loading memory cost nothing, with no fault left to take
 *   reap        record when the snapshot has no working set yet, prefetch after
 *
 * The path is split where a pooled VMM (vmm-pool.ts: modes pool and pool-installed) is taken:
 * launchVmm starts the pager and QEMU waiting in -incoming defer, resumeVmm loads the device
 * state, waits for the working set, resumes, reseeds and connects. A pooled start runs the same
 * resumeVmm, so it is checked, reseeded and blamed like any other restore.
 *
 * The snapshot is checked first: its fingerprint must match what this host would run, and its
 * files what meta.json says. Every page read from disk is checked against its checksum: by the
 * pager as it reads it (the userfaultfd modes), or, in the vanilla modes where QEMU reads the
 * file itself, by checking the whole memory file again whenever it was written since it last
 * matched (snapshot/checksums.ts). Damage is a SnapshotCorruptError naming the file.
 *
 * Clones must not share randomness: before any request reaches the function, the guest agent
 * gets fresh host entropy, credits it to the kernel and reseeds its CRNG, and runs the
 * function's after-restore hooks (src/vm/agent.ts; the reseedMs phase).
 *
 * A VM that dies during or after a restore reports what QEMU said and names the snapshot as
 * the likely cause. Any number of instances may restore one snapshot at once.
 */
import { ImageStore, type StoredImage } from "../image/index.js";
import {
  addEncoding,
  commitWorkingSet,
  DEFAULT_WS_CODEC,
  DEFAULT_WS_READ,
  encodingPaths,
  loadWorkingSet,
  Pager,
  pickEncoding,
  removeWorkingSet,
  shimEnv,
  workingSetPaths,
  type PagerMode,
  type PrefetchFiles,
  type WorkingSet,
  type WsCodec,
  type WsRead,
} from "../memory/index.js";
import type { ExitInfo } from "../shared/child.js";
import { isVhiveError, VhiveError, type SnapshotPart } from "../shared/errors.js";
import { assertNativeBuilt } from "../shared/native.js";
import { UndoStack } from "../shared/undo.js";
import { setTimeout as sleep } from "node:timers/promises";
import {
  checkPages,
  damagedFile,
  dropAllCaches,
  evictFromPageCache,
  fingerprintDifferences,
  memoryUnchangedSinceVerified,
  SnapshotStore,
  stampVerified,
  type StoredSnapshot,
} from "../snapshot/index.js";
import { MicroVm } from "../vm/index.js";
import { fingerprintFor } from "./fingerprint.js";
import type { Host } from "./host.js";
import { checkStart, createClient, DEFAULT_READY_TIMEOUT_MS, Instance, isPoolMode, waitFunctionReady, withHostPort, type MemoryMode, type PooledFigures, type RestoreStart, type StartOptions } from "./instance.js";

export const RESTORE_MODES = ["vanilla", "vanilla-4k", "lazy", "record", "prefetch", "floor", "reap"] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

/** The pager's mode for each memory mode that loads guest memory through userfaultfd; pool and pool-installed are pooled VMMs (vmm-pool.ts). */
const PAGER_MODES: Partial<Record<MemoryMode, PagerMode>> = { lazy: "lazy", record: "record", prefetch: "prefetch", floor: "all", pool: "prefetch", "pool-installed": "prefetch" };

export interface RestoreOptions extends StartOptions {
  mode?: RestoreMode;
  /**
   * Reseed the guest and run its after-restore hooks before it serves (default true). Only a
   * benchmark measuring what the reseed costs turns it off: clones then share their randomness.
   */
  reseed?: boolean;
  /**
   * Check every page the pager reads against its checksum (default true). Only a benchmark
   * measuring what the checks cost turns it off: a damaged page would then reach the guest.
   */
  verifyPages?: boolean;
  /** Drop the snapshot's, its working set's and the image's files from the page cache first. */
  evict?: boolean;
  /** Drop the whole machine's page cache first. */
  dropCaches?: boolean;
  /**
   * prefetch: the working set's encoding to read (packed from its trace first if it is not
   * stored yet; default: DEFAULT_WS_CODEC if stored, else what is). record: the encoding to
   * write (default DEFAULT_WS_CODEC).
   */
  wsCodec?: WsCodec;
  /** prefetch: how the pager reads the working set (default DEFAULT_WS_READ). */
  wsRead?: WsRead;
}

/** Check a snapshot against this host and its own files; returns the image it needs. */
export async function checkSnapshot(host: Host, snapshot: StoredSnapshot): Promise<StoredImage> {
  const { meta } = snapshot;
  const image = await new ImageStore(host.paths).get(meta.imageId);
  if (!image) {
    throw new VhiveError("ERR_SNAPSHOT_MISMATCH", `snapshot ${meta.id} was made from image ${meta.imageId.slice(0, 12)} (${meta.function}), which is no longer in the image store`, {
      remedy: `build or import the image again and create a new snapshot; remove this one with \`vhive snapshot rm ${meta.id}\``,
    });
  }
  const now = fingerprintFor(host, image, { memMib: meta.fingerprint.memMib, vcpus: meta.fingerprint.vcpus });
  const differences = fingerprintDifferences(meta.fingerprint, now);
  if (differences.length > 0) {
    throw new VhiveError("ERR_SNAPSHOT_MISMATCH", `snapshot ${meta.id} does not fit this host: ${differences.join("; ")}`, {
      remedy: `create a new snapshot with \`vhive snapshot create ${meta.function}\`; this one is kept until \`vhive snapshot rm ${meta.id}\``,
    });
  }
  await new SnapshotStore(host.paths).verify(snapshot);
  return image;
}

/** What `mode` means for this snapshot now; reap depends on whether a working set exists. */
export function resolveMode(mode: RestoreMode, workingSet: WorkingSet | undefined, snapshotId: string): MemoryMode {
  if (mode === "reap") return workingSet ? "prefetch" : "record";
  if (mode === "prefetch" && !workingSet) {
    throw new VhiveError("ERR_VALIDATION", `snapshot ${snapshotId} has no working set to prefetch yet`, {
      remedy: "restore it once with --mode record (or use --mode reap, which records first)",
    });
  }
  return mode;
}

export async function restoreInstance(host: Host, snapshot: StoredSnapshot, options: RestoreOptions = {}): Promise<Instance<RestoreStart>> {
  const image = await checkSnapshot(host, snapshot);
  checkStart(image, options); // a bad --proto/--method or --data fails before any work
  let workingSet = await loadWorkingSet(snapshot);
  const mode = resolveMode(options.mode ?? "vanilla", workingSet, snapshot.meta.id);
  await assertNativeBuilt();
  let prefetch: PrefetchFiles | undefined;
  if (mode === "prefetch" && workingSet) ({ workingSet, prefetch } = await prefetchFiles(snapshot, workingSet, options));
  if (!PAGER_MODES[mode]) await checkMemoryUnlessUnchanged(snapshot);
  await dropCachesFor(snapshot, image, workingSet, options);
  return withHostPort(options.hostPort, (hostPort) => restoreOnPort(host, snapshot, image, hostPort, mode, prefetch, options), options.hostAddress);
}

/**
 * The working set's files a prefetch pager reads: the encoding `options.wsCodec` asks for
 * (packed from the trace first if it is not stored yet), read as `options.wsRead` says.
 * Returns the working set as it is now (with the new encoding, if one was packed).
 */
export async function prefetchFiles(snapshot: StoredSnapshot, workingSet: WorkingSet, options: Pick<RestoreOptions, "wsCodec" | "wsRead">): Promise<{ workingSet: WorkingSet; prefetch: PrefetchFiles }> {
  if (!pickEncoding(workingSet, options.wsCodec)) workingSet = await addEncoding(snapshot, workingSet, options.wsCodec!);
  return { workingSet, prefetch: { ...pickEncoding(workingSet, options.wsCodec)!, read: options.wsRead ?? DEFAULT_WS_READ } };
}

/** As `options` ask: the whole page cache dropped, or what a restore of the snapshot reads evicted from it. */
export async function dropCachesFor(snapshot: StoredSnapshot, image: StoredImage, workingSet: WorkingSet | undefined, options: Pick<RestoreOptions, "evict" | "dropCaches">): Promise<void> {
  if (options.dropCaches) await dropAllCaches();
  if (options.evict) await evictFromPageCache(restoreFiles(snapshot, image.rootfsPath, workingSet));
}

/** The files a restore reads: the snapshot's, every encoding of its working set, the image's root filesystem. */
function restoreFiles(snapshot: StoredSnapshot, rootfsPath: string | undefined, workingSet: WorkingSet | undefined): string[] {
  const ws = workingSet?.encodings.flatMap((encoding) => [encoding.pagesPath, encoding.indexPath]) ?? [];
  return [snapshot.memPath, snapshot.sumsPath, snapshot.statePath, ...(rootfsPath ? [rootfsPath] : []), ...ws];
}

/**
 * Drop what a restore of the snapshot reads from the page cache, as `evict` does: for starts
 * that run at once and share one eviction, done before any of them begins.
 */
export async function evictRestoreFiles(host: Host, snapshot: StoredSnapshot): Promise<void> {
  const image = await new ImageStore(host.paths).get(snapshot.meta.imageId);
  await evictFromPageCache(restoreFiles(snapshot, image?.rootfsPath, await loadWorkingSet(snapshot)));
}

/**
 * For the modes where QEMU reads the memory file itself: check every page of it unless it is
 * the very file that last matched its checksums (same inode, size, mtime and ctime).
 */
async function checkMemoryUnlessUnchanged(snapshot: StoredSnapshot): Promise<void> {
  if (await memoryUnchangedSinceVerified(snapshot.dir, snapshot.memPath)) return;
  const checks = await checkPages({ memPath: snapshot.memPath, sumsPath: snapshot.sumsPath });
  const bad = checks.find((check) => check.bad > 0);
  if (bad) {
    const part: SnapshotPart = bad.role === "checksums" ? "checksums" : "memory";
    const problem = bad.problem ?? `${bad.bad} of its ${bad.pages} pages do not match their checksums (it was written to since the snapshot was made)`;
    throw damagedFile(snapshot.meta.id, part, bad.file, problem, bad.badOffsets[0]);
  }
  await stampVerified(snapshot.dir, snapshot.memPath);
}

const NOT_RESEEDED = { hooks: 0, hooksAnswered: 0, reseedUs: 0, hooksUs: 0 };

/** How long the guest agent may take to reseed and run the hooks (TCG, a loaded host). */
const RESEED_TIMEOUT_MS = 15_000;

/** Failures of a restored VM that its snapshot's files may well have caused. */
const SNAPSHOT_SUSPECTS = new Set(["ERR_VM_EXITED", "ERR_GUEST_PANIC", "ERR_GUEST_EXITED", "ERR_QEMU_START", "ERR_RESTORE"]);
/** Signals that end QEMU from outside (an operator, a test, a shutdown): no fault of the snapshot. */
const KILLED_FROM_OUTSIDE = new Set(["SIGKILL", "SIGTERM", "SIGINT", "SIGHUP"]);
const blamed = new WeakSet<VhiveError>();

/** The VM's failure, with the snapshot it ran from named as the likely cause. */
export function blameSnapshot(error: VhiveError, snapshot: StoredSnapshot, mode: MemoryMode, exit?: ExitInfo): VhiveError {
  if (!SNAPSHOT_SUSPECTS.has(error.code) || blamed.has(error) || (exit?.signal && KILLED_FROM_OUTSIDE.has(exit.signal))) return error;
  const id = snapshot.meta.id;
  const explained = new VhiveError(error.code, `${error.message} (it ran from snapshot ${id}, restored in mode ${mode}: the snapshot's files are the likely cause)`, {
    details: error.details,
    remedy: `check the snapshot with \`vhive snapshot verify ${id}\`; if it is damaged, remove it (\`vhive snapshot rm ${id}\`) and create a new one`,
    cause: error,
  });
  blamed.add(explained);
  return explained;
}

/**
 * A restore failed: if its pager failed too (a damaged page, a pager error), that is the cause
 * to report, not QEMU's exit that followed it. The pager sees QEMU go within milliseconds.
 */
async function rootCause(error: unknown, pager: Pager | undefined): Promise<unknown> {
  if (!pager || isVhiveError(error, "ERR_ABORTED")) return error;
  const pagerFailure = await Promise.race([pager.failure, sleep(500).then(() => undefined)]);
  return pagerFailure ?? error;
}

async function restoreOnPort(
  host: Host,
  snapshot: StoredSnapshot,
  image: StoredImage,
  hostPort: number,
  mode: MemoryMode,
  prefetch: PrefetchFiles | undefined,
  options: RestoreOptions,
): Promise<Instance<RestoreStart>> {
  await using undo = new UndoStack();
  let launched: LaunchedVmm | undefined;
  try {
    launched = await launchVmm(host, snapshot, image, hostPort, mode, prefetch, options, undo);
    const instance = await resumeVmm(host, launched, options, undo, { coldStartAt: launched.vm.timeline.spawnAt });
    undo.release();
    return instance;
  } catch (error) {
    throw await explainRestoreFailure(error, snapshot, mode, launched?.pager);
  }
}

/** A restore's failure as it is reported: the pager's own failure first, the snapshot named as the likely cause. */
export async function explainRestoreFailure(error: unknown, snapshot: StoredSnapshot, mode: MemoryMode, pager: Pager | undefined): Promise<unknown> {
  const cause = await rootCause(error, pager);
  return cause instanceof VhiveError ? blameSnapshot(cause, snapshot, mode) : cause;
}

/**
 * A QEMU started for a snapshot and waiting in `-incoming defer` for its device state: the
 * snapshot's devices and guest size, guest RAM through the pager in the userfaultfd modes (its
 * shim attached while QEMU started), the function's port forwarded to `hostPort`.
 */
export interface LaunchedVmm {
  vm: MicroVm;
  pager: Pager | undefined;
  snapshot: StoredSnapshot;
  image: StoredImage;
  hostPort: number;
  mode: MemoryMode;
}

/**
 * Start QEMU (and the pager first, in the userfaultfd modes) for a restore of `snapshot` in
 * `mode`; their stops are registered on `undo`. `prefetch`: the working set's files, for the
 * modes that prefetch it (prefetch, pool, pool-installed). In mode pool the pager reads and
 * installs the working set only when resumeVmm tells it to; in pool-installed, at once, as in
 * prefetch (vmm-pool.ts waits for it before the VMM counts as ready).
 */
export async function launchVmm(
  host: Host,
  snapshot: StoredSnapshot,
  image: StoredImage,
  hostPort: number,
  mode: MemoryMode,
  prefetch: PrefetchFiles | undefined,
  options: RestoreOptions,
  undo: UndoStack,
): Promise<LaunchedVmm> {
  const { fingerprint } = snapshot.meta;
  let pager: Pager | undefined;
  let env: Record<string, string> | undefined;
  const pagerMode = PAGER_MODES[mode];
  if (pagerMode) {
    const started = await Pager.start({
      mode: pagerMode,
      memPath: snapshot.memPath,
      memSumsPath: snapshot.sumsPath,
      snapshotId: snapshot.meta.id,
      workingSet: pagerMode === "prefetch" ? prefetch : undefined,
      deferPrefetch: mode === "pool",
      noVerify: options.verifyPages === false,
      log: host.log,
    });
    pager = started;
    undo.defer("stop the pager", () => started.destroy());
    env = started.qemuEnv(snapshot.memPath);
  } else if (mode === "vanilla-4k") {
    env = shimEnv(snapshot.memPath, { VHIVE_MEM_ADVICE: "random" });
  }
  let vm: MicroVm;
  try {
    vm = await MicroVm.start(
      {
        qemuPath: host.qemu.path,
        accel: host.accel,
        memMib: fingerprint.memMib,
        vcpus: fingerprint.vcpus,
        tscKhz: host.tscKhz,
        memoryFile: { path: snapshot.memPath, share: false },
        incoming: true,
        rootfsPath: image.rootfsPath,
        forward: { hostPort, hostAddress: options.hostAddress, guestPort: snapshot.meta.guestPort },
      },
      {
        log: host.log,
        runRoot: host.paths.vmsDir,
        keepRunDir: options.keepRunDir,
        signal: options.signal,
        env,
        dieWithParent: options.dieWithParent,
        onConsoleLine: options.onConsoleLine,
        explainFailure: (error, exit) => blameSnapshot(error, snapshot, mode, exit),
      },
    );
  } catch (error) {
    // QEMU failing to start may be the pager's doing (a damaged page found before its ack to the shim).
    throw await rootCause(error, pager);
  }
  undo.defer("stop the VM", () => vm.destroy());
  if (pager) void pager.failure.then((error) => vm.failWith(error));
  return { vm, pager, snapshot, image, hostPort, mode };
}

/** Where the cold start began, and for a pooled VMM what it did before. */
export interface ResumeFrom {
  /** performance.now() when the cold start began: QEMU's spawn, or when a pooled VMM was taken. */
  coldStartAt: number;
  pooled?: PooledFigures;
}

/**
 * The rest of a restore on a launched VMM: the device state, the working set (prefetch, floor;
 * pool sends its deferred prefetch as the device state loads), the vCPUs resumed, the guest
 * reseeded, the function answering on a new connection. The client's close is registered on `undo`.
 */
export async function resumeVmm(host: Host, launched: LaunchedVmm, options: RestoreOptions, undo: UndoStack, from: ResumeFrom): Promise<Instance<RestoreStart>> {
  const { vm, pager, snapshot, image, hostPort, mode } = launched;
  const client = createClient(image, hostPort, options);
  undo.defer("close the client", () => client.close());
  const died = () => vm.failure.then((error) => Promise.reject(error));

  const loadStart = performance.now();
  // The deferred working set is read and installed while the device state loads, as prefetch
  // overlaps its read with QEMU's start.
  if (pager && mode === "pool") pager.startPrefetch();
  await vm.loadState(snapshot.statePath);
  const loaded = performance.now();
  if (pager && (mode === "prefetch" || mode === "floor" || isPoolMode(mode))) {
    await Promise.race([pager.prefetchDone(), died()]);
  }
  const memoryReady = performance.now();
  // The entropy goes out while the vCPUs are still paused; the agent reads it as they run.
  const reseeded = options.reseed === false ? Promise.resolve(NOT_RESEEDED) : vm.agent!.restored({ timeoutMs: RESEED_TIMEOUT_MS });
  reseeded.catch(() => {}); // awaited below, after resume
  await vm.resume();
  const resumed = performance.now();
  let reseededAt = resumed;
  const agentDone = Promise.race([reseeded, died()]).then((reply) => {
    reseededAt = performance.now();
    return reply;
  });
  const deadline = from.coldStartAt + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  const connect = () => waitFunctionReady(vm, client, image, deadline - performance.now(), options.signal);
  // A gRPC channel's connect is the server library's HTTP/2 handshake and runs none of the
  // function's code, so it overlaps the reseed; HTTP's readiness probe is a request, so it waits.
  const connected = image.config.protocol === "grpc" ? connect() : agentDone.then(connect);
  connected.catch(() => {}); // awaited with the reseed below
  const [agent] = await Promise.all([agentDone, connected]);
  const ready = performance.now();
  if (agent.hooksAnswered < agent.hooks) {
    host.log.warn("an after-restore hook did not answer in time", { snapshot: snapshot.meta.id, hooks: agent.hooks, answered: agent.hooksAnswered });
  }
  const times = {
    // A pooled VMM was loaded before the cold start: none of its start-up is in this one.
    loadVmmMs: from.pooled ? 0 : vm.timeline.qmpReadyAt! - vm.timeline.spawnAt,
    restoreMs: loaded - loadStart,
    memoryWaitMs: memoryReady - loaded,
    resumeMs: resumed - memoryReady,
    reseedMs: reseededAt - resumed,
    connectMs: ready - reseededAt,
  };
  const start: RestoreStart = { kind: mode, snapshotId: snapshot.meta.id, times, reseed: agent, coldStartAt: from.coldStartAt, ...(from.pooled ? { pooled: from.pooled } : {}) };
  return new Instance<RestoreStart>(vm, image, hostPort, client, start, pager);
}

/**
 * After a record-mode instance has served its first invocation: write the working set the
 * pager recorded beside the snapshot (in `codec`, default DEFAULT_WS_CODEC), replacing any older one.
 */
export async function saveRecordedWorkingSet(instance: Instance<RestoreStart>, snapshot: StoredSnapshot, input: string, codec: WsCodec = DEFAULT_WS_CODEC): Promise<WorkingSet> {
  if (instance.start.kind !== "record" || !instance.pager) {
    throw new VhiveError("ERR_VALIDATION", `instance was restored in mode ${instance.start.kind}, not record`);
  }
  await removeWorkingSet(snapshot);
  const written = await instance.pager.writeWorkingSet({ ...encodingPaths(snapshot, codec), tracePath: workingSetPaths(snapshot).tracePath }, { codec });
  return commitWorkingSet(snapshot, { ...written, input });
}
