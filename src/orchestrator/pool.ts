/**
 * The instance pool of one function. A request goes to an instance with a free slot (fewer
 * than `concurrency` requests in flight: warm); else, if the function has fewer than
 * `maxInstances` and the host memory budget has room, a new instance is started for it (cold:
 * the request reports that start); else it waits in a FIFO queue, and fails with ERR_CAPACITY
 * after `queueTimeoutMs`. An instance idle for `keepaliveMs` is retired (scale to zero), down
 * to `minInstances`, which are started at once and kept warm.
 *
 * An instance that dies is dropped at once (its requests fail with ERR_INSTANCE_FAILED) and
 * replaced when a request or `minInstances` needs one. The pool never throws for one instance's
 * failure; it only reports it.
 */
import { roundMs } from "../metrics/index.js";
import { formatDuration } from "../shared/duration.js";
import { VhiveError, isVhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { FunctionRecord, StartKind } from "../store/index.js";
import type { MemoryBudget } from "./budget.js";
import type { InstanceStarter, PoolInstance, StartInfo } from "./pool-types.js";

export interface PoolOptions {
  starter: InstanceStarter;
  budget: MemoryBudget;
  log: Log;
  /** How long a request may wait for an instance before ERR_CAPACITY (default 120 s). */
  queueTimeoutMs?: number;
  /** How long one invocation may take when the function's record does not say (default 60 s). */
  invokeTimeoutMs?: number;
}

export type InstanceState = "starting" | "idle" | "busy" | "retiring";

export interface InstanceInfo {
  id: string;
  function: string;
  state: InstanceState;
  start: StartInfo["kind"] | null;
  inflight: number;
  invocations: number;
  startedAt: string;
  pid: number | null;
  hostPort: number | null;
}

/** The result of one request through the pool. */
export interface PoolInvocation {
  instance: string;
  start: StartKind;
  response: Record<string, unknown>;
  text: string;
  /** Request arrival at the pool until the reply, ms. */
  totalMs: number;
  /** queueMs (waiting for an instance), the start's phases when cold, invokeMs. */
  breakdown: Record<string, number>;
}

interface Slot {
  /** Until the instance is up, a placeholder id. */
  id: string;
  instance: PoolInstance | undefined;
  state: "starting" | "ready" | "retiring" | "gone";
  inflight: number;
  invocations: number;
  startedAt: Date;
  idleTimer: NodeJS.Timeout | undefined;
}

interface Lease {
  slot: Slot;
  /** Set when the request waited for this instance's start. */
  cold: StartInfo | undefined;
  /** performance.now() when that start began. */
  coldSince?: number;
}

interface Waiter {
  resolve: (lease: Lease | Promise<Lease>) => void;
  reject: (error: VhiveError) => void;
  timer: NodeJS.Timeout;
}

const DEFAULT_QUEUE_TIMEOUT_MS = 120_000;
const DEFAULT_INVOKE_TIMEOUT_MS = 60_000;
let nextPlaceholder = 0;

export class FunctionPool {
  readonly fn: FunctionRecord;
  readonly #starter: InstanceStarter;
  readonly #budget: MemoryBudget;
  readonly #log: Log;
  readonly #queueTimeoutMs: number;
  readonly #invokeTimeoutMs: number;
  readonly #slots = new Set<Slot>();
  readonly #queue: Waiter[] = [];
  readonly #starts = new AbortController();
  readonly #unsubscribe: () => void;
  /** Resolvers waiting for no request to be in flight (close). */
  #drained: (() => void)[] = [];
  #closing = false;
  #closed: Promise<void> | undefined;

  constructor(fn: FunctionRecord, options: PoolOptions) {
    this.fn = fn;
    this.#starter = options.starter;
    this.#budget = options.budget;
    this.#log = options.log.child({ fn: fn.name });
    this.#queueTimeoutMs = options.queueTimeoutMs ?? DEFAULT_QUEUE_TIMEOUT_MS;
    this.#invokeTimeoutMs = options.invokeTimeoutMs ?? DEFAULT_INVOKE_TIMEOUT_MS;
    this.#unsubscribe = this.#budget.onRelease(() => this.#dispatch());
    this.#ensureMin();
  }

  /** Requests waiting for an instance. */
  get queueLength(): number {
    return this.#queue.length;
  }

  instances(): InstanceInfo[] {
    return [...this.#slots].map((slot) => ({
      id: slot.id,
      function: this.fn.name,
      state: slot.state === "starting" ? "starting" : slot.state === "ready" ? (slot.inflight > 0 ? "busy" : "idle") : "retiring",
      start: slot.instance?.started.kind ?? null,
      inflight: slot.inflight,
      invocations: slot.invocations,
      startedAt: slot.startedAt.toISOString(),
      pid: slot.instance?.pid ?? null,
      hostPort: slot.instance?.hostPort ?? null,
    }));
  }

  /**
   * One request. Throws ERR_CAPACITY (queued too long), ERR_SHUTTING_DOWN, ERR_INSTANCE_FAILED
   * (the instance died meanwhile; the pool drops it), a start's own error for a cold start that
   * failed, or the function's error (ERR_INVOKE, ERR_VALIDATION for data that does not fit).
   */
  async invoke(data: string | undefined, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<PoolInvocation> {
    if (this.#closing) throw this.#shuttingDown();
    const arrived = performance.now();
    const lease = await this.#acquire();
    const { slot, cold, coldSince } = lease;
    const instance = slot.instance!;
    const leased = performance.now();
    try {
      const timeoutMs = options.timeoutMs ?? this.fn.invokeTimeoutMs ?? this.#invokeTimeoutMs;
      const result = await instance.invoke(data, { signal: options.signal, timeoutMs });
      const totalMs = performance.now() - arrived;
      const breakdown = cold
        ? { queueMs: roundMs((coldSince ?? arrived) - arrived), ...cold.breakdown, invokeMs: roundMs(result.ms) }
        : { queueMs: roundMs(leased - arrived), invokeMs: roundMs(result.ms) };
      return { instance: instance.id, start: cold?.kind ?? "warm", response: result.response, text: result.text, totalMs: roundMs(totalMs), breakdown };
    } catch (error) {
      if (instance.failed.aborted) {
        const reason = instance.failed.reason as VhiveError;
        this.#lose(slot, reason);
        throw new VhiveError("ERR_INSTANCE_FAILED", `instance ${instance.id} of function ${this.fn.name} died during the request: ${reason.message}`, {
          details: reason.details,
          cause: reason,
        });
      }
      throw error;
    } finally {
      this.#release(slot);
    }
  }

  /**
   * Graceful: refuse new requests, fail queued ones, let requests in flight finish (up to
   * drainMs), then retire every instance (saving snapshots where the policy says so).
   */
  close(drainMs = 30_000): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      this.#failQueue(this.#shuttingDown());
      if (this.#inflight() > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => this.#drained.push(resolve)),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, drainMs))),
        ]);
        clearTimeout(timer);
      }
      this.#starts.abort(this.#shuttingDown());
      this.#unsubscribe();
      await Promise.all([...this.#slots].map((slot) => this.#retire(slot)));
    })();
    return this.#closed;
  }

  /** Immediate: kill every instance, discarding unsaved snapshots. */
  async destroy(): Promise<void> {
    this.#closing = true;
    this.#failQueue(this.#shuttingDown());
    this.#starts.abort(this.#shuttingDown());
    this.#unsubscribe();
    await Promise.all(
      [...this.#slots].map(async (slot) => {
        this.#forget(slot);
        await slot.instance?.destroy();
        this.#budget.release(this.fn.memMib);
      }),
    );
  }

  #acquire(): Promise<Lease> {
    const free = this.#freeSlot();
    if (free) return Promise.resolve(this.#take(free));
    if (this.#canStart()) return this.#startFor(1);
    return new Promise<Lease>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          this.#queue.splice(this.#queue.indexOf(waiter), 1);
          reject(this.#capacityError());
        }, this.#queueTimeoutMs),
      };
      this.#queue.push(waiter);
    });
  }

  #freeSlot(): Slot | undefined {
    let best: Slot | undefined;
    for (const slot of this.#slots) {
      if (slot.state !== "ready" || slot.inflight >= this.fn.concurrency) continue;
      // Prefer the busiest instance with room, so that idle ones can expire.
      if (!best || slot.inflight > best.inflight) best = slot;
    }
    return best;
  }

  #take(slot: Slot): Lease {
    slot.inflight++;
    clearTimeout(slot.idleTimer);
    slot.idleTimer = undefined;
    return { slot, cold: undefined };
  }

  #live(): number {
    let live = 0;
    for (const slot of this.#slots) if (slot.state === "starting" || slot.state === "ready") live++;
    return live;
  }

  /** Whether another instance may start now; reserves its memory if so. */
  #canStart(): boolean {
    if (this.#closing || this.#live() >= this.fn.maxInstances) return false;
    return this.#budget.tryReserve(this.fn.memMib);
  }

  /** Start an instance (memory already reserved) with `inflight` requests waiting for it. */
  async #startFor(inflight: number): Promise<Lease> {
    const began = performance.now();
    const slot: Slot = { id: `starting-${nextPlaceholder++}`, instance: undefined, state: "starting", inflight, invocations: 0, startedAt: new Date(), idleTimer: undefined };
    this.#slots.add(slot);
    let instance: PoolInstance;
    try {
      instance = await this.#starter.start(this.fn, { signal: this.#starts.signal });
    } catch (error) {
      // A slot already gone was dropped by close() or destroy(), which freed its memory.
      if (slot.state !== "gone") {
        this.#forget(slot);
        this.#budget.release(this.fn.memMib);
      }
      this.#log.error("starting an instance failed", { code: isVhiveError(error) ? error.code : undefined, error: messageOf(error) });
      if (this.#closing) throw isVhiveError(error, "ERR_SHUTTING_DOWN") ? error : this.#shuttingDown();
      if (!isVhiveError(error)) throw error;
      // Same code, with the function named: the request's reply says whose start failed.
      throw new VhiveError(error.code, `function ${this.fn.name}: starting an instance failed: ${error.message}`, { remedy: error.remedy, details: error.details, cause: error });
    }
    slot.id = instance.id;
    slot.instance = instance;
    if (slot.state === "gone") {
      // close() or destroy() ran while it started.
      await instance.destroy();
      throw this.#shuttingDown();
    }
    slot.state = "ready";
    this.#log.info("instance started", { instance: instance.id, start: instance.started.kind });
    if (instance.failed.aborted) this.#lose(slot, instance.failed.reason as VhiveError);
    else instance.failed.addEventListener("abort", () => this.#lose(slot, instance.failed.reason as VhiveError), { once: true });
    // Queued requests may share it (concurrency > 1), or take it if it was started for none.
    this.#dispatch();
    if (slot.inflight === 0) this.#idle(slot);
    return { slot, cold: instance.started, coldSince: began };
  }

  #release(slot: Slot): void {
    slot.inflight--;
    slot.invocations++;
    if (this.#inflight() === 0) {
      for (const resolve of this.#drained.splice(0)) resolve();
    }
    if (slot.state !== "ready") return;
    this.#dispatch();
    if (slot.inflight === 0) this.#idle(slot);
  }

  #inflight(): number {
    let inflight = 0;
    for (const slot of this.#slots) inflight += slot.inflight;
    return inflight;
  }

  /** Hand queued requests to instances with room, or start instances for them. */
  #dispatch(): void {
    while (this.#queue.length > 0) {
      const free = this.#freeSlot();
      if (free) {
        const waiter = this.#queue.shift()!;
        clearTimeout(waiter.timer);
        waiter.resolve(this.#take(free));
        continue;
      }
      if (!this.#canStart()) return;
      const waiter = this.#queue.shift()!;
      clearTimeout(waiter.timer);
      waiter.resolve(this.#startFor(1));
    }
    this.#ensureMin();
  }

  /** Start instances in the background until minInstances are up (failures are logged). */
  #ensureMin(): void {
    while (!this.#closing && this.#live() < this.fn.minInstances && this.#canStart()) {
      this.#startFor(0).catch(() => {}); // logged in #startFor
    }
  }

  /** Arm the keep-alive timer of an idle instance. */
  #idle(slot: Slot): void {
    clearTimeout(slot.idleTimer);
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined;
      if (slot.state !== "ready" || slot.inflight > 0) return;
      if (this.#live() <= this.fn.minInstances) return; // kept warm
      this.#log.info("keep-alive expired", { instance: slot.id });
      void this.#retire(slot);
    }, this.fn.keepaliveMs);
  }

  async #retire(slot: Slot): Promise<void> {
    if (slot.state === "retiring" || slot.state === "gone") return;
    clearTimeout(slot.idleTimer);
    slot.state = "retiring";
    try {
      await slot.instance?.retire();
    } catch (error) {
      this.#log.warn("retiring an instance failed", { instance: slot.id, error: messageOf(error) });
      await slot.instance?.destroy();
    }
    this.#forget(slot);
    this.#budget.release(this.fn.memMib);
  }

  /** An instance died: drop it, end what is left of it, and free its memory. */
  #lose(slot: Slot, reason: VhiveError): void {
    if (slot.state === "gone" || slot.state === "retiring") return;
    this.#log.error("instance died", { instance: slot.id, code: reason.code, error: reason.message });
    this.#forget(slot);
    void (async () => {
      await slot.instance?.destroy().catch((error: unknown) => this.#log.warn("ending a dead instance failed", { instance: slot.id, error: messageOf(error) }));
      this.#budget.release(this.fn.memMib);
    })();
  }

  #forget(slot: Slot): void {
    clearTimeout(slot.idleTimer);
    slot.state = "gone";
    this.#slots.delete(slot);
  }

  #failQueue(error: VhiveError): void {
    for (const waiter of this.#queue.splice(0)) {
      clearTimeout(waiter.timer);
      waiter.reject(error);
    }
  }

  #capacityError(): VhiveError {
    const atMax = this.#live() >= this.fn.maxInstances;
    const why = atMax
      ? `all ${this.fn.maxInstances} instances (max) stayed busy`
      : `the host memory budget (${this.#budget.reservedMib} of ${this.#budget.totalMib} MiB in use) had no room for another ${this.fn.memMib} MiB instance`;
    return new VhiveError("ERR_CAPACITY", `function ${this.fn.name}: no instance within ${formatDuration(this.#queueTimeoutMs)}: ${why}`, {
      remedy: atMax ? "retry later, or deploy the function with a higher --max or --concurrency" : "retry later, or start the daemon with a larger --memory-budget",
    });
  }

  #shuttingDown(): VhiveError {
    return new VhiveError("ERR_SHUTTING_DOWN", `function ${this.fn.name} is being stopped`, { remedy: "retry once the daemon (or the function's new deployment) is up" });
  }
}

