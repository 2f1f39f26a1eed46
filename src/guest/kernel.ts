/**
 * The guest kernel: the uncompressed ELF vmlinux inside the Debian cloud kernel's bzImage.
 * microvm boots that ELF directly through its PVH entry point, which skips the bzImage
 * decompressor (and its seconds under TCG). The Debian image carries an LZ4 payload in the
 * legacy frame format; we find its magic and stream it through `lz4 -dc`, as the kernel's own
 * scripts/extract-vmlinux does.
 *
 * On disk: kernel/vmlinux and kernel/kernel.json ({ version, source, sourceDigest, digest }).
 */
import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { ChildHandle } from "../shared/child.js";
import { digestFileCached } from "../shared/digest.js";
import { VhiveError } from "../shared/errors.js";
import { toolMissing } from "../shared/tool.js";

export interface GuestKernel {
  /** Path of the uncompressed ELF vmlinux. */
  path: string;
  /** Kernel release, e.g. "6.1.0-56-cloud-amd64"; selects /lib/modules/<version>. */
  version: string;
  /** sha256 of the vmlinux file. */
  digest: string;
  /** The vmlinuz it was extracted from. */
  source: string;
  sourceDigest: string;
}

const LZ4_LEGACY_MAGIC = Buffer.from([0x02, 0x21, 0x4c, 0x18]);
const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);
const KERNEL_REMEDY = "apt-get install linux-image-cloud-amd64 (or run scripts/setup.sh)";

/** The newest Debian cloud kernel in /boot, by version order. */
export async function findCloudKernel(bootDir = "/boot"): Promise<{ source: string; version: string }> {
  const names = await readdir(bootDir).catch(() => [] as string[]);
  const versions = names
    .filter((name) => /^vmlinuz-.*-cloud-amd64$/.test(name))
    .map((name) => name.slice("vmlinuz-".length))
    .sort((a, b) => a.localeCompare(b, undefined, { numeric: true }));
  const version = versions.at(-1);
  if (!version) {
    throw new VhiveError("ERR_KERNEL_MISSING", `no Debian cloud kernel (vmlinuz-*-cloud-amd64) in ${bootDir}`, {
      remedy: KERNEL_REMEDY,
    });
  }
  return { source: join(bootDir, `vmlinuz-${version}`), version };
}

/** Offset of the LZ4 payload inside a bzImage, or -1. */
export function findLz4Payload(bzImage: Buffer): number {
  return bzImage.indexOf(LZ4_LEGACY_MAGIC);
}

/** Where the digests of the guest's files and their inputs are remembered (digestFileCached). */
export const DIGEST_CACHE = "digests";

/** Extract (once, cached by the source's digest) the vmlinux of the newest cloud kernel. */
export async function prepareKernel(kernelDir: string, bootDir = "/boot"): Promise<GuestKernel> {
  const { source, version } = await findCloudKernel(bootDir);
  const digests = join(kernelDir, DIGEST_CACHE);
  const sourceDigest = await digestFileCached(source, digests);
  const metaPath = join(kernelDir, "kernel.json");
  const cached = await readFile(metaPath, "utf8")
    .then((text) => JSON.parse(text) as GuestKernel)
    .catch(() => undefined);
  if (cached && cached.sourceDigest === sourceDigest && cached.path === join(kernelDir, "vmlinux")) {
    // Trust the cache only if the file still has the recorded digest.
    const current = await digestFileCached(cached.path, digests).catch(() => undefined);
    if (current === cached.digest) return cached;
  }
  await mkdir(kernelDir, { recursive: true });
  const path = join(kernelDir, "vmlinux");
  // A name of this process's own: two shims preparing one state folder at once each finish.
  const partial = `${path}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
  await extractVmlinux(source, partial);
  await rename(partial, path);
  const kernel: GuestKernel = { path, version, digest: await digestFileCached(path, digests), source, sourceDigest };
  await writeFile(`${metaPath}.${process.pid}`, JSON.stringify(kernel, null, 2) + "\n");
  await rename(`${metaPath}.${process.pid}`, metaPath);
  return kernel;
}

async function extractVmlinux(source: string, target: string): Promise<void> {
  const bzImage = await readFile(source);
  if (bzImage.subarray(0, 4).equals(ELF_MAGIC)) {
    await writeFile(target, bzImage);
    return;
  }
  const offset = findLz4Payload(bzImage);
  if (offset < 0) {
    throw new VhiveError("ERR_KERNEL_EXTRACT", `${source} has no LZ4 payload; only LZ4-compressed bzImages are supported`, {
      remedy: KERNEL_REMEDY,
    });
  }
  const lz4 = new ChildHandle("lz4", "lz4", ["-dc"], { stdio: ["pipe", "pipe", "ignore"] });
  let spawnError: NodeJS.ErrnoException | undefined;
  lz4.process.once("error", (error: NodeJS.ErrnoException) => (spawnError = error));
  lz4.process.stdin?.on("error", () => {}); // lz4 stops reading at the payload's end: EPIPE is expected
  lz4.process.stdin?.end(bzImage.subarray(offset));
  try {
    await pipeline(lz4.process.stdout!, createWriteStream(target));
  } catch (error) {
    if (spawnError?.code === "ENOENT") throw toolMissing("lz4");
    throw new VhiveError("ERR_KERNEL_EXTRACT", `extracting ${source}: ${String(error)}`, { cause: error });
  } finally {
    await lz4.exited;
  }
  if (spawnError?.code === "ENOENT") throw toolMissing("lz4");
  // lz4 exits 1 because the bzImage has trailing data after the frame; judge the output instead.
  if (!(await isElf(target))) {
    await rm(target, { force: true });
    throw new VhiveError("ERR_KERNEL_EXTRACT", `decompressing the payload of ${source} did not give an ELF vmlinux`, {
      remedy: KERNEL_REMEDY,
    });
  }
}

async function isElf(path: string): Promise<boolean> {
  const handle = await open(path, "r");
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    const { size } = await handle.stat();
    return bytesRead === 4 && head.equals(ELF_MAGIC) && size > 1024 * 1024;
  } finally {
    await handle.close();
  }
}

/** True if the ELF file has no PT_INTERP segment, i.e. runs without a dynamic loader. */
export async function isStaticElf(path: string): Promise<boolean> {
  const data = await readFile(path);
  if (data.length < 64 || !data.subarray(0, 4).equals(ELF_MAGIC) || data[4] !== 2) return false;
  const phoff = Number(data.readBigUInt64LE(0x20));
  const phentsize = data.readUInt16LE(0x36);
  const phnum = data.readUInt16LE(0x38);
  const PT_INTERP = 3;
  for (let i = 0; i < phnum; i++) {
    const at = phoff + i * phentsize;
    if (at + 4 > data.length) return false;
    if (data.readUInt32LE(at) === PT_INTERP) return false;
  }
  return true;
}

