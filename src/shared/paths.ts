/**
 * The state directory's layout (default ~/.local/share/vhive, or $VHIVE_STATE):
 *
 *   kernel/vmlinux            extracted guest kernel, kernel/kernel.json its source and digest
 *   kernel/initramfs-<d>.cpio initramfs built from inputs with digest <d>
 *   images/<id>/rootfs.ext4   a function image, images/<id>/image.json its metadata
 *   accel.json                cached accelerator probe result
 *   vms/<vmId>/               per-VM runtime files (serial log); removed when the VM stops
 *   locks/                    lock files of processes that share the state directory (the
 *                             containerd shims: one makes an image or records a working set)
 */
import { homedir } from "node:os";
import { join } from "node:path";

export class StatePaths {
  readonly root: string;
  constructor(root: string) {
    this.root = root;
  }
  get kernelDir(): string {
    return join(this.root, "kernel");
  }
  get imagesDir(): string {
    return join(this.root, "images");
  }
  imageDir(id: string): string {
    return join(this.imagesDir, id);
  }
  get accelCache(): string {
    return join(this.root, "accel.json");
  }
  get vmsDir(): string {
    return join(this.root, "vms");
  }
  get locksDir(): string {
    return join(this.root, "locks");
  }
  /** Scratch space on the same filesystem as the images, so finished builds are renamed in. */
  get tmpDir(): string {
    return join(this.root, "tmp");
  }
}

/** Read the environment once, at the edge. */
export function defaultStateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.VHIVE_STATE) return env.VHIVE_STATE;
  const dataHome = env.XDG_DATA_HOME || join(homedir(), ".local", "share");
  return join(dataHome, "vhive");
}
