/**
 * Applying image layers to a root directory, as a container runtime's snapshotter would, so the
 * result can become the guest's root filesystem.
 *
 * A layer is a tar changeset, plain or gzip (OCI image-spec layer.md):
 *
 *   usr/bin/tool               add or replace
 *   etc/.wh.motd               whiteout: delete etc/motd that a lower layer made
 *   var/cache/.wh..wh..opq     opaque: empty var/cache of what lower layers put there
 *
 * Each layer is read twice. Pass one lists it (hashing the blob on the way) to collect whiteouts,
 * which are applied before pass two extracts it, so a whiteout never removes its own layer's files.
 *
 * node-tar extracts, with its path protections on: absolute paths become relative, `..` entries
 * and writes through symlinks are skipped. Three things it gets wrong for a root filesystem are
 * done here instead: symlinks (node-tar 7.5 rewrites an absolute target like /bin/busybox to a
 * relative one), exact modes (it leaves files to the process umask, and its chown clears setuid),
 * and whiteouts. Paths this module touches itself go through RootTree, which refuses symlinked
 * parents, since a lower layer's `etc -> /etc` must not let a whiteout delete the host's files.
 * Not kept: device nodes (the guest mounts devtmpfs) and extended attributes (file capabilities).
 *
 * Throws ERR_IMAGE_INVALID (unreadable layer, zstd, digest mismatch), ERR_IMAGE_BUILD (a write
 * under rootDir failed), ERR_ABORTED.
 */
import { createHash, type Hash } from "node:crypto";
import { createReadStream } from "node:fs";
import { chmod, lchown, link, lstat, mkdir, open, readdir, rm, symlink } from "node:fs/promises";
import { join, posix } from "node:path";
import { createGunzip } from "node:zlib";
import * as tar from "tar";
import { digestFile } from "../shared/digest.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { LayerRef } from "./oci.js";

export interface ApplyProgress {
  /** 0-based index of the layer that is starting. */
  layerIndex: number;
  layerCount: number;
  digest: string;
}

const WHITEOUT_PREFIX = ".wh.";
const OPAQUE_MARKER = ".wh..wh..opq";
/** AUFS bookkeeping names (`.wh..wh.plnk`), which are not deletions. */
const AUFS_META_PREFIX = ".wh..wh.";
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);
const TAR_BLOCK_BYTES = 512;
type WarnData = Parameters<NonNullable<tar.TarOptionsWithAliases["onwarn"]>>[2];

const LAYER_REMEDY =
  "Re-export the image (`skopeo copy ... oci:DIR` or `docker save -o img.tar IMAGE`) and check that it was copied completely.";

/** Applies `layers` in order into `rootDir`; `onProgress` is called as each layer starts. */
export async function applyLayers(
  layers: LayerRef[],
  rootDir: string,
  options: { signal?: AbortSignal; onProgress?: (p: ApplyProgress) => void } = {},
): Promise<void> {
  const { signal, onProgress } = options;
  for (const [layerIndex, layer] of layers.entries()) {
    if (signal?.aborted) throw abortedError();
    onProgress?.({ layerIndex, layerCount: layers.length, digest: layer.digest });
    await applyLayer(layer, `layer ${layerIndex} (${layer.digest})`, rootDir, signal);
  }
}

async function applyLayer(layer: LayerRef, what: string, rootDir: string, signal?: AbortSignal): Promise<void> {
  const compression = await sniffCompression(layer.path, what);
  if (compression === "zstd") {
    throw new VhiveError("ERR_IMAGE_INVALID", `${what} is zstd-compressed, which vhive does not support`, {
      remedy: "Re-export the image with gzip layers, e.g. `skopeo copy --dest-compress-format gzip ... oci:DIR`.",
    });
  }
  const listing = await listLayer(layer, what, compression, signal);
  if (listing === "empty") return;
  const tree = new RootTree(rootDir);
  await clearLowerEntries(tree, listing);
  if (signal?.aborted) throw abortedError();
  await extract(layer, what, tree, signal);
}

type Compression = "gzip" | "zstd" | "none";

