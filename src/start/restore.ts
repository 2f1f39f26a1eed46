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
 *   prefetch    the pager reads the working set in one read and installs it before the vCPUs
 *               resume; other pages fault lazily (REAP)
 *   floor       every non-zero page installed before QEMU even maps guest RAM (it waits for the
 *               pager), that time left out of totalMs: the restore as if loading memory cost nothing
 *   reap        record when the snapshot has no working set yet, prefetch after
 *
 * The snapshot is checked first: its fingerprint must match what this host would run, and its
 * files what meta.json says. Any number of instances may restore one snapshot at once.
 */
import { ImageStore, type StoredImage } from "../image/index.js";
import {
  assertNativeBuilt,
  commitWorkingSet,
  loadWorkingSet,
  Pager,
  removeWorkingSet,
  shimEnv,
  workingSetPaths,
  type PagerMode,
  type WorkingSet,
} from "../memory/index.js";
import { VhiveError } from "../shared/errors.js";
import { UndoStack } from "../shared/undo.js";
import { dropAllCaches, evictFromPageCache, fingerprintDifferences, SnapshotStore, type StoredSnapshot } from "../snapshot/index.js";
import { MicroVm } from "../vm/index.js";
import { fingerprintFor } from "./fingerprint.js";
import type { Host } from "./host.js";
import { checkStart, createClient, DEFAULT_READY_TIMEOUT_MS, Instance, waitFunctionReady, withHostPort, type MemoryMode, type RestoreStart, type StartOptions } from "./instance.js";

export const RESTORE_MODES = ["vanilla", "vanilla-4k", "lazy", "record", "prefetch", "floor", "reap"] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

const PAGER_MODES: Partial<Record<MemoryMode, PagerMode>> = { lazy: "lazy", record: "record", prefetch: "prefetch", floor: "all" };

export interface RestoreOptions extends StartOptions {
  mode?: RestoreMode;
  /** Drop the snapshot's, its working set's and the image's files from the page cache first. */
  evict?: boolean;
  /** Drop the whole machine's page cache first. */
  dropCaches?: boolean;
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
  const workingSet = await loadWorkingSet(snapshot);
  const mode = resolveMode(options.mode ?? "vanilla", workingSet, snapshot.meta.id);
  if (mode !== "vanilla") await assertNativeBuilt();
  if (options.dropCaches) await dropAllCaches();
  if (options.evict) {
    const ws = workingSet ? [workingSet.pagesPath, workingSet.indexPath] : [];
    await evictFromPageCache([snapshot.memPath, snapshot.statePath, image.rootfsPath, ...ws]);
  }
  return withHostPort(options.hostPort, (hostPort) => restoreOnPort(host, snapshot, image, hostPort, mode, workingSet, options));
}

async function restoreOnPort(
  host: Host,
  snapshot: StoredSnapshot,
  image: StoredImage,
  hostPort: number,
  mode: MemoryMode,
  workingSet: WorkingSet | undefined,
  options: RestoreOptions,
): Promise<Instance<RestoreStart>> {
  const { fingerprint } = snapshot.meta;
  await using undo = new UndoStack();
  let pager: Pager | undefined;
  let env: Record<string, string> | undefined;
  const pagerMode = PAGER_MODES[mode];
  if (pagerMode) {
    const started = await Pager.start({ mode: pagerMode, memPath: snapshot.memPath, workingSet: mode === "prefetch" ? workingSet : undefined, log: host.log });
    pager = started;
    undo.defer("stop the pager", () => started.destroy());
    env = started.qemuEnv(snapshot.memPath);
  } else if (mode === "vanilla-4k") {
    env = shimEnv(snapshot.memPath, { VHIVE_MEM_ADVICE: "random" });
  }
  const vm = await MicroVm.start(
    {
      qemuPath: host.qemu.path,
      accel: host.accel,
      memMib: fingerprint.memMib,
      vcpus: fingerprint.vcpus,
      tscKhz: host.tscKhz,
      memoryFile: { path: snapshot.memPath, share: false },
      incoming: true,
      rootfsPath: image.rootfsPath,
      forward: { hostPort, guestPort: snapshot.meta.guestPort },
    },
    { log: host.log, runRoot: host.paths.vmsDir, keepRunDir: options.keepRunDir, signal: options.signal, env },
  );
  undo.defer("stop the VM", () => vm.destroy());
  if (pager) void pager.failure.then((error) => vm.failWith(error));
  const client = createClient(image, hostPort, options);
  undo.defer("close the client", () => client.close());

  const loadStart = performance.now();
  await vm.loadState(snapshot.statePath);
  const loaded = performance.now();
  if (pager && (mode === "prefetch" || mode === "floor")) {
    await Promise.race([pager.prefetchDone(), vm.failure.then((error) => Promise.reject(error))]);
  }
  const memoryReady = performance.now();
  await vm.resume();
  const resumed = performance.now();
  const deadline = vm.timeline.spawnAt + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  await waitFunctionReady(vm, client, image, deadline - performance.now(), options.signal);
  const ready = performance.now();
  undo.release();
  const times = {
    loadVmmMs: vm.timeline.qmpReadyAt! - vm.timeline.spawnAt,
    restoreMs: loaded - loadStart,
    memoryWaitMs: memoryReady - loaded,
    resumeMs: resumed - memoryReady,
    connectMs: ready - resumed,
  };
  return new Instance<RestoreStart>(vm, image, hostPort, client, { kind: mode, snapshotId: snapshot.meta.id, times }, pager);
}

/**
 * After a record-mode instance has served its first invocation: write the working set the
 * pager recorded beside the snapshot, replacing any older one.
 */
export async function saveRecordedWorkingSet(instance: Instance<RestoreStart>, snapshot: StoredSnapshot, input: string): Promise<WorkingSet> {
  if (instance.start.kind !== "record" || !instance.pager) {
    throw new VhiveError("ERR_VALIDATION", `instance was restored in mode ${instance.start.kind}, not record`);
  }
  await removeWorkingSet(snapshot);
  const paths = workingSetPaths(snapshot);
  const written = await instance.pager.writeWorkingSet(paths);
  return commitWorkingSet(snapshot, { ...written, input });
}
