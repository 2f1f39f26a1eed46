/**
 * Issue 12's benchmark: a function container's start through containerd, `ctr run -d
 * --runtime io.containerd.vhive.v2 --net-host` until the function's first reply, booted and
 * prefetched, beside the same prefetch start through vhive's start path in this process (what
 * `vhive snapshot restore --mode prefetch` runs) of the very snapshot the shim restores. The
 * shim's own overhead is what the containerd prefetch start takes beyond that restore, as a
 * share of the containerd start; each containerd start is split at the shim's timestamps
 * (shim-split.ts) to show where it goes.
 *
 * The shim keeps its snapshots in this host's state directory (containerd's VHIVE_STATE must
 * name it). Two untimed starts come first: the image's first container boots and becomes its
 * snapshot as it stops, the second records the working set. Then each rep runs the three starts
 * in turn, each with its files evicted from the page cache first (boot: the image, kernel and
 * initramfs; the others: the snapshot, its working set and the image), and two references for
 * what no shim can avoid: the same image run by runc with `sleep` as its process (`ctr run -d`
 * until it returns: containerd's and runc's own start of a container) and a bare Node process
 * (`node -e 0`: the vhive shim runs two per container, its start and its server).
 */
import { ImageStore, type StoredImage } from "../image/index.js";
import { readStartRecord, taskBundle, epochMs, type StartRecord } from "../containerd/shim/start-record.js";
import { VhiveError } from "../shared/errors.js";
import { runTool } from "../shared/tool.js";
import { evictFromPageCache, SnapshotStore, type StoredSnapshot } from "../snapshot/index.js";
import { createClient, defaultRequestData, evictRestoreFiles, restoreOnce, type Host, type RestoreResult } from "../start/index.js";
import { shimSplit, type ShimSplit } from "./shim-split.js";
import { medianOfFields, summarize, type Summary } from "./stats.js";

export const VHIVE_RUNTIME = "io.containerd.vhive.v2";
const RUNC_RUNTIME = "io.containerd.runc.v2";
/** The issue's target for the shim's overhead, as a share of the containerd prefetch start. */
export const SHIM_OVERHEAD_TARGET = 0.15;

export interface ContainerdStartOptions {
  /** containerd's socket. */
  socket: string;
  /** containerd's state directory (the tasks' bundles, where the start records are). */
  containerdStateDir: string;
  /** containerd namespace (ctr's -n). */
  namespace: string;
  /** The function's image in that namespace (a `vhive image export` archive, imported). */
  imageRef: string;
  reps: number;
  data?: string;
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (what: string) => void;
}

export interface ContainerdStartRun {
  /** How the shim started it (boot, prefetch). */
  start: string;
  /** `ctr run` until the first reply. */
  totalMs: number;
  split: ShimSplit;
}

export interface ContainerdSeries {
  totalMs: Summary;
  /** Medians of each phase. */
  split: ShimSplit;
  runs: ContainerdStartRun[];
}

export interface ContainerdStartReport {
  imageRef: string;
  snapshotId: string;
  accel: string;
  reps: number;
  boot: ContainerdSeries;
  prefetch: ContainerdSeries;
  restore: {
    /** The restore call (snapshot checks, QEMU spawn, prefetch) until the reply. */
    wallMs: Summary;
    /** QEMU spawn until the reply: what `vhive snapshot restore --json` prints as totalMs. */
    totalMs: Summary;
    runs: RestoreResult[];
  };
  /** The containerd prefetch start's median beyond the restore's (wallMs), and that as a share of it. */
  overhead: { ms: number; share: number; target: number };
  /** `ctr run -d` of the same image by runc, its process `sleep`, until ctr returned (the process started). */
  runc: Summary;
  /** A bare Node process (`node -e 0`), spawn to exit. */
  node: Summary;
}

/** A container run through ctr, and its removal. */
class CtrContainers {
  readonly #options: ContainerdStartOptions;
  readonly #live = new Set<string>();
  constructor(options: ContainerdStartOptions) {
    this.#options = options;
  }

