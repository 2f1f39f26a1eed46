/**
 * The restore start path: a new QEMU loads a snapshot's device state and maps its memory file
 * privately (mode `vanilla`: pages are read lazily on first touch, as Firecracker's default
 * restore does). The snapshot is checked first: its fingerprint must match what this host
 * would run, and its files what meta.json says. Many instances may restore one snapshot at
 * once; each gets its own copy-on-write view and its own port.
 */
import { ImageStore, type StoredImage } from "../image/index.js";
import { VhiveError } from "../shared/errors.js";
import { UndoStack } from "../shared/undo.js";
import { dropAllCaches, evictFromPageCache, fingerprintDifferences, SnapshotStore, type StoredSnapshot } from "../snapshot/index.js";
import { MicroVm } from "../vm/index.js";
import { DEFAULT_READY_TIMEOUT_MS, type StartOptions } from "./boot.js";
import { fingerprintFor } from "./fingerprint.js";
import type { Host } from "./host.js";
import { createClient, Instance, waitFunctionReady, withHostPort, type RestoreStart } from "./instance.js";

export const RESTORE_MODES = ["vanilla"] as const;
export type RestoreMode = (typeof RESTORE_MODES)[number];

export interface RestoreOptions extends StartOptions {
  mode?: RestoreMode;
  /** Drop the snapshot's and the image's files from the page cache first (a cold start from disk). */
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

export async function restoreInstance(host: Host, snapshot: StoredSnapshot, options: RestoreOptions = {}): Promise<Instance<RestoreStart>> {
  const image = await checkSnapshot(host, snapshot);
  createClient(image, 1, options).close(); // a bad --proto/--method fails before any work
  if (options.dropCaches) await dropAllCaches();
  if (options.evict) await evictFromPageCache([snapshot.memPath, snapshot.statePath, image.rootfsPath]);
  return withHostPort(options.hostPort, (hostPort) => restoreOnPort(host, snapshot, image, hostPort, options));
}

async function restoreOnPort(host: Host, snapshot: StoredSnapshot, image: StoredImage, hostPort: number, options: RestoreOptions): Promise<Instance<RestoreStart>> {
  const { fingerprint } = snapshot.meta;
  await using undo = new UndoStack();
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
    { log: host.log, runRoot: host.paths.vmsDir, keepRunDir: options.keepRunDir, signal: options.signal },
  );
  undo.defer("stop the VM", () => vm.destroy());
  const client = createClient(image, hostPort, options);
  undo.defer("close the client", () => client.close());

  const loadStart = performance.now();
  await vm.loadState(snapshot.statePath);
  const loaded = performance.now();
  await vm.resume();
  const resumed = performance.now();
  const deadline = vm.timeline.spawnAt + (options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  await waitFunctionReady(vm, client, image, deadline - performance.now(), options.signal);
  const ready = performance.now();
  undo.release();
  return new Instance<RestoreStart>(vm, image, hostPort, client, {
    kind: "vanilla",
    snapshotId: snapshot.meta.id,
    times: {
      loadVmmMs: vm.timeline.qmpReadyAt! - vm.timeline.spawnAt,
      restoreMs: loaded - loadStart,
      resumeMs: resumed - loaded,
      connectMs: ready - resumed,
    },
  });
}
