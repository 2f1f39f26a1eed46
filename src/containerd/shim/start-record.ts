/**
 * <bundle>/vhive-start.json: how the shim started a container's VM, written once the function
 * answers (task.ts), read by scripts/cri-try.sh, containerd-try.sh and the containerd and pod
 * benchmarks:
 *
 *   start       boot, vanilla, record, prefetch, ... (the start kind)
 *   snapshotId  the snapshot restored, if any
 *   startMs     the task's Start call until the function answered
 *   breakdown   that start's phases (the start path's own times)
 *   timeline    when each step happened, in ms since the epoch (with fractions), so a client
 *               can split its own wall time, from its clock, into containerd's part and the
 *               shim's (the shim's processes run on the same host clock):
 *       shimStartedAt    containerd ran `containerd-shim-vhive-v2 start` (its process began)
 *       serverStartedAt  the shim's server process began
 *       servingAt        the server listened; start printed its address to containerd
 *       createAt         containerd's Create arrived
 *       hostReadyAt      the host context was ready (QEMU, the guest kernel and initramfs checked)
 *       createdAt        Create answered (rootfs mounted, the container's vhive image found or made)
 *       startAt          containerd's Start arrived
 *       answeredAt       the function answered: Start answers now
 *
 * The bundle is <containerd state>/io.containerd.runtime.v2.task/<namespace>/<container id>.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { VhiveError } from "../../shared/errors.js";

export const START_RECORD_FILE = "vhive-start.json";

const Timeline = z
  .object({
    shimStartedAt: z.number(),
    serverStartedAt: z.number(),
    servingAt: z.number(),
    createAt: z.number(),
    hostReadyAt: z.number(),
    createdAt: z.number(),
    startAt: z.number(),
    answeredAt: z.number(),
  })
  .strict();
export type StartTimeline = z.infer<typeof Timeline>;

const StartRecordSchema = z
  .object({
    start: z.string(),
    snapshotId: z.string().optional(),
    image: z.string(),
    pid: z.number().int(),
    /** The VM's run directory: the delete of a shim that died removes it. */
    runDir: z.string(),
    startMs: z.number(),
    breakdown: z.record(z.string(), z.number()),
    notes: z.array(z.string()),
    timeline: Timeline,
  })
  .strict();
export type StartRecord = z.infer<typeof StartRecordSchema>;

/** Now, in ms since the epoch with sub-ms fractions, comparable across the host's processes. */
export function epochMs(): number {
  return performance.timeOrigin + performance.now();
}

/** The bundle containerd makes for a task of the v2 runtime. */
export function taskBundle(containerdStateDir: string, namespace: string, containerId: string): string {
  return join(containerdStateDir, "io.containerd.runtime.v2.task", namespace, containerId);
}

/** A container's start record; ERR_VALIDATION if it is missing (not a vhive microVM, or not started) or malformed. */
export async function readStartRecord(bundle: string): Promise<StartRecord> {
  const path = join(bundle, START_RECORD_FILE);
  const text = await readFile(path, "utf8").catch(() => undefined);
  if (text === undefined) {
    throw new VhiveError("ERR_VALIDATION", `${path} is missing: the container is not a vhive microVM that started`, { remedy: "start the function container with runtime io.containerd.vhive.v2 (CRI handler vhive)" });
  }
  const parsed = StartRecordSchema.safeParse(JSON.parse(text));
  if (!parsed.success) {
    throw new VhiveError("ERR_VALIDATION", `${path} is not a vhive start record: ${parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`, {
      remedy: "use the containerd-shim-vhive-v2 of the same vhive version as the reader",
    });
  }
  return parsed.data;
}
