/**
 * Reading the tree of an ext4 image without mounting it, with e2fsprogs' debugfs, which opens
 * the file read-only (so an image in use by a VM can be read):
 *
 *   ls -p <ino>       per directory: "/<ino>/<mode, octal with type>/<uid>/<gid>/<name>/<size>/"
 *   stat <ino>        per inode: mtime, size, device numbers, whether it has extended attributes
 *   rdump / .         file contents and symlinks, copied out under a directory
 *
 * rdump alone loses setuid, setgid and sticky bits, hard links (each name gets its own copy),
 * device nodes and FIFOs (skipped) and symlink times, so every entry's metadata comes from ls and
 * stat, and rdump's copy is read only for contents and symlink targets. Directories are listed by
 * inode number, one debugfs run per level of depth, so no name is ever quoted for debugfs.
 * Extended attributes are seen (hasXattrs) but not read.
 *
 * Throws ERR_IMAGE_EXPORT (debugfs reported an error, or printed what this cannot parse),
 * ERR_TOOL_MISSING, ERR_ABORTED.
 */
import { lstat, readlink } from "node:fs/promises";
import { join } from "node:path";
import { VhiveError } from "../shared/errors.js";
import { runTool } from "../shared/tool.js";

export type EntryKind = "file" | "directory" | "symlink" | "char-device" | "block-device" | "fifo" | "socket";

export interface TreeEntry {
  /** Relative to the root, "/"-separated, no leading "/": "usr/bin/python3". */
  path: string;
  inode: number;
  kind: EntryKind;
  /** Permission bits with setuid, setgid and sticky (st_mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Seconds since the epoch. */
  mtimeSec: number;
  /** Bytes of a regular file's content (0 for the rest). */
  sizeBytes: number;
  /** A symlink's target. */
  linkTarget?: string;
  /** A device node's numbers. */
  device?: { major: number; minor: number };
  hasXattrs: boolean;
}

const ROOT_INODE = 2;
const S_IFMT = 0o170000;
const KINDS = new Map<number, EntryKind>([
  [0o100000, "file"],
  [0o040000, "directory"],
  [0o120000, "symlink"],
  [0o020000, "char-device"],
  [0o060000, "block-device"],
  [0o010000, "fifo"],
  [0o140000, "socket"],
]);
/** Directory nesting deeper than this is a loop in a damaged filesystem (PATH_MAX is 4096). */
const MAX_DEPTH = 2048;

