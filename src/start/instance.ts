/**
 * A running function instance: its microVM, the loopback port it is reached on, a client for
 * its protocol, and how it was started (boot or restore, with that start's breakdown). Also
 * what every start path shares: the options and defaults of a start, the client, the port and
 * the wait until the function answers.
 */
import type { StoredImage } from "../image/index.js";
import { setTimeout as sleep } from "node:timers/promises";
import { createGrpcClient, createHttpClient, defaultProtoPath, DEFAULT_GRPC_METHOD, isTransportFailure, type FunctionClient, type InvokeResult } from "../invoke/index.js";
import { VhiveError, isVhiveError } from "../shared/errors.js";
import type { Pager } from "../memory/index.js";
import { assertPortFree, freeLoopbackPort, type AgentRestoreReply, type MicroVm } from "../vm/index.js";

/** Phases of a boot start, ms. */
export interface BootTimes {
  qemuStartMs: number;
  kernelBootMs: number;
  initMs: number;
  functionReadyMs: number;
  /** spawn to function answering. */
  bootMs: number;
}

/** Phases of a restore start, ms. */
export interface RestoreTimes {
  /** QEMU spawn to its monitor ready; 0 for a pooled VMM, loaded before the cold start. */
  loadVmmMs: number;
  /** Device state loaded (migrate-incoming to completed). */
  restoreMs: number;
  /** After the device state, waiting for the pager's prefetch to finish (prefetch, floor). */
  memoryWaitMs: number;
  /** vCPUs resumed (QMP cont). */
  resumeMs: number;
  /** Resumed to the guest agent's answer: the CRNG reseeded with host entropy, the after-restore hooks run. */
  reseedMs: number;
  /** Reseeded to the function answering at the protocol level on a new connection (a gRPC
   *  connect overlaps the reseed, so this is what is left of it). */
  connectMs: number;
}

export interface BootStart {
  kind: "boot";
  times: BootTimes;
}

/**
 * How a restore loads guest memory (reap resolves to record or prefetch). pool and
 * pool-installed restore on a pooled VMM (vmm-pool.ts), started before the request: pool
 * prefetches the working set at the cold start, pool-installed had it installed while it waited.
 */
export type MemoryMode = "vanilla" | "vanilla-4k" | "lazy" | "record" | "prefetch" | "floor" | "pool" | "pool-installed";

/** The modes of a restore on a pre-started VMM (vmm-pool.ts). */
export const POOL_MODES = ["pool", "pool-installed"] as const;
export type PoolMode = (typeof POOL_MODES)[number];

export const isPoolMode = (mode: string): mode is PoolMode => (POOL_MODES as readonly string[]).includes(mode);

/** What a pooled VMM did before the cold start that took it. */
export interface PooledFigures {
  /** QEMU spawn until the VMM was ready in the pool (pager attached; pool-installed: working set installed), ms. */
  prestartMs: number;
  /** Ready until taken, ms. */
  idleMs: number;
}

export interface RestoreStart {
  kind: MemoryMode;
  snapshotId: string;
  times: RestoreTimes;
  /** What the guest agent reported: hooks run, time in the guest. */
  reseed: AgentRestoreReply;
  /** performance.now() when the cold start began: QEMU's spawn, or when a pooled VMM was taken. */
  coldStartAt: number;
  /** For a pooled VMM: what it did before this cold start. */
  pooled?: PooledFigures;
}

export type StartRecord = BootStart | RestoreStart;

export interface ClientOptions {
  /** Override the image's gRPC method / proto. */
  method?: string;
  protoPath?: string;
  /** How long one invocation may take unless the call says (default DEFAULT_INVOKE_TIMEOUT_MS, 30 s). */
  invokeTimeoutMs?: number;
  /** Where the function answers (default 127.0.0.1): a pod's IP, say. */
  host?: string;
}

/** What every start (boot or restore) takes. */
export interface StartOptions extends ClientOptions {
  /** Loopback port to forward to the function; default a free one. */
  hostPort?: number;
  /**
   * Where the forwarded port listens: 127.0.0.1 (the default), or 0.0.0.0 for every address of
   * the network namespace vhive runs in (a container's: its pod IP and localhost).
   */
  hostAddress?: string;
  /** QEMU dies with this process even on SIGKILL (see MicroVm's StartOptions). */
  dieWithParent?: boolean;
  /** The function's console output, line by line, from the VM's start (a container's stdout). */
  onConsoleLine?: (line: string) => void;
  /** From spawn until the function answers. */
  readyTimeoutMs?: number;
  keepRunDir?: boolean;
  signal?: AbortSignal;
  /**
   * The request data the caller will send first, for the image: checked against the function's
   * request message before anything starts, so bad --data costs no boot (checkStart).
   */
  firstRequest?: (image: StoredImage) => string;
}

export const DEFAULT_MEM_MIB = 256;
export const DEFAULT_VCPUS = 1;
export const DEFAULT_READY_TIMEOUT_MS = 180_000;
/** After a call's connection failed, how long to wait for the VM's own error, if it is dying. */
const VM_FAILURE_GRACE_MS = 1000;