/** Decided by magic bytes: docker-archive layers have no media type, and declared ones can be wrong. */
async function sniffCompression(path: string, what: string): Promise<Compression> {
  let head: Buffer;
  try {
    const file = await open(path);
    try {
      const { buffer, bytesRead } = await file.read(Buffer.alloc(4), 0, 4, 0);
      head = buffer.subarray(0, bytesRead);
    } finally {
      await file.close();
    }
  } catch (error) {
    throw new VhiveError("ERR_IMAGE_INVALID", `${what}: cannot read blob ${path}: ${messageOf(error)}`, {
      cause: error,
      remedy: LAYER_REMEDY,
    });
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  return head.equals(ZSTD_MAGIC) ? "zstd" : "none";
}

/** What a layer takes away from lower layers; paths are relative to the root. */
interface Listing {
  /** Whited-out paths, to delete. */
  removed: string[];
  /** Directories to empty. */
  opaqueDirs: string[];
  /** Paths of non-directory entries, which replace a lower directory there wholesale. */
  nonDirs: string[];
}

/** Pass one: reads the whole layer, so a damaged blob fails here before anything is changed. */
async function listLayer(
  layer: LayerRef,
  what: string,
  compression: Compression,
  signal?: AbortSignal,
): Promise<Listing | "empty"> {
  const found: Listing = { removed: [], opaqueDirs: [], nonDirs: [] };
  const hash = createHash("sha256");
  const parser = new tar.Parser({
    strict: true, // in a listing every warning means the archive itself is damaged
    onReadEntry: (entry) => {
      const rel = entryPath(entry.path);
      if (rel !== undefined && !noteWhiteout(rel, found) && entry.type !== "Directory") found.nonDirs.push(rel);
      entry.resume();
    },
  });
  try {
    await feedTar(layer.path, parser, { signal, hash });
  } catch (error) {
    if (error instanceof VhiveError) throw error;
    // A blob that is both unreadable and mis-hashed was damaged in transit: say that instead.
    const actual = await digestFile(layer.path).catch(() => layer.digest);
    if (actual !== layer.digest) throw digestMismatch(layer, what, actual);
    // node-tar calls a tar of nothing but end-of-archive blocks unrecognised, yet that is what
    // docker writes for a layer that changes no files (RUN true, ENV ...).
    if (await isEmptyTar(layer.path, compression)) return "empty";
    const format = compression === "gzip" ? "gzip-compressed tar" : "tar archive";
    throw new VhiveError("ERR_IMAGE_INVALID", `${what}: blob ${layer.path} is not a readable ${format}: ${messageOf(error)}`, {
      cause: error,
      remedy: LAYER_REMEDY,
    });
  }
  const actual = `sha256:${hash.digest("hex")}`;
  if (actual !== layer.digest) throw digestMismatch(layer, what, actual);
  return found;
}

/** Records `rel` if it is a whiteout; true for every `.wh.` name, which is never extracted. */
function noteWhiteout(rel: string, found: Listing): boolean {
  const dir = posix.dirname(rel);
  const base = posix.basename(rel);
  if (base === OPAQUE_MARKER) {
    found.opaqueDirs.push(dir);
  } else if (base.startsWith(WHITEOUT_PREFIX) && !base.startsWith(AUFS_META_PREFIX)) {
    const name = base.slice(WHITEOUT_PREFIX.length);
    // `.wh..` would name the directory itself.
    if (name !== "" && name !== "." && name !== "..") found.removed.push(posix.join(dir, name));
  }
  return base.startsWith(WHITEOUT_PREFIX);
}

/** True if the (possibly gzip) stream is at least two blocks of zeros and nothing else. */
async function isEmptyTar(path: string, compression: Compression): Promise<boolean> {
  const source = createReadStream(path);
  const data = compression === "gzip" ? source.pipe(createGunzip()) : source;
  source.on("error", (error) => data.destroy(error));
  let total = 0;
  try {
    for await (const chunk of data as AsyncIterable<Buffer>) {
      if (chunk.some((byte) => byte !== 0)) return false;
      total += chunk.length;
    }
  } catch {
    return false;
  } finally {
    source.destroy();
    data.destroy();
  }
  return total >= 2 * TAR_BLOCK_BYTES;
}

function digestMismatch(layer: LayerRef, what: string, actual: string): VhiveError {
  return new VhiveError("ERR_IMAGE_INVALID", `${what}: blob ${layer.path} has digest ${actual}, not ${layer.digest}`, {
    remedy: LAYER_REMEDY,
  });
}

/**
 * Removes what the layer takes away, before pass two, when everything under the root came from
 * lower layers. A path under a symlink or a file is skipped: no lower layer could have put it there.
 */
async function clearLowerEntries(tree: RootTree, listing: Listing): Promise<void> {
  for (const rel of listing.removed) {
    const abs = await tree.resolve(rel);
    if (abs !== undefined) await tree.remove(rel, abs);
  }
  for (const dir of listing.opaqueDirs) {
    const abs = await tree.resolve(dir);
    if (abs === undefined || !(await isDir(abs))) continue;
    for (const child of await readdir(abs)) await rm(join(abs, child), { recursive: true, force: true });
    tree.forget(dir);
  }
  // node-tar only rmdir()s a directory that a file replaces, which fails unless it is empty.
  for (const rel of listing.nonDirs) {
    const abs = await tree.resolve(rel);
    if (abs !== undefined && (await isDir(abs))) await tree.remove(rel, abs);
  }
}

async function isDir(abs: string): Promise<boolean> {
  return (await lstat(abs).catch(() => undefined))?.isDirectory() ?? false;
}

/** What pass two must finish itself after node-tar, keyed by path; the last entry for a path wins, as in tar. */
type Fixup =
  | { kind: "mode"; mode: number; isDir: boolean }
  | { kind: "symlink"; target: string; uid: number | undefined; gid: number | undefined }
  | { kind: "link-to-symlink"; target: string };

/** Pass two. */
async function extract(layer: LayerRef, what: string, tree: RootTree, signal?: AbortSignal): Promise<void> {
  const fixups = new Map<string, Fixup>();
  const unpack = new tar.Unpack({
    cwd: tree.root,
    // preserveOwner defaults to true when running as root, which vhive's image builder does.
    filter: (path, entry) => (entry instanceof tar.ReadEntry ? planEntry(path, entry, fixups) : false),
  });
  try {
    await feedTar(layer.path, unpack, { signal, onWarn: (code, message, data) => writeFailure(what, code, message, data) });
    for (const [rel, fixup] of fixups) await finishEntry(tree, rel, fixup);
  } catch (error) {
    if (error instanceof VhiveError) throw error;
    throw new VhiveError("ERR_IMAGE_BUILD", `${what}: extracting into ${tree.root} failed: ${messageOf(error)}`, {
      cause: error,
    });
  }
}

/** Decides whether node-tar extracts an entry, recording what is left to do afterwards. */
function planEntry(rawPath: string, entry: tar.ReadEntry, fixups: Map<string, Fixup>): boolean {
  const rel = entryPath(rawPath);
  if (rel === undefined || posix.basename(rel).startsWith(WHITEOUT_PREFIX)) return false;
  fixups.delete(rel); // re-inserted below so that map order stays entry order
  switch (entry.type) {
    case "File":
    case "OldFile":
    case "ContiguousFile":
    case "Directory":
      if (entry.mode !== undefined) fixups.set(rel, { kind: "mode", mode: entry.mode & 0o7777, isDir: entry.type === "Directory" });
      return true;
    case "SymbolicLink":
      fixups.set(rel, { kind: "symlink", target: entry.linkpath ?? "", uid: entry.uid, gid: entry.gid });
      return false;
    case "Link": {
      // node-tar would link before the symlink exists, so a hard link to one waits for it.
      const target = entryPath(entry.linkpath ?? "");
      if (target === undefined || fixups.get(target)?.kind !== "symlink") return true;
      fixups.set(rel, { kind: "link-to-symlink", target });
      return false;
    }
    default:
      return false; // device nodes, FIFOs: the guest has devtmpfs
  }
}

/**
 * node-tar reports entries it refused for safety (absolute, `..`, through a symlink) as warnings
 * and skips them, which is what we want. Any other warning is a write that failed.
 */
function writeFailure(what: string, code: string, message: string, data: WarnData): Error | undefined {
  if (code === "TAR_ENTRY_INFO" || code === "TAR_ENTRY_UNSUPPORTED") return undefined;
  if (code === "TAR_ENTRY_ERROR" && (data.code === "TAR_ENTRY_ERROR" || data.code === "TAR_SYMLINK_ERROR")) return undefined;
  const entry = data["entry"] instanceof tar.ReadEntry ? ` ${data["entry"].path}` : "";
  return new VhiveError("ERR_IMAGE_BUILD", `${what}: could not write${entry}: ${message}`);
}

async function finishEntry(tree: RootTree, rel: string, fixup: Fixup): Promise<void> {
  if (fixup.kind === "mode") {
    const abs = await tree.resolve(rel);
    const stats = abs === undefined ? undefined : await lstat(abs).catch(() => undefined);
    // Only what node-tar actually wrote: never chmod through a symlink.
    if (abs === undefined || stats === undefined || stats.isDirectory() !== fixup.isDir || stats.isSymbolicLink()) return;
    if ((stats.mode & 0o7777) !== fixup.mode) await chmod(abs, fixup.mode);
    return;
  }
  const abs = await tree.replace(rel);
  if (abs === undefined) return;
  if (fixup.kind === "symlink") {
    await symlink(fixup.target, abs);
    if (process.getuid?.() === 0 && fixup.uid !== undefined && fixup.gid !== undefined) await lchown(abs, fixup.uid, fixup.gid);
    return;
  }
  const target = await tree.resolve(fixup.target);
  if (target !== undefined) await link(target, abs); // link(2) does not follow the symlink
}

/** An entry's path relative to the root ("." for the root), or undefined if it would climb out. */
function entryPath(raw: string): string | undefined {
  const parts = raw.split("/").filter((part) => part !== "" && part !== ".");
  if (parts.includes("..")) return undefined;
  return parts.length === 0 ? "." : parts.join("/");
}

/**
 * Paths under the root, resolved without following symlinks: a parent that is a symlink or not
 * a directory makes a path unusable, as node-tar refuses to write through symlinks. Directories
 * found real are cached for the layer; forget() drops them after a change.
 */
class RootTree {
  readonly root: string;
  readonly #realDirs = new Set<string>();

  constructor(root: string) {
    this.root = root;
  }

  /** The absolute path of `rel` if each parent is a real directory (made if missing, with `create`). */
  async resolve(rel: string, create = false): Promise<string | undefined> {
    const parts = rel === "." ? [] : rel.split("/");
    for (let depth = 1; depth < parts.length; depth++) {
      if (!(await this.#isRealDir(parts.slice(0, depth).join("/"), create))) return undefined;
    }
    return join(this.root, rel);
  }

  /** Resolves `rel` with parents made, and removes whatever is there, for a new entry. */
  async replace(rel: string): Promise<string | undefined> {
    const abs = rel === "." ? undefined : await this.resolve(rel, true);
    if (abs !== undefined) await this.remove(rel, abs);
    return abs;
  }

  /** Removes `rel` (at `abs`, from resolve()) and everything under it. */
  async remove(rel: string, abs: string): Promise<void> {
    await rm(abs, { recursive: true, force: true });
    this.forget(rel);
  }

  forget(rel: string): void {
    if (rel === ".") return this.#realDirs.clear();
    for (const dir of this.#realDirs) if (dir === rel || dir.startsWith(`${rel}/`)) this.#realDirs.delete(dir);
  }

  async #isRealDir(rel: string, create: boolean): Promise<boolean> {
    if (this.#realDirs.has(rel)) return true;
    const abs = join(this.root, rel);
    const stats = await lstat(abs).catch((error: NodeJS.ErrnoException) => {
      if (error.code === "ENOENT") return undefined;
      throw error;
    });
    if (stats === undefined) {
      if (!create) return false;
      await mkdir(abs, { mode: 0o755 });
    } else if (!stats.isDirectory()) {
      return false;
    }
    this.#realDirs.add(rel);
    return true;
  }
}

export interface FeedOptions {
  signal?: AbortSignal | undefined;
  /** Fed every byte of the file, so a digest costs no second read. */
  hash?: Hash;
  /** Turns a warning into the rejection (and stops the sink), or returns undefined to let it pass. */
  onWarn?: (code: string, message: string, data: WarnData) => Error | undefined;
}

/**
 * Streams a file into a node-tar Parser or Unpack; resolves once it has closed (for Unpack, once
 * every entry is written). Shared with oci.ts, which unpacks archive tars the same way.
 */
export function feedTar(path: string, sink: tar.Parser, options: FeedOptions = {}): Promise<void> {
  const { signal, hash, onWarn } = options;
  return new Promise<void>((resolve, reject) => {
    const input = createReadStream(path);
    let settled = false;
    const settle = (error?: unknown): void => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      input.destroy();
      if (error === undefined) resolve();
      else reject(error);
    };
    const stop = (error: unknown): void => {
      settle(error);
      // A fresh Error: node-tar decorates the one it is given with its own fields.
      sink.abort(new Error("stopped"));
    };
    const onAbort = (): void => stop(new VhiveError("ERR_ABORTED", `Reading ${path} was cancelled`));
    if (signal?.aborted) return onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    sink.on("warn", (code: string, message: string, data: WarnData) => {
      const error = onWarn?.(code, message, data);
      if (error !== undefined) stop(error);
    });
    sink.on("error", settle);
    sink.on("close", () => settle());
    input.on("error", stop);
    if (hash !== undefined) input.on("data", (chunk) => hash.update(chunk));
    input.pipe(sink as unknown as NodeJS.WritableStream);
  });
}

function abortedError(): VhiveError {
  return new VhiveError("ERR_ABORTED", "Applying image layers was cancelled");
}
