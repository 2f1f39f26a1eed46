/**
 * The function registry of the daemon: deployed functions (persisted in the Store), one
 * instance pool each, and the record of every invocation. Deploying a function again replaces
 * its pool (the old one drains and retires its instances); removing it stops its instances and
 * keeps its snapshots.
 */
import { roundMs } from "../metrics/index.js";
import { VhiveError, isVhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { FunctionRecord, InvocationRecord, KeepalivePolicyName, StartKind, StartPolicy, Store } from "../store/index.js";
import { DEFAULT_MEM_MIB, DEFAULT_VCPUS } from "../start/index.js";
import type { MemoryBudget } from "./budget.js";
import { LifetimeLog, type InstanceLifetime } from "./lifetimes.js";
import { FunctionPool, type InstanceInfo, type PoolInvocation, type PoolOptions } from "./pool.js";
import type { InstanceStarter } from "./pool-types.js";

/** What deploy needs to know about an image reference. */
export interface ImageResolver {
  /** Throws ERR_IMAGE_NOT_FOUND / ERR_IMAGE_AMBIGUOUS. */
  resolve(ref: string): Promise<{ id: string; name: string; memMib: number | undefined }>;
}

/** A deploy request: only `image` is required. */
export interface DeploySpec {
  image: string;
  memMib?: number;
  vcpus?: number;
  start?: StartPolicy;
  keepaliveMs?: number;
  keepalivePolicy?: KeepalivePolicyName;
  minInstances?: number;
  maxInstances?: number;
  concurrency?: number;
  /** Pre-started VMMs kept for cold starts (start reap only), and whether they hold the working set installed. */
  poolDepth?: number;
  poolInstalled?: boolean;
  /**
   * Idle times (ms) for the keep-alive policy to learn before the first request, as if it had
   * seen them: a trace replay passes the function's past. Not stored: a restart starts afresh.
   */
  idleHistoryMs?: number[];
  invokeTimeoutMs?: number;
  /** gRPC method ("package.Service/Method") and .proto (absolute path) instead of the image's. */
  method?: string;
  proto?: string;
}

export const DEPLOY_DEFAULTS = { vcpus: DEFAULT_VCPUS, start: "reap", keepaliveMs: 60_000, keepalivePolicy: "fixed", minInstances: 0, maxInstances: 8, concurrency: 1, invokeTimeoutMs: 60_000, poolDepth: 0, poolInstalled: false } as const;

/** The envelope of one invocation: the pool's result, with its record id and function. */
export interface Invocation extends PoolInvocation {
  id: number;
  function: string;
}

/** Told about every invocation (metrics). */
export interface InvocationObserver {
  invoked(fn: string, start: StartKind | null, status: "ok" | "error", totalMs: number): void;
}

export interface FunctionsOptions {
  store: Store;
  starter: InstanceStarter;
  budget: MemoryBudget;
  images: ImageResolver;
  log: Log;
  observer?: InvocationObserver;
  pool?: Pick<PoolOptions, "queueTimeoutMs" | "invokeTimeoutMs">;
}

export class Functions {
  readonly budget: MemoryBudget;
  readonly #options: FunctionsOptions;
  readonly #pools = new Map<string, FunctionPool>();
  /** Per function, across its redeploys; dropped when it is removed. */
  readonly #lifetimes = new Map<string, LifetimeLog>();
  /** Pools being drained after an update or removal. */
  readonly #draining = new Set<Promise<void>>();
  #closed = false;

  constructor(options: FunctionsOptions) {
    this.#options = options;
    this.budget = options.budget;
  }

  /** Create the pools of the stored functions (starting their minimum instances). */
  load(): FunctionRecord[] {
    const functions = this.#options.store.listFunctions();
    for (const fn of functions) this.#pools.set(fn.name, this.#newPool(fn));
    return functions;
  }

  list(): FunctionRecord[] {
    return this.#options.store.listFunctions();
  }

  get(name: string): FunctionRecord {
    const fn = this.#options.store.getFunction(name);
    if (!fn) throw notFound(name);
    return fn;
  }

  /** Deploy or update; `create` refuses a name that exists (ERR_FUNCTION_EXISTS). */
  async deploy(name: string, spec: DeploySpec, mode: "create" | "upsert"): Promise<{ fn: FunctionRecord; created: boolean }> {
    this.#checkOpen();
    const old = this.#options.store.getFunction(name);
    if (old && mode === "create") {
      throw new VhiveError("ERR_FUNCTION_EXISTS", `function ${name} is already deployed`, { remedy: `update it with PUT /functions/${name}, or remove it first` });
    }
    const image = await this.#options.images.resolve(spec.image).catch((error: unknown) => {
      if (isVhiveError(error)) throw new VhiveError(error.code, `image: ${error.message}`, { remedy: error.remedy, cause: error });
      throw error;
    });
    const now = new Date().toISOString();
    const fn: FunctionRecord = {
      name,
      imageRef: spec.image,
      imageId: image.id,
      memMib: spec.memMib ?? image.memMib ?? DEFAULT_MEM_MIB,
      vcpus: spec.vcpus ?? DEPLOY_DEFAULTS.vcpus,
      start: spec.start ?? DEPLOY_DEFAULTS.start,
      keepaliveMs: spec.keepaliveMs ?? DEPLOY_DEFAULTS.keepaliveMs,
      keepalivePolicy: spec.keepalivePolicy ?? DEPLOY_DEFAULTS.keepalivePolicy,
      minInstances: spec.minInstances ?? DEPLOY_DEFAULTS.minInstances,
      maxInstances: spec.maxInstances ?? DEPLOY_DEFAULTS.maxInstances,
      concurrency: spec.concurrency ?? DEPLOY_DEFAULTS.concurrency,
      poolDepth: spec.poolDepth ?? DEPLOY_DEFAULTS.poolDepth,
      poolInstalled: spec.poolInstalled ?? DEPLOY_DEFAULTS.poolInstalled,
      invokeTimeoutMs: spec.invokeTimeoutMs ?? DEPLOY_DEFAULTS.invokeTimeoutMs,
      ...(spec.method === undefined ? {} : { method: spec.method }),
      ...(spec.proto === undefined ? {} : { protoPath: spec.proto }),
      createdAt: old?.createdAt ?? now,
      updatedAt: now,
    };
    if (fn.minInstances > fn.maxInstances) throw new VhiveError("ERR_VALIDATION", `minInstances (${fn.minInstances}) is more than maxInstances (${fn.maxInstances})`);
    checkPoolOptions(fn);
    if (fn.memMib > this.budget.totalMib) {
      throw new VhiveError("ERR_VALIDATION", `memMib: ${fn.memMib} MiB is more than the daemon's whole memory budget (${this.budget.totalMib} MiB)`, {
        remedy: "deploy with less --memory, or start the daemon with a larger --memory-budget",
      });
    }
    await this.#options.starter.checkFunction?.(fn);
    this.#options.store.putFunction(fn);
    this.#drain(this.#pools.get(name));
    this.#pools.set(name, this.#newPool(fn, spec.idleHistoryMs));
    return { fn, created: !old };
  }

  /** Remove a function: its instances are stopped (snapshots are kept). */
  async remove(name: string): Promise<void> {
    this.#checkOpen();
    if (!this.#options.store.deleteFunction(name)) throw notFound(name);
    const pool = this.#pools.get(name);
    this.#pools.delete(name);
    await pool?.close();
    if (!this.#pools.has(name)) this.#lifetimes.delete(name);
  }

  /** `timeoutMs`: this request's invocation timeout, instead of the function's. */
  async invoke(name: string, data: string | undefined, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<Invocation> {
    this.#checkOpen();
    const pool = this.#pools.get(name);
    if (!pool) throw notFound(name);
    const arrived = performance.now();
    try {
      await this.#options.starter.checkRequest?.(pool.fn, data);
      const result = await pool.invoke(data, options);
      const id = this.#record({ function: name, instance: result.instance, start: result.start, status: "ok", totalMs: result.totalMs, breakdown: result.breakdown, note: result.notes?.join("; ") });
      return { id, function: name, ...result };
    } catch (error) {
      const totalMs = roundMs(performance.now() - arrived);
      this.#record({ function: name, instance: null, start: null, status: "error", totalMs, breakdown: {}, error });
      throw error;
    }
  }

  invocations(name: string, limit?: number): InvocationRecord[] {
    this.get(name);
    return this.#options.store.invocations(name, limit);
  }

  /** When each of the function's instances held its memory, oldest first (memory-time). */
  lifetimes(name: string): InstanceLifetime[] {
    this.get(name);
    return this.#lifetimes.get(name)?.list() ?? [];
  }

  /** The state of the function's keep-alive policy. */
  keepalive(name: string): Record<string, unknown> {
    this.get(name);
    return this.#pools.get(name)?.keepalive() ?? {};
  }

  /** The function's pre-started VMMs (depth, ready, starting, MiB held), if it keeps any. */
  vmmPool(name: string): ReturnType<FunctionPool["vmmPool"]> {
    this.get(name);
    return this.#pools.get(name)?.vmmPool();
  }

  /** Every function's pre-started VMMs, by function. */
  vmmPools(): Record<string, NonNullable<ReturnType<FunctionPool["vmmPool"]>>> {
    return Object.fromEntries([...this.#pools].flatMap(([name, pool]) => {
      const state = pool.vmmPool();
      return state ? [[name, state]] : [];
    }));
  }

  instances(): InstanceInfo[] {
    return [...this.#pools.values()].flatMap((pool) => pool.instances());
  }

  queueLengths(): Record<string, number> {
    return Object.fromEntries([...this.#pools].map(([name, pool]) => [name, pool.queueLength]));
  }

  /** Graceful: drain and retire every instance (saving snapshots). Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all([...pools.map((pool) => pool.close()), ...this.#draining]);
  }

  /** Immediate: kill every instance. */
  async destroy(): Promise<void> {
    this.#closed = true;
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((pool) => pool.destroy()));
  }

  #newPool(fn: FunctionRecord, idleHistoryMs?: readonly number[]): FunctionPool {
    const { starter, budget, log } = this.#options;
    let lifetimes = this.#lifetimes.get(fn.name);
    if (!lifetimes) this.#lifetimes.set(fn.name, (lifetimes = new LifetimeLog()));
    return new FunctionPool(fn, { starter, budget, log, lifetimes, idleHistoryMs, ...this.#options.pool });
  }

  #drain(pool: FunctionPool | undefined): void {
    if (!pool) return;
    const closing = pool.close().finally(() => this.#draining.delete(closing));
    this.#draining.add(closing);
  }

  #record(entry: { function: string; instance: string | null; start: StartKind | null; status: "ok" | "error"; totalMs: number; breakdown: Record<string, number>; error?: unknown; note?: string }): number {
    this.#options.observer?.invoked(entry.function, entry.start, entry.status, entry.totalMs);
    try {
      return this.#options.store.addInvocation({
        function: entry.function,
        instance: entry.instance,
        start: entry.start,
        status: entry.status,
        errorCode: entry.error === undefined ? null : isVhiveError(entry.error) ? entry.error.code : "ERR_INTERNAL",
        errorMessage: entry.error === undefined ? null : messageOf(entry.error),
        totalMs: entry.totalMs,
        breakdown: entry.breakdown,
        at: new Date().toISOString(),
        note: entry.note ?? null,
      });
    } catch (error) {
      // The reply matters more than its record: log and go on.
      this.#options.log.error("recording an invocation failed", { fn: entry.function, error: messageOf(error) });
      return -1;
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new VhiveError("ERR_SHUTTING_DOWN", "the daemon is shutting down", { remedy: "retry once it runs again" });
  }
}

/** A pool of pre-started VMMs restores with REAP's working set: it needs start reap, and installed needs a pool. */
function checkPoolOptions(fn: FunctionRecord): void {
  if ((fn.poolDepth ?? 0) > 0 && fn.start !== "reap") {
    throw new VhiveError("ERR_VALIDATION", `poolDepth: a pool of pre-started VMMs needs start reap (it prefetches the working set REAP records), not ${fn.start}`, {
      remedy: "deploy with --start reap, or without --pool",
    });
  }
  if (fn.poolInstalled && !fn.poolDepth) {
    throw new VhiveError("ERR_VALIDATION", "poolInstalled: the working set is installed in pooled VMMs, and this deployment has none", { remedy: "add --pool N (N pre-started VMMs), or drop --pool-installed" });
  }
}

function notFound(name: string): VhiveError {
  return new VhiveError("ERR_FUNCTION_NOT_FOUND", `no function ${name} is deployed`, { remedy: `\`vhive ls\` lists functions; deploy it with \`vhive deploy ${name} --image <ref>\`` });
}
