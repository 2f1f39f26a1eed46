/**
 * `vhive snapshot verify`: every file of a snapshot checked end to end: the sizes and the
 * device state's digest against meta.json, every page of the memory file against mem.sums,
 * and the working set's pages and index against their checksums. Restores check what they
 * read as they go; this is for the vanilla modes (where QEMU reads the memory file itself),
 * for inspection, and for a snapshot that was quarantined.
 */
import { loadWorkingSet } from "../memory/index.js";
import { SnapshotCorruptError } from "../shared/errors.js";
import { checkPages, SnapshotStore, stampVerified, type FileCheck, type StoredSnapshot } from "../snapshot/index.js";
import type { StatePaths } from "../shared/paths.js";

export interface FileVerdict {
  /** memory, checksums, state, working-set pages, working-set index, working-set meta */
  role: string;
  file: string;
  ok: boolean;
  pages?: number;
  badPages?: number;
  /** Byte offsets into the file of the first damaged pages. */
  badOffsets?: number[];
  problem?: string;
}

export interface SnapshotVerification {
  snapshot: { id: string; function: string; dir: string };
  ok: boolean;
  files: FileVerdict[];
}

function fromCheck(check: FileCheck): FileVerdict {
  return {
    role: check.role,
    file: check.file,
    ok: check.bad === 0,
    pages: check.pages,
    badPages: check.bad,
    badOffsets: check.badOffsets,
    ...(check.problem ? { problem: check.problem } : {}),
  };
}

function fromError(error: SnapshotCorruptError): FileVerdict {
  return { role: error.part, file: error.path, ok: false, problem: error.message };
}

export async function verifySnapshot(paths: StatePaths, snapshot: StoredSnapshot): Promise<SnapshotVerification> {
  const files: FileVerdict[] = [];
  const catchDamage = async <T>(check: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await check();
    } catch (error) {
      if (!(error instanceof SnapshotCorruptError)) throw error;
      files.push(fromError(error));
      return undefined;
    }
  };
  await catchDamage(() => new SnapshotStore(paths).verify(snapshot));
  const workingSet = await catchDamage(() => loadWorkingSet(snapshot));
  const checks = await checkPages({ memPath: snapshot.memPath, sumsPath: snapshot.sumsPath, workingSets: workingSet?.encodings });
  files.push(...checks.map(fromCheck));
  const ok = files.every((file) => file.ok);
  // A memory file found whole is one the vanilla modes may map without checking it again.
  if (checks.every((check) => check.role === "working-set pages" || check.role === "working-set index" || check.bad === 0)) {
    await stampVerified(snapshot.dir, snapshot.memPath).catch(() => {}); // read-only state: the check itself stands
  }
  return { snapshot: { id: snapshot.meta.id, function: snapshot.meta.function, dir: snapshot.dir }, ok, files };
}
