/**
 * A small vhive image made the way the builder makes one (a root directory, the entry script,
 * mkfs.ext4 -d, the image store), holding each kind of entry an export must carry: setuid and
 * sticky modes, owners (one too large for a ustar header), a mode of 0, a fixed time, hard
 * links, absolute and long symlinks, a device node, a FIFO, a socket, long and non-ASCII names.
 * It serves /app/www with busybox httpd on port 8080. Needs root (mknod, chown).
 */
import { execFileSync } from "node:child_process";
import { chmod, chown, copyFile, link, mkdir, rm, symlink, utimes, writeFile } from "node:fs/promises";
import { createServer } from "node:net";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import type { FunctionConfig } from "../../../src/image/index.js";
import { ImageStore, type StoredImage } from "../../../src/image/index.js";
import { makeExt4, writeEntryScript } from "../../../src/image/rootfs.js";
import { digestFile } from "../../../src/shared/digest.js";
import type { StatePaths } from "../../../src/shared/paths.js";

export const TINY_CONFIG: FunctionConfig = {
  argv: ["/bin/busybox", "httpd", "-f", "-p", "8080", "-h", "/app/www"],
  env: { GREETING: "a=b" },
  workdir: "/app",
  port: 8080,
  protocol: "http",
  httpPath: "/index.html",
  memMib: 128,
  inputs: ["one", "two"],
  proto: "tiny.proto",
};
export const TINY_PROTO = 'syntax = "proto3";\npackage tiny;\n';
/** The time given to etc/owned. */
export const FIXED_TIME = new Date("2001-02-03T04:05:06Z");
export const LONG_PATH = `deep/${"d".repeat(60)}/${"e".repeat(60)}/file`;
export const SLOW_TARGET = "x".repeat(80);
export const UNICODE_NAME = "etc/ünï cødé.txt";

/** Builds the tiny image into the store at `paths`, named `name`. */
export async function makeTinyImage(paths: StatePaths, name = "tiny"): Promise<StoredImage> {
  if (process.getuid?.() !== 0) throw new Error("this test needs root to make device nodes and chown files");
  await mkdir(paths.tmpDir, { recursive: true });
  const buildDir = join(paths.tmpDir, `tiny-${randomUUID().slice(0, 8)}`);
  const root = join(buildDir, "root");
  for (const dir of ["bin", "dev", "etc", "run", "tmp", "app/www", LONG_PATH.replace(/\/file$/, "")]) await mkdir(join(root, dir), { recursive: true });
  await copyFile("/bin/busybox", join(root, "bin/busybox"));
  await chmod(join(root, "bin/busybox"), 0o755);
  await symlink("busybox", join(root, "bin/sh"));
  await symlink("/bin/busybox", join(root, "abs-link"));
  await symlink(SLOW_TARGET, join(root, "slow-link"));
  await writeFile(join(root, "bin/setuid"), "#!/bin/sh\n", { mode: 0o755 });
  await chmod(join(root, "bin/setuid"), 0o4755);
  await chmod(join(root, "tmp"), 0o1777);
  await writeFile(join(root, "app/www/index.html"), "served from an exported image\n");
  await writeFile(join(root, "etc/owned"), "owned\n");
  await chown(join(root, "etc/owned"), 1234, 5678);
  await chmod(join(root, "etc/owned"), 0o640);
  await utimes(join(root, "etc/owned"), FIXED_TIME, FIXED_TIME);
  await writeFile(join(root, "etc/big-ids"), "ids\n");
  await chown(join(root, "etc/big-ids"), 300_000, 300_001);
  await writeFile(join(root, "etc/no-mode"), "");
  await chmod(join(root, "etc/no-mode"), 0);
  await writeFile(join(root, "etc/hard-a"), "two names\n");
  await link(join(root, "etc/hard-a"), join(root, "etc/hard-b"));
  await writeFile(join(root, UNICODE_NAME), "unicode\n");
  await writeFile(join(root, LONG_PATH), "long\n");
  execFileSync("mknod", ["-m", "666", join(root, "dev/null"), "c", "1", "3"]);
  execFileSync("mkfifo", [join(root, "run/fifo")]);
  // mkfs.ext4 -d copies the socket inode; the server can close once it has.
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(root, "run/sock"), resolve));
  try {
    await writeEntryScript(root, TINY_CONFIG);
    await makeExt4(root, join(buildDir, "rootfs.ext4"));
  } finally {
    await new Promise((resolve) => server.close(resolve));
  }
  await rm(root, { recursive: true, force: true });
  await writeFile(join(buildDir, TINY_CONFIG.proto!), TINY_PROTO);
  return new ImageStore(paths).commit(buildDir, {
    id: randomUUID().replaceAll("-", "").padEnd(64, "0"),
    name,
    source: { kind: "recipe", path: `/recipes/${name}`, digest: "sha256:test" },
    rootfsDigest: await digestFile(join(buildDir, "rootfs.ext4")),
    config: TINY_CONFIG,
  });
}
