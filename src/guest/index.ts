/**
 * The guest a function runs on: kernel and initramfs, prepared once per host and cached in the
 * state directory.
 */
import type { StatePaths } from "../shared/paths.js";
import { prepareInitramfs, type Initramfs } from "./initramfs.js";
import { prepareKernel, type GuestKernel } from "./kernel.js";

export type { GuestKernel } from "./kernel.js";
export type { Initramfs } from "./initramfs.js";
export { findCloudKernel, findLz4Payload, isStaticElf } from "./kernel.js";
export { GUEST_MODULES } from "./initramfs.js";

export interface Guest {
  kernel: GuestKernel;
  initramfs: Initramfs;
}

export interface PrepareGuestOptions {
  bootDir?: string;
  modulesRoot?: string;
  busyboxPath?: string;
}

export async function prepareGuest(paths: StatePaths, options: PrepareGuestOptions = {}): Promise<Guest> {
  const kernel = await prepareKernel(paths.kernelDir, options.bootDir);
  const initramfs = await prepareInitramfs(paths.kernelDir, {
    kernelVersion: kernel.version,
    modulesRoot: options.modulesRoot,
    busyboxPath: options.busyboxPath,
  });
  return { kernel, initramfs };
}
