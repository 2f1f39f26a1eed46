/** SHA-256 digests of files and byte strings, as "sha256:<hex>". */
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { mkdir, readFile, rename, stat, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { pipeline } from "node:stream/promises";

export async function digestFile(path: string): Promise<string> {
  const hash = createHash("sha256");
  await pipeline(createReadStream(path), hash);
  return `sha256:${hash.digest("hex")}`;
}

export function digestBytes(data: string | Buffer | readonly (string | Buffer)[]): string {
  const hash = createHash("sha256");
  for (const part of Array.isArray(data) ? data : [data]) hash.update(part);
  return `sha256:${hash.digest("hex")}`;
}

/** The hex part of a digest, for use in file names. */
export function digestHex(digest: string): string {
  return digest.replace(/^sha256:/, "");
}

/**
 * digestFile, remembered between processes: an entry in `cacheDir` per file keeps its digest
 * with the file's device, inode, size, mtime and ctime, and is used while all five still match
 * (ctime cannot be set back: any write to the file changes it). The shim opens the host for
 * every container, so the guest kernel's and initramfs's digests would otherwise be computed
 * again on each start (~0.3 s for a 50 MiB vmlinux). An entry is written only if the file did
 * not change while it was read; a lost or damaged entry only costs a fresh digest.
 */
export async function digestFileCached(path: string, cacheDir: string): Promise<string> {
  const key = await identityOf(path);
  const entryPath = join(cacheDir, `${createHash("sha256").update(resolve(path)).digest("hex").slice(0, 32)}.json`);
  const cached = (await readFile(entryPath, "utf8")
    .then((text) => JSON.parse(text) as { key?: unknown; digest?: unknown })
    .catch(() => undefined)) ?? {};
  if (cached.key === key && typeof cached.digest === "string") return cached.digest;
  const digest = await digestFile(path);
  if ((await identityOf(path)) === key) {
    await mkdir(cacheDir, { recursive: true });
    const partial = `${entryPath}.${process.pid}.partial`;
    await writeFile(partial, JSON.stringify({ path: resolve(path), key, digest }) + "\n");
    await rename(partial, entryPath);
  }
  return digest;
}

async function identityOf(path: string): Promise<string> {
  const info = await stat(path, { bigint: true });
  return [info.dev, info.ino, info.size, info.mtimeNs, info.ctimeNs].join(":");
}
