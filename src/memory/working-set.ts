/**
 * Working sets: the pages one invocation of a restored function touched, recorded by the pager
 * in `record` mode and prefetched on later cold starts. They live beside their snapshot, so a
 * working set always belongs to exactly one snapshot (one fingerprint) and goes with it:
 *
 *   snapshots/<function>/<id>/trace            the offsets in first-fault order (format 1:
 *                                              native/include/vhive_uffd.h)
 *   snapshots/<function>/<id>/ws-<codec>.pages the non-zero pages in first-touch order, in
 *                                              blocks: raw, lz4 or zstd (format 3:
 *                                              native/include/vhive_ws.h)
 *   snapshots/<function>/<id>/ws-<codec>.index their offsets and checksums, zero pages too,
 *                                              and the blocks
 *   snapshots/<function>/<id>/ws.json          pages, zero pages, when and with what input it
 *                                              was recorded, and each encoding on disk
 *   snapshots/<function>/<id>/damaged/ws-<time>/   a working set found damaged, moved aside
 *
 * One recording can be stored in several encodings (codecs): the one it was recorded with, and
 * any other packed from its trace and the memory file later (addEncoding), so the same pages
 * can be prefetched raw, lz4- or zstd-compressed and compared.
 *
 * A working set of an older format (1: no checksums; 2: every page stored raw, in offset
 * order) is not read: it counts as absent, so the next REAP start records a new one over it.
 * One of a newer format than this vhive knows is refused as damaged.
 */
import { mkdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { z } from "zod";
import { VhiveError } from "../shared/errors.js";
import { assertNativeBuilt, nativePath } from "../shared/native.js";
import { runTool } from "../shared/tool.js";
import { damagedFile, type StoredSnapshot } from "../snapshot/index.js";

/** ws-<codec>.index (format 3): a 48-byte header, then { offset, checksum } per page and { bytes, pages, checksum } per block. */
const INDEX_HEADER_BYTES = 48;
const INDEX_ENTRY_BYTES = 16;
const INDEX_BLOCK_BYTES = 16;
/** The trace (format 1): a 24-byte header, then one offset per page. */
const TRACE_HEADER_BYTES = 24;
/** ws.index of format 2: a 32-byte header, then { offset, checksum } per page. */
const INDEX2_HEADER_BYTES = 32;

export const WORKING_SET_FORMAT = 3;

/** How ws-<codec>.pages stores its blocks. */
export const WS_CODECS = ["raw", "lz4", "zstd"] as const;
export type WsCodec = (typeof WS_CODECS)[number];
/** What a working set is recorded with and prefetched from unless asked otherwise: chosen by measurement (README). */
export const DEFAULT_WS_CODEC: WsCodec = "lz4";

const EncodingSchema = z.strictObject({
  /** Of ws-<codec>.pages. */
  bytes: z.number().int().nonnegative(),
  blocks: z.number().int().nonnegative(),
  /** The most pages a block holds. */
  blockPages: z.number().int().positive(),
  level: z.number().int(),
});

export const WorkingSetMetaSchema = z.strictObject({
  format: z.literal(WORKING_SET_FORMAT),
  snapshotId: z.string(),
  /** Every page the recording touched, zero pages included: format 2 stored pages x pageSize bytes. */
  pages: z.number().int().nonnegative(),
  /** Of those, pages that are all zero: named in the index, never stored. */
  zeroPages: z.number().int().nonnegative(),
  pageSize: z.number().int().positive(),
  recordedAt: z.string(),
  /** The request data of the recording invocation. */
  input: z.string(),
  encodings: z.partialRecord(z.enum(WS_CODECS), EncodingSchema),
});

export type WorkingSetMeta = z.infer<typeof WorkingSetMetaSchema>;

export interface EncodingFiles {
  pagesPath: string;
  indexPath: string;
}

/** One encoding of a working set on disk. */
export interface WorkingSetEncoding extends EncodingFiles, z.infer<typeof EncodingSchema> {
  codec: WsCodec;
}

export interface WorkingSetPaths {
  tracePath: string;
  metaPath: string;
}

export interface WorkingSet extends WorkingSetPaths {
  meta: WorkingSetMeta;
  /** In WS_CODECS order. */
  encodings: WorkingSetEncoding[];
}

/** What the pager (or vhive-wspack) reports having written. */
export interface WrittenEncoding {
  pages: number;
  zeroPages: number;
  pageSize: number;
  codec: WsCodec;
  bytes: number;
  blocks: number;
  blockPages: number;
  level: number;
}

export function workingSetPaths(snapshot: StoredSnapshot): WorkingSetPaths {
  return { tracePath: join(snapshot.dir, "trace"), metaPath: join(snapshot.dir, "ws.json") };
}

export function encodingPaths(snapshot: StoredSnapshot, codec: WsCodec): EncodingFiles {
  return { pagesPath: join(snapshot.dir, `ws-${codec}.pages`), indexPath: join(snapshot.dir, `ws-${codec}.index`) };
}

/** The encoding to prefetch: `codec` if it is stored, else (no codec asked for) the default if stored, else the first. */
export function pickEncoding(workingSet: WorkingSet, codec?: WsCodec): WorkingSetEncoding | undefined {
  const stored = (c: WsCodec) => workingSet.encodings.find((e) => e.codec === c);
  return codec ? stored(codec) : (stored(DEFAULT_WS_CODEC) ?? workingSet.encodings[0]);
}

/** The snapshot's working set, undefined if none was recorded (or only one of an older format); a damaged one is an error. */
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
  if (typeof format === "number" && format > WORKING_SET_FORMAT) {
    throw damagedFile(id, "working-set", paths.metaPath, `it is of working-set format ${format}, which this vhive (format ${WORKING_SET_FORMAT}) does not read`);
  }
  const parsed = WorkingSetMetaSchema.safeParse(json);
  if (!parsed.success) throw damagedFile(id, "working-set", paths.metaPath, `it is invalid: ${parsed.error.issues.map((issue) => issue.path.join(".")).join(", ")}`);
  const meta = parsed.data;
  if (meta.snapshotId !== id) throw damagedFile(id, "working-set", paths.metaPath, `it belongs to snapshot ${meta.snapshotId}`);
  const encodings: WorkingSetEncoding[] = [];
  for (const codec of WS_CODECS) {
    const encoding = meta.encodings[codec];
    if (!encoding) continue;
    const files = encodingPaths(snapshot, codec);
    const pagesBytes = (await stat(files.pagesPath).catch(() => undefined))?.size;
    if (pagesBytes !== encoding.bytes) throw damagedFile(id, "working-set", files.pagesPath, `it is ${pagesBytes ?? "missing"} bytes, expected ${encoding.bytes}`);
    const indexBytes = (await stat(files.indexPath).catch(() => undefined))?.size;
    const expectedIndex = INDEX_HEADER_BYTES + INDEX_ENTRY_BYTES * meta.pages + INDEX_BLOCK_BYTES * encoding.blocks;
    if (indexBytes !== expectedIndex) throw damagedFile(id, "working-set", files.indexPath, `it is ${indexBytes ?? "missing"} bytes, expected ${expectedIndex}`);
    encodings.push({ codec, ...files, ...encoding });
  }
  if (encodings.length === 0) throw damagedFile(id, "working-set", paths.metaPath, "it names no encoding of the pages");
  return { ...paths, meta, encodings };
}

async function writeMeta(snapshot: StoredSnapshot, meta: WorkingSetMeta): Promise<WorkingSet> {
  const paths = workingSetPaths(snapshot);
  await writeFile(`${paths.metaPath}.partial`, JSON.stringify(meta, null, 2) + "\n");
  await rename(`${paths.metaPath}.partial`, paths.metaPath);
  const encodings = WS_CODECS.flatMap((codec) => {
    const encoding = meta.encodings[codec];
    return encoding ? [{ codec, ...encodingPaths(snapshot, codec), ...encoding }] : [];
  });
  return { ...paths, meta, encodings };
}

const encodingOf = (written: WrittenEncoding) => ({ bytes: written.bytes, blocks: written.blocks, blockPages: written.blockPages, level: written.level });

/** Write ws.json after the pager has written the trace and one encoding of the pages. */
export async function commitWorkingSet(snapshot: StoredSnapshot, written: WrittenEncoding & { input: string }): Promise<WorkingSet> {
  return writeMeta(snapshot, {
    format: WORKING_SET_FORMAT,
    snapshotId: snapshot.meta.id,
    pages: written.pages,
    zeroPages: written.zeroPages,
    pageSize: written.pageSize,
    recordedAt: new Date().toISOString(),
    input: written.input,
    encodings: { [written.codec]: encodingOf(written) },
  });
}

