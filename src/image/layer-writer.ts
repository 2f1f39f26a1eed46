/**
 * Writing a root filesystem tree (ext4-tree.ts) as one OCI layer: a gzip-compressed tar, made
 * with tar-stream from each entry's own metadata rather than from what is on disk, so that modes
 * (setuid, sticky), owners, times, hard links and device nodes are as in the image, and the same
 * image always gives the same bytes (entries in path order, no atime, ctime or inode numbers).
 *
 *   usr/                       directory entries end with "/"; the root itself has no entry
 *   usr/bin/su                 a file, mode 04755
 *   usr/bin/perl5.36.0         a second name of usr/bin/perl's inode: a hard link to the first name in path order
 *   dev/null                   character device 1:3
 *
 * Sockets cannot be put in a tar and are left out (counted). Extended attributes are not read
 * (counted too). Times are whole seconds; a time before 1970 is written as 1970.
 *
 * Throws ERR_IMAGE_EXPORT (a copied file is missing or changed size, the blob cannot be written),
 * ERR_ABORTED.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { stat } from "node:fs/promises";
import { join } from "node:path";
import { Readable, Transform, type Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGzip } from "node:zlib";
import { pack as tarPack, type Headers, type Pack } from "tar-stream";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { EntryKind, TreeEntry } from "./ext4-tree.js";

export interface LayerBlob {
  /** sha256 of the compressed blob: its name in blobs/sha256 and the manifest's layer digest. */
  digest: string;
  /** sha256 of the uncompressed tar: the config's rootfs.diff_ids entry. */
  diffId: string;
  sizeBytes: number;
  /** Entries written, by what they are. */
  counts: { entries: number; hardLinks: number; devices: number };
  /** What the tar could not carry. */
  lost: { sockets: string[]; xattrPaths: string[] };
}

const TAR_TYPES: Record<Exclude<EntryKind, "socket">, Headers["type"]> = {
  file: "file",
  directory: "directory",
  symlink: "symlink",
  "char-device": "character-device",
  "block-device": "block-device",
  fifo: "fifo",
};
/** File-type bits tar-stream masks off again; passing them keeps a mode of 0 from becoming its default 0644. */
const TYPE_BITS: Record<Exclude<EntryKind, "socket">, number> = {
  file: 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  "char-device": 0o020000,
  "block-device": 0o060000,
  fifo: 0o010000,
};
/** tar-stream writes a pax record for each key of `pax` (its types leave the field out). */
type TarHeader = Headers & { pax?: Record<string, string> };
/** Six octal digits: the largest uid or gid a ustar header holds; larger ones go in a pax record. */
const USTAR_ID_MAX = 0o777777;

/** Writes `entries` (sorted, contents under contentDir) as a gzip tar at blobPath. */
export async function writeLayer(
  entries: readonly TreeEntry[],
  contentDir: string,
  blobPath: string,
  signal?: AbortSignal,
): Promise<LayerBlob> {
  const diffHash = createHash("sha256");
  const blobHash = createHash("sha256");
  const pack = tarPack();
  const result: Pick<LayerBlob, "counts" | "lost"> = {
    counts: { entries: 0, hardLinks: 0, devices: 0 },
    lost: { sockets: [], xattrPaths: [] },
  };
  const written = pipeline(Readable.from(pack), hashing(diffHash), createGzip(), hashing(blobHash), createWriteStream(blobPath), { signal }).catch(
    (error: unknown) => {
      pack.destroy();
      throw writeError(error, blobPath, signal);
    },
  );
  const filled = addEntries(pack, entries, contentDir, result, signal).then(
    () => pack.finalize(),
    (error: unknown) => {
      pack.destroy(error instanceof Error ? error : new Error(String(error)));
      throw error;
    },
  );
  // Both settle: a failed write ends the entries, a failed entry ends the write.
  const [fill, write] = await Promise.allSettled([filled, written]);
  if (fill.status === "rejected") throw fill.reason;
  if (write.status === "rejected") throw write.reason;
  return {
    digest: `sha256:${blobHash.digest("hex")}`,
    diffId: `sha256:${diffHash.digest("hex")}`,
    sizeBytes: (await stat(blobPath)).size,
    ...result,
  };
}