  ctr(args: string[], signal?: AbortSignal) {
    return runTool("ctr", ["--address", this.#options.socket, "--namespace", this.#options.namespace, ...args], { failCode: "ERR_VALIDATION", step: `ctr ${args.slice(0, 2).join(" ")}`, signal });
  }

  async run(id: string, annotations: Record<string, string>, signal?: AbortSignal, runtime = VHIVE_RUNTIME, command: string[] = []): Promise<void> {
    this.#live.add(id);
    const extra = Object.entries(annotations).flatMap(([key, value]) => ["--annotation", `${key}=${value}`]);
    await this.ctr(["run", "-d", "--null-io", "--net-host", ...extra, "--runtime", runtime, this.#options.imageRef, id, ...command], signal);
  }

  /** SIGTERM (the graceful stop: a capture is saved, a recording writes its working set), until it stopped, then delete. */
  async stop(id: string, signal = "SIGTERM", abort?: AbortSignal): Promise<void> {
    await this.ctr(["task", "kill", "--signal", signal, id], abort).catch(() => {}); // it may have exited already
    const deadline = Date.now() + 180_000;
    while ((await this.#status(id)) === "RUNNING") {
      if (Date.now() > deadline) throw new VhiveError("ERR_VALIDATION", `container ${id} did not stop within 180 s of ${signal}`);
      if (abort?.aborted) throw new VhiveError("ERR_ABORTED", `stopping container ${id} was cancelled`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await this.ctr(["task", "delete", id]).catch(() => {});
    await this.ctr(["container", "rm", id]);
    this.#live.delete(id);
  }

  async #status(id: string): Promise<string | undefined> {
    const { stdout } = await this.ctr(["task", "ls"]);
    return stdout.split("\n").map((line) => line.trim().split(/\s+/)).find((fields) => fields[0] === id)?.[2];
  }

  /** Kill and remove every container still here (after an error or Ctrl-C). */
  async removeAll(): Promise<void> {
    for (const id of [...this.#live]) await this.stop(id, "SIGKILL").catch(() => {});
  }
}

export async function benchContainerdStart(host: Host, options: ContainerdStartOptions): Promise<ContainerdStartReport> {
  const containers = new CtrContainers(options);
  try {
    return await measure(host, options, containers);
  } finally {
    await containers.removeAll();
  }
}

async function measure(host: Host, options: ContainerdStartOptions, containers: CtrContainers): Promise<ContainerdStartReport> {
  const { signal } = options;
  const suffix = Date.now().toString(36);
  const progress = options.onProgress ?? (() => {});

  progress("the image's first container: boots, and becomes its snapshot as it stops");
  const first = await startOnce(host, options, containers, `bench-warm-boot-${suffix}`, "reap");
  expectStart(first.record, ["boot"], "the image's first container");
  const image = first.image;
  const snapshot = await snapshotOfImage(host, image);
  progress("the second container: records the working set");
  const second = await startOnce(host, options, containers, `bench-warm-record-${suffix}`, "reap", image);
  expectStart(second.record, ["record"], "the image's second container");

  const boots: ContainerdStartRun[] = [];
  const prefetches: ContainerdStartRun[] = [];
  const restores: { wallMs: number; result: RestoreResult }[] = [];
  const runcMs: number[] = [];
  const nodeMs: number[] = [];
  const data = options.data ?? defaultRequestData(image);
  for (let rep = 1; rep <= options.reps; rep++) {
    progress(`rep ${rep}/${options.reps}: containerd boot`);
    await evictFromPageCache([image.rootfsPath, host.guest.kernel.path, host.guest.initramfs.path]);
    const boot = await startOnce(host, options, containers, `bench-boot-${rep}-${suffix}`, "boot", image);
    expectStart(boot.record, ["boot"], "a boot container");
    boots.push(boot.run);

    progress(`rep ${rep}/${options.reps}: containerd prefetch`);
    await evictRestoreFiles(host, snapshot);
    const prefetch = await startOnce(host, options, containers, `bench-prefetch-${rep}-${suffix}`, "reap", image);
    expectStart(prefetch.record, ["prefetch"], "a reap container of a snapshot with a working set");
    prefetches.push(prefetch.run);

    progress(`rep ${rep}/${options.reps}: vhive snapshot restore --mode prefetch`);
    await evictRestoreFiles(host, snapshot);
    const began = performance.now();
    const result = await restoreOnce(host, snapshot, data, { mode: "prefetch", signal, invokeTimeoutMs: options.invokeTimeoutMs });
    restores.push({ wallMs: performance.now() - began, result });

    progress(`rep ${rep}/${options.reps}: runc, and a bare Node process`);
    const runcId = `bench-runc-${rep}-${suffix}`;
    const runcBegan = performance.now();
    await containers.run(runcId, {}, signal, RUNC_RUNTIME, ["sleep", "600"]);
    runcMs.push(performance.now() - runcBegan);
    await containers.stop(runcId, "SIGKILL", signal);
    const nodeBegan = performance.now();
    await runTool(process.execPath, ["-e", "0"], { failCode: "ERR_VALIDATION", step: "running node -e 0", signal });
    nodeMs.push(performance.now() - nodeBegan);
  }

  const series = (runs: ContainerdStartRun[]): ContainerdSeries => ({ totalMs: summarize(runs.map((run) => run.totalMs)), split: medianOfFields(runs.map((run) => run.split)) as ShimSplit, runs });
  const prefetch = series(prefetches);
  const restoreWall = summarize(restores.map((r) => r.wallMs));
  const overheadMs = prefetch.totalMs.median - restoreWall.median;
  return {
    imageRef: options.imageRef,
    snapshotId: snapshot.meta.id,
    accel: host.accel,
    reps: options.reps,
    boot: series(boots),
    prefetch,
    restore: { wallMs: restoreWall, totalMs: summarize(restores.map((r) => r.result.totalMs)), runs: restores.map((r) => r.result) },
    overhead: { ms: overheadMs, share: overheadMs / prefetch.totalMs.median, target: SHIM_OVERHEAD_TARGET },
    runc: summarize(runcMs),
    node: summarize(nodeMs),
  };
}

/**
 * One container: `ctr run` until the function's first reply at the host's port, then stopped
 * gracefully. Without the image known (the first container), its start record says which it is.
 */
async function startOnce(host: Host, options: ContainerdStartOptions, containers: CtrContainers, id: string, policy: "boot" | "reap", known?: StoredImage): Promise<{ record: StartRecord; image: StoredImage; run: ContainerdStartRun }> {
  const { signal } = options;
  const bundle = taskBundle(options.containerdStateDir, options.namespace, id);
  // The client is made first (its .proto loaded): the time is containerd's and the function's.
  let client = known ? createClient(known, known.config.port, { invokeTimeoutMs: options.invokeTimeoutMs }) : undefined;
  try {
    const beganAt = epochMs();
    await containers.run(id, { "dev.vhive.start": policy }, signal);
    const image = known ?? (await imageOf(host, await readStartRecord(bundle)));
    client ??= createClient(image, image.config.port, { invokeTimeoutMs: options.invokeTimeoutMs });
    await client.waitReady({ timeoutMs: 60_000, signal });
    await client.invoke(options.data ?? defaultRequestData(image), { signal });
    const repliedAt = epochMs();
    const record = await readStartRecord(bundle);
    await containers.stop(id, "SIGTERM", signal);
    return { record, image, run: { start: record.start, totalMs: repliedAt - beganAt, split: shimSplit(record, { beganAt, repliedAt }) } };
  } finally {
    client?.close();
  }
}

function expectStart(record: StartRecord, kinds: string[], what: string): void {
  if (kinds.includes(record.start)) return;
  throw new VhiveError("ERR_VALIDATION", `${what} started by ${record.start}, not ${kinds.join(" or ")}${record.notes.length ? `: ${record.notes.join("; ")}` : ""}`, {
    remedy: "run the benchmark on a containerd whose shim uses this state directory (VHIVE_STATE) and nothing else starts the image meanwhile",
  });
}

/** The vhive image the shim made for the container. */
export async function imageOf(host: Host, record: StartRecord): Promise<StoredImage> {
  const image = await new ImageStore(host.paths).get(record.image);
  if (!image) {
    throw new VhiveError("ERR_IMAGE_NOT_FOUND", `the shim started image ${record.image.slice(0, 12)}, which is not in ${host.paths.root}`, {
      remedy: "give the bench the state directory the shim uses (--state, containerd's VHIVE_STATE)",
    });
  }
  return image;
}

/** The newest snapshot the shim saved of an image. */
export async function snapshotOfImage(host: Host, image: StoredImage): Promise<StoredSnapshot> {
  const { snapshots } = await new SnapshotStore(host.paths).list();
  const mine = snapshots.filter((snapshot) => snapshot.meta.imageId === image.id).sort((a, b) => b.meta.createdAt.localeCompare(a.meta.createdAt));
  if (!mine[0]) throw new VhiveError("ERR_SNAPSHOT_NOT_FOUND", `the image's first container stopped without saving a snapshot of ${image.name}`, { remedy: "read the shim's lines in containerd's log" });
  return mine[0];
}
