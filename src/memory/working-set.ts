/**
 * Working sets: the pages one invocation of a restored function touched, recorded by the pager
 * in `record` mode and prefetched on later cold starts. They live beside their snapshot, so a
 * working set always belongs to exactly one snapshot (one fingerprint) and goes with it:
 *
 *   snapshots/<function>/<id>/ws.pages   the pages, contiguously, in offset order
 *   snapshots/<function>/<id>/ws.index   their offsets and checksums (format 2:
 *                                        native/include/vhive_sums.h)
 *   snapshots/<function>/<id>/trace      the offsets in first-fault order (format 1:
 *                                        native/include/vhive_uffd.h)
 *   snapshots/<function>/<id>/ws.json    pages, bytes, when and with what input it was recorded
 *   snapshots/<function>/<id>/damaged/ws-<time>/   a working set found damaged, moved aside
 *
 * A working set of format 1 (no checksums) is not used: it counts as absent, so the next REAP
 * start records a new one over it.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { VhiveError } from "../shared/errors.js";
import { damagedFile, type StoredSnapshot } from "../snapshot/index.js";

/** ws.index (format 2): a 32-byte header, then { offset, checksum } per page. */
const INDEX_HEADER_BYTES = 32;
const INDEX_ENTRY_BYTES = 16;
/** The trace (format 1): a 24-byte header, then one offset per page. */
const TRACE_HEADER_BYTES = 24;

export const WORKING_SET_FORMAT = 2;

export const WorkingSetMetaSchema = z.strictObject({
  format: z.literal(WORKING_SET_FORMAT),
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
  const id = snapshot.meta.id;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw damagedFile(id, "working-set", paths.metaPath, "it is not valid JSON");
  }
  const format = (json as { format?: unknown } | null)?.format;
  if (typeof format === "number" && format < WORKING_SET_FORMAT) return undefined;
  const parsed = WorkingSetMetaSchema.safeParse(json);
  if (!parsed.success) throw damagedFile(id, "working-set", paths.metaPath, `it is invalid: ${parsed.error.issues.map((issue) => issue.path.join(".")).join(", ")}`);
  const meta = parsed.data;
  if (meta.snapshotId !== id) throw damagedFile(id, "working-set", paths.metaPath, `it belongs to snapshot ${meta.snapshotId}`);
  const pagesBytes = (await stat(paths.pagesPath).catch(() => undefined))?.size;
  if (pagesBytes !== meta.bytes) throw damagedFile(id, "working-set", paths.pagesPath, `it is ${pagesBytes ?? "missing"} bytes, expected ${meta.bytes}`);
  const indexBytes = (await stat(paths.indexPath).catch(() => undefined))?.size;
  const expectedIndex = INDEX_HEADER_BYTES + INDEX_ENTRY_BYTES * meta.pages;
  if (indexBytes !== expectedIndex) throw damagedFile(id, "working-set", paths.indexPath, `it is ${indexBytes ?? "missing"} bytes, expected ${expectedIndex}`);
  return { ...paths, meta };
}

/** Write ws.json after the pager has written the page and index files. */
export async function commitWorkingSet(snapshot: StoredSnapshot, written: { pages: number; bytes: number; pageSize: number; input: string }): Promise<WorkingSet> {
  const paths = workingSetPaths(snapshot);
  const meta: WorkingSetMeta = {
    format: WORKING_SET_FORMAT,
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

/**
 * Move a damaged working set aside (snapshots/<fn>/<id>/damaged/ws-<time>/, with why.json), so
 * the next REAP start records a new one. Only if the working set on disk is still the one that
 * was found damaged (`recordedAt`): one recorded since is left alone. Returns where it went.
 */
export async function moveWorkingSetAside(snapshot: StoredSnapshot, recordedAt: string | undefined, reason: string): Promise<string | undefined> {
  const paths = workingSetPaths(snapshot);
  const text = await readFile(paths.metaPath, "utf8").catch(() => undefined);
  if (text !== undefined && recordedAt !== undefined) {
    const onDisk = (() => {
      try {
        return (JSON.parse(text) as { recordedAt?: unknown }).recordedAt;
      } catch {
        return undefined;
      }
    })();
    if (onDisk !== undefined && onDisk !== recordedAt) return undefined; // a newer one: keep it
  }
  const at = new Date().toISOString().replace(/[:.]/g, "-");
  const dest = join(snapshot.dir, "damaged", `ws-${at}`);
  await mkdir(dest, { recursive: true });
  // ws.json first: without it the rest is not a working set any more, whatever happens next.
  for (const path of [paths.metaPath, paths.pagesPath, paths.indexPath, paths.tracePath]) {
    await rename(path, join(dest, path.slice(snapshot.dir.length + 1))).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error; // moved by a concurrent recovery, or never written
    });
  }
  await writeFile(join(dest, "why.json"), JSON.stringify({ reason, at: new Date().toISOString() }, null, 2) + "\n");
  return dest;
}

/** Page offsets of a trace (format 1) or index (format 2) file, for analysis: reuse across inputs. */
export async function readOffsets(path: string): Promise<bigint[]> {
  const data = await readFile(path);
  const magic = data.subarray(0, 8).toString("latin1");
  const layout = magic === "VHWSIDX1" ? { header: TRACE_HEADER_BYTES, entry: 8 } : magic === "VHWSIDX2" ? { header: INDEX_HEADER_BYTES, entry: INDEX_ENTRY_BYTES } : undefined;
  if (!layout) throw new VhiveError("ERR_SNAPSHOT_CORRUPT", `${path} is not a vhive index or trace`);
  const count = Number(data.readBigUInt64LE(16));
  const offsets: bigint[] = [];
  for (let i = 0; i < count; i++) offsets.push(data.readBigUInt64LE(layout.header + layout.entry * i));
  return offsets;
}
