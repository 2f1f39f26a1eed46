/**
 * Issue 13's benchmark: a pod's start through containerd's CRI plugin, RunPodSandbox until the
 * function's first reply at the pod IP, as kubelet would see it, for each kind of start:
 *
 *   boot      handler vhive, the function container annotated dev.vhive.start=boot
 *   vanilla   handler vhive, dev.vhive.start=vanilla: the image's snapshot restored, memory lazily
 *   record    handler vhive (reap), its working set removed first: recorded, written as it stops
 *   prefetch  handler vhive (reap), the working set prefetched
 *   runc      handler runc: the same image's entrypoint as an ordinary container
 *
 * The shim keeps its snapshots in this host's state directory (containerd's VHIVE_STATE must
 * name it). Two untimed pods come first (the first boots and becomes the image's snapshot, the
 * second records its working set); then each rep starts one pod of each kind in turn, each
 * removed before the next, each after its files were evicted from the page cache: boot the
 * image, kernel and initramfs; the restores the snapshot, its working set and the image; runc
 * the image layers in containerd's overlayfs snapshotter. vhive pods are split at the shim's
 * timestamps (shim-split.ts).
 */
import { join } from "node:path";
import { containerConfig, PodSet, type CriClient } from "../containerd/cri/index.js";
import { epochMs, readStartRecord, taskBundle, type StartRecord } from "../containerd/shim/start-record.js";
import { VhiveError } from "../shared/errors.js";
import { evictFromPageCache, evictTreeFromPageCache } from "../snapshot/index.js";
import { removeWorkingSet } from "../memory/index.js";
import type { StoredImage } from "../image/index.js";
import { createClient, defaultRequestData, evictRestoreFiles, type Host } from "../start/index.js";
import { imageOf, snapshotOfImage } from "./containerd-start.js";
import { shimSplit, type ShimSplit } from "./shim-split.js";
import { medianOfFields, summarize, type Summary } from "./stats.js";

export const POD_KINDS = ["boot", "vanilla", "record", "prefetch", "runc"] as const;
export type PodKind = (typeof POD_KINDS)[number];

const CRI_NAMESPACE = "k8s.io";
const FUNCTION_CONTAINER = "user-container";
/** What each vhive kind's start record must say. */
const EXPECTED_START: Record<Exclude<PodKind, "runc">, string> = { boot: "boot", vanilla: "vanilla", record: "record", prefetch: "prefetch" };
const POLICY: Record<Exclude<PodKind, "runc">, string> = { boot: "boot", vanilla: "vanilla", record: "reap", prefetch: "reap" };

export interface PodStartOptions {
  cri: CriClient;
  /** containerd's state directory (the tasks' bundles, where the start records are). */
  containerdStateDir: string;
  /** containerd's root directory (its overlayfs snapshotter holds the image layers runc runs). */
  containerdRootDir: string;
  /** The function's image in containerd's k8s.io namespace (a `vhive image export` archive, imported). */
  imageRef: string;
  /** Where the pods' container logs go. */
  logDirectory: string;
  kinds: readonly PodKind[];
  reps: number;
  data?: string;
  invokeTimeoutMs?: number;
  signal?: AbortSignal;
  onProgress?: (what: string) => void;
}

export interface PodStartRun {
  kind: PodKind;
  /** How the function started: the shim's start kind, or runc. */
  start: string;
  /** RunPodSandbox until the first reply at the pod IP. */
  totalMs: number;
  /** vhive pods: where the time went. */
  split?: ShimSplit;
  /** runc pods: RunPodSandbox, then CreateContainer + StartContainer, then until the function answered. */
  runcSplit?: { sandboxMs: number; containerMs: number; answerMs: number };
}

export interface PodKindFigures {
  totalMs: Summary;
  split?: ShimSplit;
  runcSplit?: PodStartRun["runcSplit"];
}

export interface PodStartReport {
  imageRef: string;
  snapshotId: string;
  accel: string;
  reps: number;
  kinds: Partial<Record<PodKind, PodKindFigures>>;
  runs: PodStartRun[];
}

