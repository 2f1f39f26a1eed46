/**
 * Working sets: the pages one invocation of a restored function touched, recorded by the pager
 * in `record` mode and prefetched on later cold starts. They live beside their snapshot, so a
 * working set always belongs to exactly one snapshot (one fingerprint) and goes with it:
 *
 *   snapshots/<function>/<id>/ws.pages   the pages, contiguously, in offset order
 *   snapshots/<function>/<id>/ws.index   their offsets (format: native/include/vhive_uffd.h)
 *   snapshots/<function>/<id>/trace      the offsets in first-fault order
 *   snapshots/<function>/<id>/ws.json    pages, bytes, when and with what input it was recorded
 */
import { readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { VhiveError } from "../shared/errors.js";
import type { StoredSnapshot } from "../snapshot/index.js";

const INDEX_HEADER_BYTES = 24;

export const WorkingSetMetaSchema = z.strictObject({
  format: z.literal(1),
  snapshotId: z.string(),
  pages: z.number().int().nonnegative(),
  bytes: z.number().int().nonnegative(),
  pageSize: z.number().int().positive(),
  recordedAt: z.string(),
  /** The request data of the recording invocation. */
  input: z.string(),
});

export type WorkingSetMeta = z.infer<typeof WorkingSetMetaSchema>;

export interface WorkingSetPaths {
  pagesPath: string;
  indexPath: string;
  tracePath: string;
  metaPath: string;
}

export interface WorkingSet extends WorkingSetPaths {
  meta: WorkingSetMeta;
}

export function workingSetPaths(snapshot: StoredSnapshot): WorkingSetPaths {
  return {
    pagesPath: join(snapshot.dir, "ws.pages"),
    indexPath: join(snapshot.dir, "ws.index"),
    tracePath: join(snapshot.dir, "trace"),
    metaPath: join(snapshot.dir, "ws.json"),
  };
}

/** The snapshot's working set, undefined if none was recorded; a damaged one is an error. */
export async function loadWorkingSet(snapshot: StoredSnapshot): Promise<WorkingSet | undefined> {
  const paths = workingSetPaths(snapshot);
  const text = await readFile(paths.metaPath, "utf8").catch(() => undefined);
  if (text === undefined) return undefined;
  const damaged = (what: string) =>
    new VhiveError("ERR_SNAPSHOT_CORRUPT", `the working set of snapshot ${snapshot.meta.id}: ${what}`, {
      remedy: `record it again with \`vhive snapshot restore ${snapshot.meta.id} --mode record\`, or remove the snapshot`,
    });
  let meta: WorkingSetMeta;
  try {
    meta = WorkingSetMetaSchema.parse(JSON.parse(text));
  } catch {
    throw damaged(`${paths.metaPath} is not valid`);
  }
  if (meta.snapshotId !== snapshot.meta.id) throw damaged(`${paths.metaPath} belongs to snapshot ${meta.snapshotId}`);
  const pagesBytes = (await stat(paths.pagesPath).catch(() => undefined))?.size;
  if (pagesBytes !== meta.bytes) throw damaged(`${paths.pagesPath} is ${pagesBytes ?? "missing"} bytes, expected ${meta.bytes}`);
  const indexBytes = (await stat(paths.indexPath).catch(() => undefined))?.size;
  const expectedIndex = INDEX_HEADER_BYTES + 8 * meta.pages;
  if (indexBytes !== expectedIndex) throw damaged(`${paths.indexPath} is ${indexBytes ?? "missing"} bytes, expected ${expectedIndex}`);
  return { ...paths, meta };
}

/** Write ws.json after the pager has written the page and index files. */
export async function commitWorkingSet(snapshot: StoredSnapshot, written: { pages: number; bytes: number; pageSize: number; input: string }): Promise<WorkingSet> {
  const paths = workingSetPaths(snapshot);
  const meta: WorkingSetMeta = {
    format: 1,
    snapshotId: snapshot.meta.id,
    pages: written.pages,
    bytes: written.bytes,
    pageSize: written.pageSize,
    recordedAt: new Date().toISOString(),
    input: written.input,
  };
  await writeFile(`${paths.metaPath}.partial`, JSON.stringify(meta, null, 2) + "\n");
  await rename(`${paths.metaPath}.partial`, paths.metaPath);
  return { ...paths, meta };
}

/** Forget a working set (before recording a new one). */
export async function removeWorkingSet(snapshot: StoredSnapshot): Promise<void> {
  const paths = workingSetPaths(snapshot);
  await rm(paths.metaPath, { force: true });
}

/** Page offsets of a trace or index file (for analysis: reuse across inputs). */
export async function readOffsets(path: string): Promise<bigint[]> {
  const data = await readFile(path);
  if (data.subarray(0, 8).toString("latin1") !== "VHWSIDX1") throw new VhiveError("ERR_SNAPSHOT_CORRUPT", `${path} is not a vhive index or trace`);
  const count = Number(data.readBigUInt64LE(16));
  const offsets: bigint[] = [];
  for (let i = 0; i < count; i++) offsets.push(data.readBigUInt64LE(INDEX_HEADER_BYTES + 8 * i));
  return offsets;
}