const PackedSchema = z.object({
  event: z.literal("ws-written"),
  pages: z.number(),
  zeroPages: z.number(),
  pageSize: z.number(),
  codec: z.enum(WS_CODECS),
  bytes: z.number(),
  blocks: z.number(),
  blockPages: z.number(),
  level: z.number(),
});

/**
 * Store the working set in another encoding too: its pages packed again from the trace and the
 * memory file (each checked against mem.sums) by vhive-wspack. Returns the working set with it.
 * Throws ERR_SNAPSHOT_CORRUPT if the memory file or the trace does not match.
 */
export async function addEncoding(snapshot: StoredSnapshot, workingSet: WorkingSet, codec: WsCodec): Promise<WorkingSet> {
  await assertNativeBuilt(["vhive-wspack"]);
  const files = encodingPaths(snapshot, codec);
  const args = ["pack", snapshot.memPath, snapshot.sumsPath, workingSet.tracePath, files.pagesPath, files.indexPath, "--codec", codec];
  const { stdout, code } = await runTool(nativePath("vhive-wspack"), args, { failCode: "ERR_SNAPSHOT_CORRUPT", step: `packing the working set of snapshot ${snapshot.meta.id} with ${codec}`, acceptCodes: [3] });
  const events = stdout.split("\n").filter((line) => line.trim() !== "").map((line) => JSON.parse(line) as { event?: string; message?: string });
  if (code === 3) {
    const message = events.find((event) => event.event === "corrupt")?.message ?? "it does not match its checksums";
    throw damagedFile(snapshot.meta.id, "memory", snapshot.memPath, message);
  }
  const written = PackedSchema.parse(events.find((event) => event.event === "ws-written"));
  if (written.pages !== workingSet.meta.pages || written.zeroPages !== workingSet.meta.zeroPages) {
    const got = `${written.pages} pages (${written.zeroPages} zero)`;
    throw damagedFile(snapshot.meta.id, "working-set", workingSet.tracePath, `it names ${got}, ws.json ${workingSet.meta.pages} (${workingSet.meta.zeroPages} zero)`);
  }
  return writeMeta(snapshot, { ...workingSet.meta, encodings: { ...workingSet.meta.encodings, [codec]: encodingOf({ ...written }) } });
}

/** Every file of a working set, ws.json first: without it the rest is not a working set any more. */
function workingSetFiles(snapshot: StoredSnapshot): string[] {
  const paths = workingSetPaths(snapshot);
  return [paths.metaPath, ...WS_CODECS.flatMap((codec) => Object.values(encodingPaths(snapshot, codec))), paths.tracePath];
}

/** Forget a working set (before recording a new one). */
export async function removeWorkingSet(snapshot: StoredSnapshot): Promise<void> {
  const paths = workingSetPaths(snapshot);
  await rm(paths.metaPath, { force: true });
  // The encodings too: a recording writes only one, and another left behind would be stale.
  for (const codec of WS_CODECS) for (const path of Object.values(encodingPaths(snapshot, codec))) await rm(path, { force: true });
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
  for (const path of workingSetFiles(snapshot)) {
    await rename(path, join(dest, path.slice(snapshot.dir.length + 1))).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "ENOENT") throw error; // moved by a concurrent recovery, or never written
    });
  }
  await writeFile(join(dest, "why.json"), JSON.stringify({ reason, at: new Date().toISOString() }, null, 2) + "\n");
  return dest;
}

/** Page offsets of a trace (format 1) or an index (format 2 or 3), in file order, for analysis: reuse across inputs. */
export async function readOffsets(path: string): Promise<bigint[]> {
  const data = await readFile(path);
  const magic = data.subarray(0, 8).toString("latin1");
  const layouts: Record<string, { header: number; entry: number }> = {
    VHWSIDX1: { header: TRACE_HEADER_BYTES, entry: 8 },
    VHWSIDX2: { header: INDEX2_HEADER_BYTES, entry: INDEX_ENTRY_BYTES },
    VHWSIDX3: { header: INDEX_HEADER_BYTES, entry: INDEX_ENTRY_BYTES },
  };
  const layout = layouts[magic];
  if (!layout) throw new VhiveError("ERR_SNAPSHOT_CORRUPT", `${path} is not a vhive index or trace`);
  const count = Number(data.readBigUInt64LE(16));
  const offsets: bigint[] = [];
  for (let i = 0; i < count; i++) offsets.push(data.readBigUInt64LE(layout.header + layout.entry * i));
  return offsets;
}