async function addEntries(
  pack: Pack,
  entries: readonly TreeEntry[],
  contentDir: string,
  result: Pick<LayerBlob, "counts" | "lost">,
  signal: AbortSignal | undefined,
): Promise<void> {
  const firstNameOfInode = new Map<number, string>();
  for (const entry of entries) {
    if (signal?.aborted) throw new VhiveError("ERR_ABORTED", "Writing the image layer was cancelled");
    if (entry.hasXattrs) result.lost.xattrPaths.push(entry.path);
    if (entry.kind === "socket") {
      result.lost.sockets.push(entry.path);
      continue;
    }
    const header: TarHeader = {
      name: entry.kind === "directory" ? `${entry.path}/` : entry.path,
      type: TAR_TYPES[entry.kind],
      mode: TYPE_BITS[entry.kind] | entry.mode,
      uid: entry.uid,
      gid: entry.gid,
      uname: "",
      gname: "",
      mtime: new Date(Math.max(0, entry.mtimeSec) * 1000),
      size: 0,
    };
    if (entry.uid > USTAR_ID_MAX || entry.gid > USTAR_ID_MAX) header.pax = { uid: String(entry.uid), gid: String(entry.gid) };
    result.counts.entries++;
    const first = entry.kind === "directory" ? undefined : firstNameOfInode.get(entry.inode);
    if (first !== undefined) {
      result.counts.hardLinks++;
      await addEntry(pack, { ...header, type: "link", linkname: first });
      continue;
    }
    if (entry.kind !== "directory") firstNameOfInode.set(entry.inode, entry.path);
    if (entry.kind === "symlink") {
      await addEntry(pack, { ...header, linkname: entry.linkTarget ?? "" });
    } else if (entry.kind === "char-device" || entry.kind === "block-device") {
      result.counts.devices++;
      await addEntry(pack, { ...header, devmajor: entry.device?.major ?? 0, devminor: entry.device?.minor ?? 0 });
    } else if (entry.kind === "file") {
      await addFile(pack, { ...header, size: entry.sizeBytes }, join(contentDir, entry.path), entry.path);
    } else {
      await addEntry(pack, header);
    }
  }
}

/** An entry without content. */
function addEntry(pack: Pack, header: TarHeader): Promise<void> {
  return new Promise((resolve, reject) => {
    pack.entry(header, (error) => (error ? reject(error) : resolve()));
  });
}

/** A file entry, its content streamed from `copy`, which must still be the size the inode says. */
async function addFile(pack: Pack, header: TarHeader, copy: string, path: string): Promise<void> {
  const stats = await stat(copy).catch(() => undefined);
  if (!stats?.isFile() || stats.size !== header.size) {
    const what = stats === undefined ? "missing" : stats.isFile() ? `${stats.size} bytes` : "not a file";
    throw new VhiveError("ERR_IMAGE_EXPORT", `The copy of ${path} that debugfs rdump made is ${what}, not the ${header.size} bytes of the image's file`, {
      remedy: "Check the image with `e2fsck -fn` on its rootfs.ext4; rebuild or re-import it if it is damaged.",
    });
  }
  let sink!: Writable;
  const done = new Promise<void>((resolve, reject) => {
    sink = pack.entry(header, (error) => (error ? reject(error) : resolve()));
  });
  done.catch(() => undefined); // awaited below; this only keeps an early throw from leaving it unhandled
  try {
    for await (const chunk of createReadStream(copy) as AsyncIterable<Buffer>) {
      if (sink.write(chunk)) continue;
      // The pack is being read slowly (gzip); a destroyed pack destroys the sink, which never drains.
      await new Promise<void>((resolve) => {
        const go = (): void => {
          sink.off("drain", go);
          sink.off("close", go);
          resolve();
        };
        sink.on("drain", go);
        sink.on("close", go);
      });
      if (sink.destroyed) break;
    }
    sink.end();
  } catch (error) {
    sink.destroy(error instanceof Error ? error : new Error(String(error)));
    throw error;
  }
  await done;
}

/** Passes bytes through, hashing them on the way. */
function hashing(hash: Hash): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      hash.update(chunk);
      callback(null, chunk);
    },
  });
}

function writeError(error: unknown, blobPath: string, signal: AbortSignal | undefined): VhiveError {
  if (error instanceof VhiveError) return error;
  if (signal?.aborted) return new VhiveError("ERR_ABORTED", "Writing the image layer was cancelled");
  return new VhiveError("ERR_IMAGE_EXPORT", `Writing the layer ${blobPath} failed: ${messageOf(error)}`, {
    cause: error,
    remedy: "Free disk space in the state directory (the layer is written under its tmp/), then export again.",
  });
}
