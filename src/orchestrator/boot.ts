/**
 * The boot start path: a fresh microVM from the image, no snapshot. Returns a running Instance
 * whose function has answered once at the protocol level, with the boot breakdown.
 */
import { VhiveError, isVhiveError } from "../shared/errors.js";
import { UndoStack } from "../shared/undo.js";
import type { StoredImage } from "../image/index.js";
import { createGrpcClient, createHttpClient, defaultProtoPath, DEFAULT_GRPC_METHOD, type FunctionClient, type InvokeResult } from "../invoke/index.js";
import { assertPortFree, freeLoopbackPort, MicroVm } from "../vm/index.js";
import type { Host } from "./host.js";

export interface BootOptions {
  memMib?: number;
  vcpus?: number;
  /** Loopback port to forward to the function; default a free one. */
  hostPort?: number;
  /** From spawn until the function answers. */
  readyTimeoutMs?: number;
  /** Override the image's gRPC method / proto. */
  method?: string;
  protoPath?: string;
  keepRunDir?: boolean;
  signal?: AbortSignal;
}

export interface BootTimes {
  qemuStartMs: number;
  kernelBootMs: number;
  initMs: number;
  functionReadyMs: number;
  /** spawn to function answering: the sum of the above. */
  bootMs: number;
}

export const DEFAULT_MEM_MIB = 256;
export const DEFAULT_VCPUS = 1;
export const DEFAULT_READY_TIMEOUT_MS = 180_000;

export class Instance implements AsyncDisposable {
  readonly vm: MicroVm;
  readonly image: StoredImage;
  readonly hostPort: number;
  readonly client: FunctionClient;
  readonly boot: BootTimes;

  constructor(vm: MicroVm, image: StoredImage, hostPort: number, client: FunctionClient, boot: BootTimes) {
    this.vm = vm;
    this.image = image;
    this.hostPort = hostPort;
    this.client = client;
    this.boot = boot;
  }

  /** Invoke the function; fails with the VM's own error if the VM dies meanwhile. */
  async invoke(data: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<InvokeResult> {
    const signal = options.signal ? AbortSignal.any([options.signal, this.vm.failed]) : this.vm.failed;
    try {
      return await this.client.invoke(data, { timeoutMs: options.timeoutMs, signal });
    } catch (error) {
      if (this.vm.failed.aborted) throw this.vm.failed.reason as VhiveError;
      throw error;
    }
  }

  async stop(): Promise<void> {
    this.client.close();
    await this.vm.stop();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

export function createClient(image: StoredImage, hostPort: number, options: Pick<BootOptions, "method" | "protoPath">): FunctionClient {
  const endpoint = { host: "127.0.0.1", port: hostPort };
  if (image.config.protocol === "http") return createHttpClient(endpoint, { path: image.config.httpPath });
  return createGrpcClient(endpoint, {
    protoPath: options.protoPath ?? image.protoPath ?? defaultProtoPath(),
    method: options.method ?? image.config.method ?? DEFAULT_GRPC_METHOD,
  });
}

export async function bootInstance(host: Host, image: StoredImage, options: BootOptions = {}): Promise<Instance> {
  // Load the proto before spending seconds on a boot: a bad --proto/--method fails at once.
  const probeClient = createClient(image, 1, options);
  probeClient.close();
  if (options.hostPort !== undefined) await assertPortFree(options.hostPort);
  // An automatically chosen port can be taken between our check and QEMU's bind: retry then.
  for (let attempt = 1; ; attempt++) {
    const hostPort = options.hostPort ?? (await freeLoopbackPort());
    try {
      return await bootOnPort(host, image, hostPort, options);
    } catch (error) {
      if (options.hostPort === undefined && isVhiveError(error, "ERR_PORT_IN_USE") && attempt < 3) continue;
      throw error;
    }
  }
}

async function bootOnPort(host: Host, image: StoredImage, hostPort: number, options: BootOptions): Promise<Instance> {
  const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
  await using undo = new UndoStack();
  const vm = await MicroVm.start(
    {
      qemuPath: host.qemu.path,
      accel: host.accel,
      kernelPath: host.guest.kernel.path,
      initramfsPath: host.guest.initramfs.path,
      rootfsPath: image.rootfsPath,
      memMib: options.memMib ?? DEFAULT_MEM_MIB,
      vcpus: options.vcpus ?? DEFAULT_VCPUS,
      tscKhz: host.tscKhz,
      forward: { hostPort, guestPort: image.config.port },
    },
    { log: host.log, runRoot: host.paths.vmsDir, keepRunDir: options.keepRunDir, signal: options.signal },
  );
  undo.defer("stop the VM", () => vm.destroy());
  const client = createClient(image, hostPort, options);
  undo.defer("close the client", () => client.close());

  const deadline = vm.timeline.spawnAt + readyTimeoutMs;
  await vm.resume();
  await vm.waitForGuest("exec", { timeoutMs: Math.max(0, deadline - performance.now()), signal: options.signal });
  const signal = options.signal ? AbortSignal.any([options.signal, vm.failed]) : vm.failed;
  try {
    await client.waitReady({ timeoutMs: Math.max(0, deadline - performance.now()), signal });
  } catch (error) {
    if (vm.failed.aborted) throw vm.failed.reason as VhiveError;
    if (isVhiveError(error, "ERR_READY_TIMEOUT")) {
      throw new VhiveError("ERR_READY_TIMEOUT", `${image.name} did not answer on port ${image.config.port} within ${readyTimeoutMs} ms of the VM's start`, {
        details: `last lines of the serial console:\n${vm.console.tail()}`,
        remedy: "check that the function listens on the image's port; raise --ready-timeout for slow runtimes",
        cause: error,
      });
    }
    throw error;
  }
  const readyAt = performance.now();
  const t = vm.timeline;
  const boot: BootTimes = {
    qemuStartMs: t.qmpReadyAt! - t.spawnAt,
    kernelBootMs: t.initStartAt! - t.resumeAt!,
    initMs: t.execAt! - t.initStartAt!,
    functionReadyMs: readyAt - t.execAt!,
    bootMs: readyAt - t.spawnAt,
  };
  undo.release();
  return new Instance(vm, image, hostPort, client, boot);
}