/** Guest memory for an image: asked for, else what the image says it needs, else 256 MiB. */
export function memMibFor(image: StoredImage, asked?: number): number {
  return asked ?? image.config.memMib ?? DEFAULT_MEM_MIB;
}

/** Without --data: the image's first input, else a name to greet for gRPC, a plain GET for HTTP. */
export function defaultRequestData(image: StoredImage): string {
  return image.config.inputs?.[0] ?? (image.config.protocol === "grpc" ? "world" : "");
}

export class Instance<Start extends StartRecord = StartRecord> implements AsyncDisposable {
  readonly vm: MicroVm;
  readonly image: StoredImage;
  readonly hostPort: number;
  readonly client: FunctionClient;
  readonly start: Start;
  /** The pager serving guest memory, for restores through userfaultfd. */
  readonly pager: Pager | undefined;

  constructor(vm: MicroVm, image: StoredImage, hostPort: number, client: FunctionClient, start: Start, pager?: Pager) {
    this.vm = vm;
    this.image = image;
    this.hostPort = hostPort;
    this.client = client;
    this.start = start;
    this.pager = pager;
  }

  /** Invoke the function; fails with the VM's own error if the VM dies meanwhile. */
  async invoke(data: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<InvokeResult> {
    const signal = options.signal ? AbortSignal.any([options.signal, this.vm.failed]) : this.vm.failed;
    try {
      return await this.client.invoke(data, { timeoutMs: options.timeoutMs, signal });
    } catch (error) {
      // A killed QEMU resets the call's connection before its exit is reaped and its console
      // closes: give the VM's own error (QEMU killed by SIGKILL, the entrypoint exited) a moment
      // to arrive, so the caller hears why and not "ECONNRESET".
      if (!this.vm.failed.aborted && isTransportFailure(error)) await Promise.race([this.vm.failure, sleep(VM_FAILURE_GRACE_MS, undefined, { ref: false })]);
      if (this.vm.failed.aborted) throw this.vm.failed.reason as VhiveError;
      throw error;
    }
  }

  async stop(): Promise<void> {
    this.client.close();
    try {
      await this.vm.stop();
    } finally {
      await this.pager?.stop(); // it exits with QEMU; this waits for it and cleans up its socket
    }
  }

  /** End it at once (SIGKILL), its pager too; idempotent. */
  async destroy(): Promise<void> {
    this.client.close();
    try {
      await this.vm.destroy();
    } finally {
      await this.pager?.destroy();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/**
 * What a start checks before it spends seconds on QEMU: the client can be made (a bad
 * --proto/--method is ERR_PROTO_INVALID) and the first request fits it (ERR_VALIDATION).
 */
export function checkStart(image: StoredImage, options: StartOptions): void {
  const client = createClient(image, 1, options);
  try {
    if (options.firstRequest) client.checkRequest(options.firstRequest(image));
  } finally {
    client.close();
  }
}

export function createClient(image: StoredImage, hostPort: number, options: ClientOptions): FunctionClient {
  const endpoint = { host: options.host ?? "127.0.0.1", port: hostPort };
  if (image.config.protocol === "http") return createHttpClient(endpoint, { path: image.config.httpPath, invokeTimeoutMs: options.invokeTimeoutMs });
  return createGrpcClient(
    endpoint,
    { protoPath: options.protoPath ?? image.protoPath ?? defaultProtoPath(), method: options.method ?? image.config.method ?? DEFAULT_GRPC_METHOD },
    { invokeTimeoutMs: options.invokeTimeoutMs },
  );
}

/**
 * Run `start` with a loopback port for the function: the one asked for (refused at once if
 * taken), or a free one, retried if another process takes it before QEMU binds it.
 */
export async function withHostPort<T>(hostPort: number | undefined, start: (port: number) => Promise<T>, hostAddress?: string): Promise<T> {
  if (hostPort !== undefined) {
    await assertPortFree(hostPort, hostAddress);
    return start(hostPort);
  }
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(await freeLoopbackPort());
    } catch (error) {
      if (isVhiveError(error, "ERR_PORT_IN_USE") && attempt < 3) continue;
      throw error;
    }
  }
}

/** Wait until the function answers, failing with the VM's own error if it dies first. */
export async function waitFunctionReady(vm: MicroVm, client: FunctionClient, image: StoredImage, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const combined = signal ? AbortSignal.any([signal, vm.failed]) : vm.failed;
  try {
    await client.waitReady({ timeoutMs: Math.max(0, timeoutMs), signal: combined });
  } catch (error) {
    if (vm.failed.aborted) throw vm.failed.reason as VhiveError;
    if (isVhiveError(error, "ERR_READY_TIMEOUT")) {
      throw new VhiveError("ERR_READY_TIMEOUT", `${image.name} did not answer on port ${image.config.port} in time`, {
        details: `${error.message}\nlast lines of the serial console:\n${vm.console.tail()}`,
        remedy: "check that the function listens on the image's port; raise --ready-timeout for slow runtimes",
        cause: error,
      });
    }
    throw error;
  }
}