export async function benchPodStart(host: Host, options: PodStartOptions): Promise<PodStartReport> {
  await using pods = new PodSet(options.cri, { logDirectory: options.logDirectory });
  const progress = options.onProgress ?? (() => {});
  const context = { host, options, pods };

  progress("the image's first pod: boots, and becomes its snapshot as it stops");
  const first = await vhivePod(context, "warm-boot", "reap");
  expectStart(first.record, "boot", "the image's first pod");
  const image = first.image;
  const snapshot = await snapshotOfImage(host, image);
  progress("the second pod: records the working set");
  expectStart((await vhivePod(context, "warm-record", "reap", image)).record, "record", "the image's second pod");

  const runs: PodStartRun[] = [];
  for (let rep = 1; rep <= options.reps; rep++) {
    for (const kind of options.kinds) {
      progress(`rep ${rep}/${options.reps}: ${kind}`);
      if (kind === "runc") {
        await evictTreeFromPageCache(join(options.containerdRootDir, "io.containerd.snapshotter.v1.overlayfs", "snapshots"));
        runs.push(await runcPod(context, `runc-${rep}`, image));
        continue;
      }
      if (kind === "boot") await evictFromPageCache([image.rootfsPath, host.guest.kernel.path, host.guest.initramfs.path]);
      else {
        if (kind === "record") await removeWorkingSet(snapshot);
        await evictRestoreFiles(host, snapshot);
      }
      const pod = await vhivePod(context, `${kind}-${rep}`, POLICY[kind], image);
      expectStart(pod.record, EXPECTED_START[kind], `a ${kind} pod`);
      runs.push({ kind, start: pod.record.start, totalMs: pod.totalMs, split: pod.split });
    }
  }

  const kinds: PodStartReport["kinds"] = {};
  for (const kind of options.kinds) {
    const mine = runs.filter((run) => run.kind === kind);
    kinds[kind] = {
      totalMs: summarize(mine.map((run) => run.totalMs)),
      ...(kind === "runc" ? { runcSplit: medianOfFields(mine.map((run) => run.runcSplit!)) } : { split: medianOfFields(mine.map((run) => run.split!)) as ShimSplit }),
    };
  }
  return { imageRef: options.imageRef, snapshotId: snapshot.meta.id, accel: host.accel, reps: options.reps, kinds, runs };
}

interface Context {
  host: Host;
  options: PodStartOptions;
  pods: PodSet;
}

/** A function pod with handler vhive: RunPodSandbox until the reply at the pod IP, then taken down as kubelet does. */
async function vhivePod(context: Context, name: string, policy: string, known?: StoredImage): Promise<{ record: StartRecord; image: StoredImage; totalMs: number; split: ShimSplit }> {
  const { host, options, pods } = context;
  const { signal } = options;
  const beganAt = epochMs();
  const pod = await pods.runPod(name, "vhive", { signal });
  const sandboxReadyAt = epochMs();
  const functionId = await pods.startContainer(pod, containerConfig(FUNCTION_CONTAINER, options.imageRef, { annotations: { "dev.vhive.start": policy }, logPath: `${name}.log` }), signal);
  const bundle = taskBundle(options.containerdStateDir, CRI_NAMESPACE, functionId);
  const image = known ?? (await imageOf(host, await readStartRecord(bundle)));
  const repliedAt = await firstReply(image, pod.ip, options);
  const record = await readStartRecord(bundle);
  await pods.remove(pod, signal);
  return { record, image, totalMs: repliedAt - beganAt, split: shimSplit(record, { beganAt, sandboxReadyAt, repliedAt }) };
}

/** The same image with handler runc: its entrypoint as an ordinary container in the pod. */
async function runcPod(context: Context, name: string, image: StoredImage): Promise<PodStartRun> {
  const { options, pods } = context;
  const { signal } = options;
  const beganAt = epochMs();
  const pod = await pods.runPod(name, "runc", { signal });
  const sandboxReadyAt = epochMs();
  await pods.startContainer(pod, containerConfig(FUNCTION_CONTAINER, options.imageRef, { logPath: `${name}.log` }), signal);
  const startedAt = epochMs();
  const repliedAt = await firstReply(image, pod.ip, options);
  await pods.remove(pod, signal);
  return {
    kind: "runc",
    start: "runc",
    totalMs: repliedAt - beganAt,
    runcSplit: { sandboxMs: sandboxReadyAt - beganAt, containerMs: startedAt - sandboxReadyAt, answerMs: repliedAt - startedAt },
  };
}

/** When the function first answered at the pod IP (waiting for it to listen: a runc container starts before its function does). */
async function firstReply(image: StoredImage, ip: string, options: PodStartOptions): Promise<number> {
  const client = createClient(image, image.config.port, { host: ip, invokeTimeoutMs: options.invokeTimeoutMs });
  try {
    await client.waitReady({ timeoutMs: 120_000, signal: options.signal });
    await client.invoke(options.data ?? defaultRequestData(image), { signal: options.signal });
    return epochMs();
  } finally {
    client.close();
  }
}

function expectStart(record: StartRecord, kind: string, what: string): void {
  if (record.start === kind) return;
  throw new VhiveError("ERR_VALIDATION", `${what} started by ${record.start}, not ${kind}${record.notes.length ? `: ${record.notes.join("; ")}` : ""}`, {
    remedy: "run the benchmark on a containerd whose shim uses this state directory (VHIVE_STATE) and nothing else starts the image meanwhile",
  });
}
