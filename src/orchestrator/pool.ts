/**
 * The instance pool of one function. A request goes to an instance with a free slot (fewer
 * than `concurrency` requests in flight: warm); else, if the function has fewer than
 * `maxInstances` and the host memory budget has room, a new instance is started for it (cold:
 * the request reports that start); else it waits in a FIFO queue, and fails with ERR_CAPACITY
 * after `queueTimeoutMs`. When an instance goes idle, the function's keep-alive policy
 * (keepalive/) says how long it is kept before it is retired (scale to zero), down to
 * `minInstances`, which are started at once and kept warm; or that it is retired at once and an
 * instance started again ahead of the next request it expects (pre-warm). The policy learns from
 * the function's idle times: from the moment no request is in flight to the next request.
 *
 * An instance that dies is dropped at once (its requests fail with ERR_INSTANCE_FAILED) and
 * replaced when a request or `minInstances` needs one. The pool never throws for one instance's
 * failure; it only reports it.
 *
 * Pre-started VMMs (`poolDepth`, start reap): the function keeps that many QEMUs started for its
 * snapshot and waiting (src/start/vmm-pool.ts), and a cold start takes one instead of starting
 * QEMU. The pool fills when the function is deployed (or loaded at daemon start), and is refilled
 * in the background once each start that took one has finished (so a burst finds VMMs, and a
 * refill does not compete with the start it follows). When the function scales to zero (its last
 * instance retired at keep-alive expiry or for a pre-warm), the pool is drained: a function at
 * zero holds nothing; its next cold start restores as usual and refills the pool. Each pooled VMM
 * is counted against the memory budget by what it holds (measured PSS), and gives its memory
 * back when an instance needs it (budget.ts). close() and destroy() end every pooled VMM.
 */
