/**
 * The guest initramfs: static busybox, the virtio and overlay modules of the guest kernel, the
 * guest agent (native/guest-agent, static: hands a restored guest fresh entropy and runs its
 * after-restore hooks), and init.sh as /init, packed as a newc cpio. It is rebuilt only when an input changes: the file
 * is named by the digest of its inputs, kernel/initramfs-<digest>.cpio.
 */
import { randomBytes } from "node:crypto";
import { copyFile, mkdir, readFile, rename, stat, writeFile, chmod } from "node:fs/promises";
import { createWriteStream } from "node:fs";
import { once } from "node:events";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { digestBytes, digestFileCached, digestHex } from "../shared/digest.js";
import { VhiveError } from "../shared/errors.js";
import { assertNativeBuilt, nativePath } from "../shared/native.js";
import { makeTempDir } from "../shared/tmp.js";
import { runTool } from "../shared/tool.js";
import { DIGEST_CACHE, isStaticElf } from "./kernel.js";

/** Modules init.sh loads, with their paths under /lib/modules/<version>/kernel, in load order. */
export const GUEST_MODULES: readonly string[] = [
  "drivers/virtio/virtio_ring.ko",
  "drivers/virtio/virtio.ko",
  "drivers/virtio/virtio_mmio.ko",
  "drivers/block/virtio_blk.ko",
  "net/core/failover.ko",
  "drivers/net/net_failover.ko",
  "drivers/net/virtio_net.ko",
  "drivers/char/virtio_console.ko",
  "fs/overlayfs/overlay.ko",
];

/** Bump when the initramfs layout changes in a way its inputs do not show. */
const FORMAT_VERSION = "1";

export interface Initramfs {
  path: string;
  digest: string;
}

export interface InitramfsInputs {
  kernelVersion: string;
  modulesRoot?: string;
  busyboxPath?: string;
  agentPath?: string;
}

export function initScriptPath(): string {
  return fileURLToPath(new URL("./init.sh", import.meta.url));
}

export async function prepareInitramfs(kernelDir: string, inputs: InitramfsInputs): Promise<Initramfs> {
  const busybox = inputs.busyboxPath ?? "/bin/busybox";
  const modulesDir = join(inputs.modulesRoot ?? "/lib/modules", inputs.kernelVersion, "kernel");
  const busyboxRemedy = "apt-get install busybox-static (a dynamically linked busybox cannot run in the initramfs)";
  if (!(await stat(busybox).catch(() => undefined))) {
    throw new VhiveError("ERR_INITRAMFS", `${busybox} does not exist`, { remedy: busyboxRemedy });
  }
  if (!(await isStaticElf(busybox))) {
    throw new VhiveError("ERR_INITRAMFS", `${busybox} is not a statically linked ELF binary`, { remedy: busyboxRemedy });
  }
  const digests = join(kernelDir, DIGEST_CACHE);
  const moduleDigests: string[] = [];
  for (const module of GUEST_MODULES) {
    const path = join(modulesDir, module);
    const digest = await digestFileCached(path, digests).catch(() => undefined);
    if (!digest) {
      throw new VhiveError("ERR_INITRAMFS", `kernel module ${path} is missing`, {
        remedy: `apt-get install --reinstall linux-image-${inputs.kernelVersion}`,
      });
    }
    moduleDigests.push(digest);
  }
  const agent = inputs.agentPath ?? nativePath("vhive-agent");
  if (!inputs.agentPath) await assertNativeBuilt(["vhive-agent"]);
  const initScript = await readFile(initScriptPath());
  const inputsDigest = digestBytes([FORMAT_VERSION, initScript, await digestFileCached(busybox, digests), await digestFileCached(agent, digests), ...moduleDigests]);
  const path = join(kernelDir, `initramfs-${digestHex(inputsDigest).slice(0, 16)}.cpio`);
  const existing = await digestFileCached(path, digests).catch(() => undefined);
  if (existing) return { path, digest: existing };

  await mkdir(kernelDir, { recursive: true });
  await using stage = await makeTempDir("initramfs");
  const root = stage.path;
  for (const dir of ["bin", "lib/modules", "proc", "sys", "dev", "mnt", "newroot"]) {
    await mkdir(join(root, dir), { recursive: true });
  }
  await copyFile(busybox, join(root, "bin/busybox"));
  await chmod(join(root, "bin/busybox"), 0o755);
  await copyFile(agent, join(root, "bin/vhive-agent"));
  await chmod(join(root, "bin/vhive-agent"), 0o755);
  for (const module of GUEST_MODULES) {
    await copyFile(join(modulesDir, module), join(root, "lib/modules", module.split("/").at(-1)!));
  }
  await writeFile(join(root, "init"), initScript, { mode: 0o755 });

  const entries = [".", "bin", "bin/busybox", "bin/vhive-agent", "lib", "lib/modules", "proc", "sys", "dev", "mnt", "newroot", "init"];
  entries.push(...GUEST_MODULES.map((module) => `lib/modules/${module.split("/").at(-1)!}`));
  const partial = `${path}.partial-${process.pid}-${randomBytes(4).toString("hex")}`;
  const out = createWriteStream(partial);
  await runTool("cpio", ["--quiet", "-o", "-H", "newc", "--reproducible", "--owner=0:0"], {
    failCode: "ERR_INITRAMFS",
    step: "packing the initramfs with cpio",
    cwd: root,
    input: entries.sort().join("\n") + "\n",
    stdout: out,
  });
  out.end();
  await once(out, "close");
  await rename(partial, path);
  return { path, digest: await digestFileCached(path, digests) };
}
