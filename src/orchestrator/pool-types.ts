/**
 * What an instance pool needs from the instances it runs, and from whoever starts them. The
 * pool knows nothing of VMs: the VM starter (vm-starter.ts) implements these with microVMs,
 * unit tests with fakes.
 */
import type { InvokeResult } from "../invoke/index.js";
import type { PoolableVmm } from "../start/index.js";
import type { FunctionRecord, StartKind } from "../store/index.js";

export type ColdStartKind = Exclude<StartKind, "warm">;

/** How an instance was started, for the request that waited for it. */
export interface StartInfo {
  kind: ColdStartKind;
  /** The start's phases, ms (BOOT_PHASES or RESTORE_PHASES keys). */
  breakdown: Record<string, number>;
  /** The snapshot restored, for restores. */
  snapshotId?: string;
  /** What the start had to do besides starting (a damaged snapshot quarantined, ...). */
  notes?: string[];
}

export interface PoolInstance {
  /** The VM id: names the instance in logs, errors and /instances. */
  readonly id: string;
  readonly started: StartInfo;
  /** Aborts when the instance dies by itself; the reason is a VhiveError saying why. */
  readonly failed: AbortSignal;
  /** QEMU's pid and the loopback port of the function, where there are such things. */
  readonly pid?: number;
  readonly hostPort?: number;
  /** One request; undefined data means the function's default request. */
  invoke(data: string | undefined, options: { signal?: AbortSignal; timeoutMs?: number }): Promise<InvokeResult>;
  /** Graceful end, at keep-alive expiry or shutdown (may save a snapshot first). Idempotent. */
  retire(): Promise<void>;
  /** Immediate end (SIGKILL); discards anything unfinished. Idempotent. */
  destroy(): Promise<void>;
}

/** A pre-started VMM of a function's pool (src/start/vmm-pool.ts), or a fake of one. */
export type PrestartedVmm = PoolableVmm;

export interface InstanceStarter {
  /**
   * Start an instance of `fn` that answers; the start policy decides boot or restore. With
   * `pooled` (taken from the function's pool of pre-started VMMs; the starter now owns it), the
   * start restores on it if it still fits the function's snapshot, else ends it and starts as usual.
   */
  start(fn: FunctionRecord, options: { signal: AbortSignal; pooled?: PrestartedVmm }): Promise<PoolInstance>;
  /**
   * Pre-start a VMM for `fn`'s cold starts (fn.poolDepth > 0); undefined while there is nothing
   * to pre-start (no snapshot with a working set yet). Ends what it started if `signal` aborts.
   */
  prestart?(fn: FunctionRecord, options: { signal: AbortSignal }): Promise<PrestartedVmm | undefined>;
  /** Throws ERR_PROTO_INVALID / ERR_VALIDATION if `fn`'s method and proto cannot call its image (checked at deploy). */
  checkFunction?(fn: FunctionRecord): Promise<void>;
  /**
   * Throws ERR_VALIDATION if `data` (undefined: the function's default request) cannot be a
   * request to `fn`, so a malformed request is refused before it costs a start.
   */
  checkRequest?(fn: FunctionRecord, data: string | undefined): Promise<void>;
}