/** Every entry under the root (the root itself left out), parents before children, sorted by path. */
export async function readExt4Tree(imagePath: string, contentDir: string, signal?: AbortSignal): Promise<TreeEntry[]> {
  const listed = await listTree(imagePath, signal);
  const inodes = await statInodes(imagePath, [...new Set(listed.map((entry) => entry.inode))], signal);
  await debugfs(imagePath, ["rdump / ."], { cwd: contentDir, signal, step: `copying the files out of ${imagePath} (debugfs rdump)` });
  const entries: TreeEntry[] = [];
  for (const item of listed) {
    const inode = inodes.get(item.inode);
    if (inode === undefined) throw unreadable(imagePath, `debugfs printed no stat of inode ${item.inode} (${item.path})`);
    const entry: TreeEntry = {
      path: item.path,
      inode: item.inode,
      kind: item.kind,
      mode: item.mode,
      uid: item.uid,
      gid: item.gid,
      mtimeSec: inode.mtimeSec,
      sizeBytes: item.kind === "file" ? inode.sizeBytes : 0,
      hasXattrs: inode.hasXattrs,
    };
    if (item.kind === "symlink") entry.linkTarget = await copiedLink(contentDir, item.path, inode.sizeBytes, imagePath);
    if (item.kind === "char-device" || item.kind === "block-device") {
      if (inode.device === undefined) throw unreadable(imagePath, `debugfs printed no device numbers for ${item.path}`);
      entry.device = inode.device;
    }
    entries.push(entry);
  }
  return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

interface Listed {
  path: string;
  inode: number;
  kind: EntryKind;
  mode: number;
  uid: number;
  gid: number;
}

const LS_LINE = /^\/(\d+)\/([0-7]+)\/(\d+)\/(\d+)\/([^/]*)\/(\d*)\/$/;
const COMMAND_LINE = /^debugfs: \S+(?: -p)? <(\d+)>$/;

/** Breadth first: one debugfs run lists every directory of one depth. */
async function listTree(imagePath: string, signal: AbortSignal | undefined): Promise<Listed[]> {
  const found: Listed[] = [];
  const visited = new Set<number>([ROOT_INODE]);
  let level = new Map<number, string>([[ROOT_INODE, ""]]);
  for (let depth = 0; level.size > 0; depth++) {
    if (depth === MAX_DEPTH) throw unreadable(imagePath, `directories nest more than ${MAX_DEPTH} deep`);
    const stdout = await debugfs(imagePath, [...level.keys()].map((inode) => `ls -p <${inode}>`), {
      signal,
      step: `listing the directories of ${imagePath} (debugfs ls)`,
    });
    const next = new Map<number, string>();
    let dirPath: string | undefined;
    for (const line of stdout.split("\n")) {
      const command = COMMAND_LINE.exec(line);
      if (command) {
        dirPath = level.get(Number(command[1]));
        continue;
      }
      if (line === "") continue;
      const match = LS_LINE.exec(line);
      if (match === null || dirPath === undefined) throw unreadable(imagePath, `debugfs ls printed a line vhive cannot read: ${JSON.stringify(line)}`);
      const [, inodeText, modeText, uidText, gidText, name] = match as unknown as [string, string, string, string, string, string];
      const inode = Number(inodeText);
      // Inode 0 is a free slot in the directory (lost+found is made with many).
      if (inode === 0 || name === "." || name === "..") continue;
      const fullMode = Number.parseInt(modeText, 8);
      const kind = KINDS.get(fullMode & S_IFMT);
      const path = dirPath === "" ? name : `${dirPath}/${name}`;
      if (kind === undefined) throw unreadable(imagePath, `${path} has mode ${modeText}, of no known file type`);
      found.push({ path, inode, kind, mode: fullMode & 0o7777, uid: Number(uidText), gid: Number(gidText) });
      if (kind === "directory") {
        if (visited.has(inode)) throw unreadable(imagePath, `directory ${path} (inode ${inode}) appears twice: the filesystem is damaged`);
        visited.add(inode);
        next.set(inode, path);
      }
    }
    level = next;
  }
  return found;
}

interface InodeStat {
  mtimeSec: number;
  sizeBytes: number;
  device?: { major: number; minor: number };
  hasXattrs: boolean;
}

const SIZE_LINE = /^User:.*\sSize: (\d+)$/m;
// "mtime: 0x6b0f26e7:00000000": seconds (signed 32 bits), then epoch bits and nanoseconds.
const MTIME_LINE = /^\s*mtime: 0x([0-9a-f]{1,8})(?::([0-9a-f]{1,8}))?/m;
const DEVICE_LINE = /^Device major\/minor number: (\d+):(\d+)/m;
const XATTR_LINE = /^Extended attributes:/m;

async function statInodes(imagePath: string, inodes: number[], signal: AbortSignal | undefined): Promise<Map<number, InodeStat>> {
  const stdout = await debugfs(imagePath, inodes.map((inode) => `stat <${inode}>`), {
    signal,
    step: `reading the inodes of ${imagePath} (debugfs stat)`,
  });
  const stats = new Map<number, InodeStat>();
  // Each inode's block starts with the echoed command.
  for (const block of stdout.split(/^(?=debugfs: )/m)) {
    const command = COMMAND_LINE.exec(block.slice(0, block.indexOf("\n") === -1 ? undefined : block.indexOf("\n")));
    if (command === null) continue;
    const inode = Number(command[1]);
    const size = SIZE_LINE.exec(block);
    const mtime = MTIME_LINE.exec(block);
    if (size === null || mtime === null) throw unreadable(imagePath, `debugfs stat of inode ${inode} has no Size or mtime line`);
    const device = DEVICE_LINE.exec(block);
    stats.set(inode, {
      mtimeSec: ext4Seconds(mtime[1]!, mtime[2]),
      sizeBytes: Number(size[1]),
      device: device === null ? undefined : { major: Number(device[1]), minor: Number(device[2]) },
      hasXattrs: XATTR_LINE.test(block),
    });
  }
  return stats;
}

/** ext4 keeps a signed 32-bit time and, in large inodes, two more epoch bits beside the nanoseconds. */
function ext4Seconds(lowHex: string, extraHex: string | undefined): number {
  const low = Number.parseInt(lowHex, 16);
  const signed = low >= 2 ** 31 ? low - 2 ** 32 : low;
  const epochBits = extraHex === undefined ? 0 : Number.parseInt(extraHex, 16) & 0b11;
  return signed + epochBits * 2 ** 32;
}

/** The target of the symlink rdump made, checked against the inode's size. */
async function copiedLink(contentDir: string, path: string, sizeBytes: number, imagePath: string): Promise<string> {
  const copy = join(contentDir, path);
  const stats = await lstat(copy).catch(() => undefined);
  if (!stats?.isSymbolicLink()) throw unreadable(imagePath, `debugfs rdump did not copy the symlink ${path}`);
  const target = await readlink(copy, { encoding: "buffer" });
  if (target.length !== sizeBytes) throw unreadable(imagePath, `the symlink ${path} was copied with a ${target.length}-byte target, not ${sizeBytes}`);
  return target.toString("utf8");
}

const BANNER = /^debugfs \S+ \(.*\)$/;

/**
 * Runs debugfs read-only with `commands` on its stdin; returns stdout. debugfs exits 0 whatever
 * its commands did and prints their errors on stderr, so any line there but its banner is a failure.
 */
async function debugfs(
  imagePath: string,
  commands: string[],
  options: { cwd?: string; signal: AbortSignal | undefined; step: string },
): Promise<string> {
  const { stdout, stderr } = await runTool("debugfs", ["-f", "-", imagePath], {
    failCode: "ERR_IMAGE_EXPORT",
    step: options.step,
    cwd: options.cwd,
    input: commands.join("\n") + "\n",
    signal: options.signal,
  });
  const complaints = stderr.split("\n").filter((line) => line.trim() !== "" && !BANNER.test(line));
  if (complaints.length > 0) {
    throw new VhiveError("ERR_IMAGE_EXPORT", `${options.step}: debugfs reported errors`, {
      details: complaints.slice(0, 20).join("\n"),
      remedy: "Check the image with `e2fsck -fn` on its rootfs.ext4; rebuild or re-import it if it is damaged.",
    });
  }
  return stdout;
}

function unreadable(imagePath: string, why: string): VhiveError {
  return new VhiveError("ERR_IMAGE_EXPORT", `Cannot read the root filesystem ${imagePath}: ${why}`, {
    remedy: "Check the image with `e2fsck -fn` on its rootfs.ext4; rebuild or re-import it if it is damaged.",
  });
}
