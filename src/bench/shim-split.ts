/**
 * Where the time of a start through containerd goes: a client's own wall time (from its request
 * to the function's first reply) split at the steps the shim's start record timestamps
 * (src/containerd/shim/start-record.ts). All of them are epoch ms on the host's clock, the
 * client's included, so the phases add up to the client's total.
 */
import type { StartRecord } from "../containerd/shim/start-record.js";

/** The phases in order, with what each is. */
export const SHIM_PHASES = {
  sandboxMs: "RunPodSandbox: the pod's pause container (runc), its CNI network and the pod's vhive shim, started with it (pods only)",
  toShimMs: "containerd until it runs the shim's start (the container, its rootfs snapshot, the bundle; ctr's own start; 0 for a pod, whose shim started with its sandbox)",
  shimStartMs: "the shim's start and its server process, until the server listens (0 for a pod: within RunPodSandbox)",
  toCreateMs: "containerd connects and sends Create (for a pod: from the sandbox ready, the function container's start, which finds the pod's shim running, included)",
  hostMs: "the shim's host context: QEMU's version, the guest kernel's and initramfs's digests, the accelerator",
  createMs: "Create: the rootfs mounted, the container's vhive image looked up",
  toStartMs: "Create answered until Start arrives (containerd, ctr, CRI)",
  startMs: "Start: the start path (boot or restore) until the function answers",
  replyMs: "Start's answer back through containerd, and the client's first call",
} as const;
export type ShimPhase = keyof typeof SHIM_PHASES;
export type ShimSplit = Record<ShimPhase, number>;

/**
 * The split of one start: `beganAt` when the client asked (RunPodSandbox, or `ctr run`),
 * `sandboxReadyAt` when the pod's sandbox was ready (pods; else the sandbox phase is 0),
 * `repliedAt` when the first reply arrived.
 */
export function shimSplit(record: StartRecord, times: { beganAt: number; sandboxReadyAt?: number; repliedAt: number }): ShimSplit {
  const t = record.timeline;
  const afterSandbox = times.sandboxReadyAt ?? times.beganAt;
  // A pod's shim starts with its sandbox, so its start lies within RunPodSandbox.
  const shimInSandbox = times.sandboxReadyAt !== undefined && t.servingAt <= times.sandboxReadyAt;
  return {
    sandboxMs: afterSandbox - times.beganAt,
    toShimMs: shimInSandbox ? 0 : t.shimStartedAt - afterSandbox,
    shimStartMs: shimInSandbox ? 0 : t.servingAt - t.shimStartedAt,
    toCreateMs: t.createAt - (shimInSandbox ? afterSandbox : t.servingAt),
    hostMs: t.hostReadyAt - t.createAt,
    createMs: t.createdAt - t.hostReadyAt,
    toStartMs: t.startAt - t.createdAt,
    startMs: t.answeredAt - t.startAt,
    replyMs: times.repliedAt - t.answeredAt,
  };
}
