/**
 * The boot start path: a fresh microVM from the image, no snapshot. Returns a running Instance
 * whose function has answered once at the protocol level, with the boot breakdown.
 */
import type { StoredImage } from "../image/index.js";
import { UndoStack } from "../shared/undo.js";
import { MicroVm, type GuestMemoryFile } from "../vm/index.js";
import type { Host } from "./host.js";
import { checkStart, createClient, DEFAULT_READY_TIMEOUT_MS, DEFAULT_VCPUS, Instance, memMibFor, waitFunctionReady, withHostPort, type BootStart, type BootTimes, type StartOptions } from "./instance.js";

export interface BootOptions extends StartOptions {
  memMib?: number;
  vcpus?: number;
  /** Back guest RAM with this file (making a snapshot); anonymous memory otherwise. */
  memoryFile?: GuestMemoryFile;
}

export async function bootInstance(host: Host, image: StoredImage, options: BootOptions = {}): Promise<Instance<BootStart>> {
  checkStart(image, options);
  return withHostPort(options.hostPort, (hostPort) => bootOnPort(host, image, hostPort, options), options.hostAddress);
}

async function bootOnPort(host: Host, image: StoredImage, hostPort: number, options: BootOptions): Promise<Instance<BootStart>> {
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  await using undo = new UndoStack();
  const vm = await MicroVm.start(
    {
      qemuPath: host.qemu.path,
      accel: host.accel,
      boot: { kernelPath: host.guest.kernel.path, initramfsPath: host.guest.initramfs.path },
      memoryFile: options.memoryFile,
      rootfsPath: image.rootfsPath,
      memMib: memMibFor(image, options.memMib),
      vcpus: options.vcpus ?? DEFAULT_VCPUS,
      tscKhz: host.tscKhz,
      forward: { hostPort, hostAddress: options.hostAddress, guestPort: image.config.port },
    },
    { log: host.log, runRoot: host.paths.vmsDir, keepRunDir: options.keepRunDir, signal: options.signal, dieWithParent: options.dieWithParent, onConsoleLine: options.onConsoleLine },
  );
  undo.defer("stop the VM", () => vm.destroy());
  const client = createClient(image, hostPort, options);
  undo.defer("close the client", () => client.close());

  const deadline = vm.timeline.spawnAt + readyTimeoutMs;
  await vm.resume();
  await vm.waitForGuest("exec", { timeoutMs: Math.max(0, deadline - performance.now()), signal: options.signal });
  await waitFunctionReady(vm, client, image, deadline - performance.now(), options.signal);
  const readyAt = performance.now();
  const t = vm.timeline;
  const times: BootTimes = {
    qemuStartMs: t.qmpReadyAt! - t.spawnAt,
    kernelBootMs: t.initStartAt! - t.resumeAt!,
    initMs: t.execAt! - t.initStartAt!,
    functionReadyMs: readyAt - t.execAt!,
    bootMs: readyAt - t.spawnAt,
  };
  undo.release();
  return new Instance<BootStart>(vm, image, hostPort, client, { kind: "boot", times });
}
