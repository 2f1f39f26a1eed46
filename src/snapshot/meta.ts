/**
 * A snapshot's meta.json: what it was made from (the fingerprint) and what its files must be.
 * A snapshot is only restored into a VM whose fingerprint is identical, and only from files
 * whose sizes (and, for the small device-state file, digest) match what was written.
 */
import { z } from "zod";

export const FingerprintSchema = z.strictObject({
  /** QEMU's whole --version line, with the distribution's package version. */
  qemu: z.string(),
  machine: z.string(),
  accel: z.enum(["kvm", "tcg"]),
  cpu: z.string(),
  memMib: z.number().int().positive(),
  vcpus: z.number().int().positive(),
  kernelDigest: z.string(),
  initramfsDigest: z.string(),
  imageDigest: z.string(),
  /** The device options of the QEMU command line (disk, network, console), which restore must repeat. */
  devices: z.string(),
});

export type Fingerprint = z.infer<typeof FingerprintSchema>;

/** Format 2: page checksums of the memory file (mem.sums) and a guest agent that reseeds restores. */
export const SNAPSHOT_FORMAT = 2;

export const SnapshotMetaSchema = z.strictObject({
  format: z.literal(SNAPSHOT_FORMAT),
  id: z.string(),
  /** The function (image name) the snapshot belongs to. */
  function: z.string(),
  imageId: z.string(),
  createdAt: z.string(),
  fingerprint: FingerprintSchema,
  /** Guest port the function listens on. */
  guestPort: z.number().int(),
  warmupInvocations: z.number().int().nonnegative(),
  /** Time from QEMU spawn to the snapshot written, in ms. */
  createMs: z.number(),
  /** Of createMs: computing the page checksums of the memory file (mem.sums). */
  checksumMs: z.number(),
  files: z.strictObject({
    state: z.strictObject({ bytes: z.number().int().nonnegative(), digest: z.string() }),
    mem: z.strictObject({ bytes: z.number().int().nonnegative() }),
    /** mem.sums: one XXH3-64 per page of mem (format: native/include/vhive_sums.h). */
    sums: z.strictObject({ bytes: z.number().int().nonnegative() }),
  }),
});

export type SnapshotMeta = z.infer<typeof SnapshotMetaSchema>;

/** Field names in the order a mismatch is reported, with words for people. */
const FIELD_NAMES: Record<keyof Fingerprint, string> = {
  qemu: "QEMU",
  machine: "machine type",
  accel: "accelerator",
  cpu: "CPU model",
  memMib: "guest memory (MiB)",
  vcpus: "vCPUs",
  kernelDigest: "guest kernel",
  initramfsDigest: "initramfs",
  imageDigest: "function image",
  devices: "device options",
};

/** Every field in which `now` differs from `then`, as "kernel: made with X, now Y". */
export function fingerprintDifferences(then: Fingerprint, now: Fingerprint): string[] {
  return (Object.keys(FIELD_NAMES) as (keyof Fingerprint)[])
    .filter((key) => then[key] !== now[key])
    .map((key) => `${FIELD_NAMES[key]}: made with ${String(then[key])}, now ${String(now[key])}`);
}
