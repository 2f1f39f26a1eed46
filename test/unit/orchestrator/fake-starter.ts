/** A fake instance starter for pool and API tests: instances are objects, no VM. */
import type { InvokeResult } from "../../../src/invoke/index.js";
import { invokeTimeoutError } from "../../../src/invoke/timeout.js";
import type { ColdStartKind, InstanceStarter, PoolInstance, PrestartedVmm, StartInfo } from "../../../src/orchestrator/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import type { FunctionRecord } from "../../../src/store/index.js";

export class FakeInstance implements PoolInstance {
  readonly id: string;
  readonly started: StartInfo;
  readonly failed: AbortSignal;
  readonly pid = 4242;
  readonly hostPort = 40000;
  readonly #controller = new AbortController();
  readonly #holds: (() => void)[] = [];
  /** When true, invocations wait until release() is called. */
  hold = false;
  invocations: (string | undefined)[] = [];
  /** The invocation timeout each call was given. */
  timeoutsMs: (number | undefined)[] = [];
  retired = false;
  destroyed = false;

  constructor(id: string, kind: ColdStartKind) {
    this.id = id;
    this.started = { kind, breakdown: { startMs: 5 } };
    this.failed = this.#controller.signal;
  }

  async invoke(data: string | undefined, options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<InvokeResult> {
    this.invocations.push(data);
    this.timeoutsMs.push(options.timeoutMs);
    if (this.hold) {
      await new Promise<void>((resolve, reject) => {
        this.#holds.push(resolve);
        this.failed.addEventListener("abort", () => reject(this.failed.reason), { once: true });
        options.signal?.addEventListener("abort", () => reject(new VhiveError("ERR_ABORTED", "cancelled")), { once: true });
      });
    }
    if (data === "bad") throw new VhiveError("ERR_INVOKE", "the function answered UNKNOWN: boom");
    if (data === "slow") throw invokeTimeoutError("helloworld.Greeter/SayHello", options.timeoutMs ?? Number.NaN);
    const text = `Hello, ${data ?? "world"}!`;
    return { response: { message: text }, text, ms: 1 };
  }

  /** Let every held invocation finish. */
  release(): void {
    for (const resolve of this.#holds.splice(0)) resolve();
  }

  get held(): number {
    return this.#holds.length;
  }

  die(message = "QEMU was killed by SIGKILL while the VM was running", code: "ERR_VM_EXITED" | "ERR_SNAPSHOT_CORRUPT" = "ERR_VM_EXITED"): void {
    this.#controller.abort(new VhiveError(code, message));
  }

  async retire(): Promise<void> {
    this.retired = true;
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
  }
}

/** A fake pre-started VMM: what it holds, and whether it was taken or ended. */
export class FakeVmm implements PrestartedVmm {
  readonly id: string;
  readonly failed: AbortSignal;
  readonly #controller = new AbortController();
  readonly mib: number;
  taken = false;
  destroyed = false;

  constructor(id: string, mib: number) {
    this.id = id;
    this.mib = mib;
    this.failed = this.#controller.signal;
  }

  async memoryMib(): Promise<number> {
    return this.mib;
  }

  die(): void {
    this.#controller.abort(new VhiveError("ERR_VM_EXITED", "QEMU was killed by SIGKILL while the VM was running"));
  }

  async destroy(): Promise<void> {
    this.destroyed = true;
  }
}

export class FakeStarter implements InstanceStarter {
  readonly instances: FakeInstance[] = [];
  /** Start kinds handed out in order (then "boot"). */
  kinds: ColdStartKind[] = [];
  /** Starts wait until proceed() when true. */
  gate = false;
  failNext: VhiveError | undefined;
  holdNew = false;
  readonly #waiting: (() => void)[] = [];
  #next = 0;

  /** Deployments checked; a method "no.Such/Method" is refused, as a proto that lacks it is. */
  readonly checkedFunctions: FunctionRecord[] = [];

  async checkFunction(fn: FunctionRecord): Promise<void> {
    this.checkedFunctions.push(fn);
    if (fn.method === "no.Such/Method") throw new VhiveError("ERR_PROTO_INVALID", `${fn.protoPath ?? "helloworld.proto"} does not define no.Such/Method; it defines helloworld.Greeter/SayHello`);
  }

  /** Requests checked before they reach the pool; "malformed" is refused, as a bad --data is. */
  readonly checked: (string | undefined)[] = [];

  async checkRequest(_fn: FunctionRecord, data: string | undefined): Promise<void> {
    this.checked.push(data);
    if (data === "malformed") throw new VhiveError("ERR_VALIDATION", "--data must be a JSON object for demo.Order, whose fields are { item: string, count: int32 }");
  }

  async start(fn: FunctionRecord, options: { signal: AbortSignal; pooled?: PrestartedVmm }): Promise<FakeInstance> {
    const pooled = options.pooled as FakeVmm | undefined;
    if (pooled) pooled.taken = true;
    if (this.gate) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    if (options.signal.aborted) throw new VhiveError("ERR_ABORTED", "start cancelled");
    if (this.failNext) {
      const error = this.failNext;
      this.failNext = undefined;
      throw error;
    }
    const kind = pooled ? (fn.poolInstalled ? "pool-installed" : "pool") : (this.kinds.shift() ?? "boot");
    const instance = new FakeInstance(`${fn.name}-${this.#next++}`, kind);
    instance.hold = this.holdNew;
    this.instances.push(instance);
    return instance;
  }

  proceed(): void {
    for (const resolve of this.#waiting.splice(0)) resolve();
  }

  /** Pre-started VMMs, in order. */
  readonly vmms: FakeVmm[] = [];
  /** What each pre-started VMM measures, MiB. */
  vmmMib = 40;
  /** Pre-starts wait until proceedPrestarts() when true. */
  prestartGate = false;
  /** Pre-starts find nothing to start (no snapshot with a working set yet) when true. */
  nothingToPrestart = false;
  readonly #prestartsWaiting: (() => void)[] = [];
  #nextVmm = 0;

  async prestart(fn: FunctionRecord, options: { signal: AbortSignal }): Promise<FakeVmm | undefined> {
    if (this.prestartGate) await new Promise<void>((resolve) => this.#prestartsWaiting.push(resolve));
    if (options.signal.aborted) throw new VhiveError("ERR_ABORTED", "pre-start cancelled");
    if (this.nothingToPrestart) return undefined;
    const vmm = new FakeVmm(`${fn.name}-vmm-${this.#nextVmm++}`, this.vmmMib);
    this.vmms.push(vmm);
    return vmm;
  }

  proceedPrestarts(): void {
    for (const resolve of this.#prestartsWaiting.splice(0)) resolve();
  }

  get pendingPrestarts(): number {
    return this.#prestartsWaiting.length;
  }

  get pending(): number {
    return this.#waiting.length;
  }
}

export function fakeFunction(overrides: Partial<FunctionRecord> = {}): FunctionRecord {
  return {
    name: "hello",
    imageRef: "helloworld",
    imageId: "a".repeat(64),
    memMib: 256,
    vcpus: 1,
    start: "reap",
    keepaliveMs: 2000,
    keepalivePolicy: "fixed",
    minInstances: 0,
    maxInstances: 2,
    concurrency: 1,
    createdAt: "2026-01-01T00:00:00.000Z",
    updatedAt: "2026-01-01T00:00:00.000Z",
    ...overrides,
  };
}
