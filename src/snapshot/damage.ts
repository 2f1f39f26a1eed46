/** The error for a damaged snapshot file, worded the same wherever the damage is found. */
import { SnapshotCorruptError, type SnapshotPart } from "../shared/errors.js";

const PART_WORDS: Record<SnapshotPart, string> = {
  memory: "its memory file",
  checksums: "the page checksums of its memory file",
  "working-set": "its working set's file",
  state: "its device state file",
  meta: "its metadata",
};

export function damagedFile(snapshotId: string, part: SnapshotPart, path: string, problem: string, offset?: number): SnapshotCorruptError {
  const where = offset === undefined ? "" : ` at offset ${offset} (0x${offset.toString(16)})`;
  const remedy =
    part === "working-set"
      ? `record the working set again with \`vhive snapshot restore ${snapshotId} --mode record\` (the daemon moves a damaged working set aside and records a new one by itself); \`vhive snapshot verify ${snapshotId}\` checks every file`
      : `\`vhive snapshot verify ${snapshotId}\` checks every page; remove the snapshot with \`vhive snapshot rm ${snapshotId}\` and create a new one (the daemon quarantines it and makes a new one by itself); it is kept for inspection until then`;
  return new SnapshotCorruptError(snapshotId, part, path, `snapshot ${snapshotId}: ${PART_WORDS[part]} ${path} is damaged${where}: ${problem}`, { offset, remedy });
}