import { roundMs } from "../metrics/index.js";
import { formatDuration } from "../shared/duration.js";
import { VhiveError, isVhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import type { FunctionRecord, StartKind } from "../store/index.js";
import { VmmPool, type VmmPoolState } from "../start/index.js";
import type { MemoryBudget, Reclaimer } from "./budget.js";
import { createKeepalivePolicy, type IdleDecision, type KeepalivePolicy } from "./keepalive/index.js";
import { LifetimeLog, type InstanceLifetime } from "./lifetimes.js";
import type { InstanceStarter, PoolInstance, PrestartedVmm, StartInfo } from "./pool-types.js";

export interface PoolOptions {
  starter: InstanceStarter;
  budget: MemoryBudget;
  log: Log;
  /** How long a request may wait for an instance before ERR_CAPACITY (default 120 s). */
  queueTimeoutMs?: number;
  /** How long one invocation may take when the function's record does not say (default 60 s). */
  invokeTimeoutMs?: number;
  /** Where instance lifetimes are recorded (the registry keeps one per function across pools). */
  lifetimes?: LifetimeLog;
  /** Idle times the keep-alive policy learns before the first request (e.g. from a trace's past), ms. */
  idleHistoryMs?: readonly number[];
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
  /** What the daemon had to do to serve it (recovered from a damaged snapshot, served again), if anything. */
  notes?: string[];
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
  /** A pre-warmed instance is kept until then (performance.now()) unless a request takes it. */
  keepUntil: number | undefined;
  lifetime: InstanceLifetime;
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
  readonly #policy: KeepalivePolicy;
  readonly #lifetimes: LifetimeLog;
  /** Pre-started VMMs for cold starts (poolDepth > 0), and how they give memory back to instances. */
  readonly #vmms: VmmPool<PrestartedVmm> | undefined;
  readonly #reclaim: Reclaimer | undefined;
  readonly #unreclaim: () => void = () => {};
  /** Whether the pool of pre-started VMMs is kept filled: from deploy and every start, until the function scales to zero. */
  #vmmsWanted = true;
  /** Instance starts running now (refills wait for them: #mayRefillVmms). */
  #startsInFlight = 0;
  /** performance.now() when the last request in flight ended; undefined while one is. */
  #idleSince: number | undefined;
  #prewarmTimer: NodeJS.Timeout | undefined;
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
    this.#policy = createKeepalivePolicy(fn);
    for (const idleMs of options.idleHistoryMs ?? []) this.#policy.observeIdleTime(idleMs);
    this.#lifetimes = options.lifetimes ?? new LifetimeLog();
    const starter = this.#starter;
    if ((fn.poolDepth ?? 0) > 0 && starter.prestart) {
      const vmms = new VmmPool<PrestartedVmm>({
        depth: fn.poolDepth!,
        prestart: (signal) => starter.prestart!(fn, { signal }),
        budget: this.#budget,
        // Until one is measured: a pooled VMM holds at most its guest memory and QEMU's own.
        startingMib: fn.memMib,
        log: this.#log.child({ vmmPool: fn.poolInstalled ? "pool-installed" : "pool" }),
      });
      this.#vmms = vmms;
      this.#reclaim = (mib) => vmms.shed(mib);
      this.#unreclaim = this.#budget.addReclaimer(this.#reclaim);
    }
    this.#unsubscribe = this.#budget.onRelease(() => {
      this.#dispatch();
      if (this.#mayRefillVmms()) this.#vmms?.refillIfNoRoom();
    });
    this.#ensureMin();
    this.#vmms?.refill(); // deployed: its first cold start can be pooled already
  }

  /** The function's pre-started VMMs, if it keeps any. */
  vmmPool(): (VmmPoolState & { installed: boolean }) | undefined {
    return this.#vmms ? { ...this.#vmms.state(), installed: this.fn.poolInstalled ?? false } : undefined;
  }

  /** Requests waiting for an instance. */
  get queueLength(): number {
    return this.#queue.length;
  }

  /** The keep-alive policy's state (its name, what it learnt, its last decision). */
  keepalive(): Record<string, unknown> {
    return this.#policy.describe();
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
    this.#arrival(arrived);
    const notes: string[] = [];
    for (let attempt = 1; ; attempt++) {
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
        notes.push(...(cold?.notes ?? []));
        return { instance: instance.id, start: cold?.kind ?? "warm", response: result.response, text: result.text, totalMs: roundMs(totalMs), breakdown, ...(notes.length > 0 ? { notes } : {}) };
      } catch (error) {
        if (!instance.failed.aborted) throw error;
        const reason = instance.failed.reason as VhiveError;
        this.#lose(slot, reason);
        // The instance ran from a damaged snapshot: the starter has set it aside, so a new
        // instance will not, and the request is served again (once) rather than failed.
        if (isVhiveError(reason, "ERR_SNAPSHOT_CORRUPT") && attempt === 1 && !this.#closing) {
          this.#log.warn("instance died of a damaged snapshot; serving its request again on a new instance", { instance: instance.id, error: reason.message });
          notes.push(...(cold?.notes ?? []), `instance ${instance.id} died serving this request: ${reason.message}; the request was served again by a new instance`);
          continue;
        }
        throw new VhiveError("ERR_INSTANCE_FAILED", `instance ${instance.id} of function ${this.fn.name} died during the request: ${reason.message}`, {
          details: reason.details,
          cause: reason,
        });
      } finally {
        this.#release(slot);
      }
    }
  }

  /**
   * Graceful: refuse new requests, fail queued ones, let requests in flight finish (up to
   * drainMs), then retire every instance (saving snapshots where the policy says so).
   */
  close(drainMs = 30_000): Promise<void> {
    this.#closed ??= (async () => {
      this.#closing = true;
      clearTimeout(this.#prewarmTimer);
      // Pooled VMMs serve no one once the pool closes: end them at once.
      const vmmsClosed = this.#closeVmms();
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
      await Promise.all([...[...this.#slots].map((slot) => this.#retire(slot)), vmmsClosed]);
    })();
    return this.#closed;
  }

  /** Immediate: kill every instance, discarding unsaved snapshots. */
  async destroy(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#prewarmTimer);
    const vmmsClosed = this.#closeVmms();
    this.#failQueue(this.#shuttingDown());
    this.#starts.abort(this.#shuttingDown());
    this.#unsubscribe();
    await Promise.all([
      ...[...this.#slots].map(async (slot) => {
        this.#forget(slot);
        await slot.instance?.destroy();
        this.#budget.release(this.fn.memMib);
      }),
      vmmsClosed,
    ]);
  }

  #closeVmms(): Promise<void> {
    this.#unreclaim();
    return this.#vmms?.close() ?? Promise.resolve();
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
    slot.keepUntil = undefined;
    return { slot, cold: undefined };
  }

  #live(): number {
    let live = 0;
    for (const slot of this.#slots) if (slot.state === "starting" || slot.state === "ready") live++;
    return live;
  }

  /** Whether another instance may start now; reserves its memory if so (pooled VMMs give theirs back if need be). */
  #canStart(): boolean {
    if (this.#closing || this.#live() >= this.fn.maxInstances) return false;
    return this.#budget.tryReserve(this.fn.memMib, this.#reclaim);
  }

  /**
   * Start an instance (memory already reserved) with `inflight` requests waiting for it; a
   * pre-warm passes when its keep-alive window ends (`keepUntil`, performance.now()).
   */
  async #startFor(inflight: number, keepUntil?: number): Promise<Lease> {
    const began = performance.now();
    const id = `starting-${nextPlaceholder++}`;
    const lifetime = this.#lifetimes.begin(this.fn.name, this.fn.memMib, id, keepUntil !== undefined);
    const slot: Slot = { id, instance: undefined, state: "starting", inflight, invocations: 0, startedAt: new Date(), idleTimer: undefined, keepUntil, lifetime };
    this.#slots.add(slot);
    // Its reservation goes back to the budget: the instance holds its own (reserved above).
    const pooled = this.#vmms?.take();
    this.#vmmsWanted = true;
    let instance: PoolInstance;
    this.#startsInFlight++;
    try {
      instance = await this.#starter.start(this.fn, { signal: this.#starts.signal, ...(pooled ? { pooled } : {}) });
    } catch (error) {
      this.#startsInFlight--;
      this.#refillVmms();
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
    this.#startsInFlight--;
    this.#refillVmms();
    slot.id = instance.id;
    slot.instance = instance;
    if (slot.state === "gone") {
      // close() or destroy() ran while it started.
      await instance.destroy();
      throw this.#shuttingDown();
    }
    slot.state = "ready";
    this.#lifetimes.ready(lifetime, instance.id, instance.started.kind);
    this.#log.info("instance started", { instance: instance.id, start: instance.started.kind, prewarmed: keepUntil !== undefined });
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
      if (this.#queue.length === 0) this.#idleSince = performance.now();
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

  /**
   * A request arrived: the policy learns the idle time it ended (0 if the function was busy),
   * and a pre-warm still pending is dropped (this request starts or takes an instance itself).
   */
  #arrival(now: number): void {
    clearTimeout(this.#prewarmTimer);
    this.#prewarmTimer = undefined;
    if (this.#inflight() > 0 || this.#queue.length > 0) this.#policy.observeIdleTime(0);
    else if (this.#idleSince !== undefined) this.#policy.observeIdleTime(now - this.#idleSince);
    this.#idleSince = undefined;
  }

  /** An instance went idle: keep it as the policy says, or unload it until a pre-warm. */
  #idle(slot: Slot): void {
    clearTimeout(slot.idleTimer);
    let keepMs: number;
    if (slot.keepUntil !== undefined) {
      // Pre-warmed and not yet used: the window it was started for still holds.
      keepMs = Math.max(0, slot.keepUntil - performance.now());
      slot.keepUntil = undefined;
    } else {
      const decision = this.#policy.decide();
      if (decision.prewarmMs > 0 && this.#live() > this.fn.minInstances) {
        this.#log.info("unloaded until a pre-warm", { instance: slot.id, rule: decision.rule, prewarmMs: Math.round(decision.prewarmMs), keepAliveMs: Math.round(decision.keepAliveMs) });
        this.#schedulePrewarm(decision);
        void this.#retire(slot);
        return;
      }
      keepMs = decision.keepAliveMs;
    }
    slot.idleTimer = setTimeout(() => {
      slot.idleTimer = undefined;
      if (slot.state !== "ready" || slot.inflight > 0) return;
      if (this.#live() <= this.fn.minInstances) return; // kept warm
      this.#log.info("keep-alive expired", { instance: slot.id });
      void this.#retire(slot);
    }, keepMs);
  }

  /** Start one instance `prewarmMs` from now, kept until the decision's window ends, if none is up then. */
  #schedulePrewarm(decision: IdleDecision): void {
    clearTimeout(this.#prewarmTimer);
    const keepUntil = performance.now() + decision.keepAliveMs;
    this.#prewarmTimer = setTimeout(() => {
      this.#prewarmTimer = undefined;
      if (this.#closing || this.#live() > 0) return;
      if (!this.#canStart()) {
        this.#log.warn("pre-warm skipped: the memory budget has no room", { memMib: this.fn.memMib });
        return;
      }
      this.#startFor(0, keepUntil).catch(() => {}); // logged in #startFor
    }, decision.prewarmMs);
  }

  /** After a start (or a failed one): the VMM pool back to its depth, in the background. */
  #refillVmms(): void {
    if (this.#mayRefillVmms()) this.#vmms?.refill();
  }

  /**
   * Not while one of its starts runs: memory a taken VMM gave back would otherwise start a
   * pre-start at once, competing with the start it was taken for; the start's end refills.
   */
  #mayRefillVmms(): boolean {
    return !this.#closing && this.#vmmsWanted && this.#startsInFlight === 0;
  }

  async #retire(slot: Slot): Promise<void> {
    if (slot.state === "retiring" || slot.state === "gone") return;
    clearTimeout(slot.idleTimer);
    slot.state = "retiring";
    if (!this.#closing && this.#live() === 0 && this.#vmms) {
      // Scaled to zero: it holds nothing, pooled VMMs included, until its next start.
      this.#vmmsWanted = false;
      this.#log.info("scaled to zero: pooled VMMs ended", { ready: this.#vmms.state().ready });
      void this.#vmms.drain();
    }
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
    this.#lifetimes.end(slot.lifetime);
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

