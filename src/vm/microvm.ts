/**
 * One QEMU microVM process and everything it owns: the QEMU child, its QMP link, its serial
 * console and its run directory. Created paused by MicroVm.start(); resume() runs the guest.
 *
 * A VM can fail at any moment after start: QEMU exits, the guest's init reports an error, the
 * kernel panics, or the entrypoint exits. `failure` resolves with the error describing the
 * first of these, and `failed` is an AbortSignal that fires then, so that any wait (readiness,
 * an invocation) can be raced against the VM's death instead of a timeout.
 */
import { createReadStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Duplex, Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import shellQuote from "shell-quote";
import { randomUUID } from "node:crypto";
import { ChildHandle, type ExitInfo } from "../shared/child.js";
import { formatDuration } from "../shared/duration.js";
import { VhiveError, messageOf } from "../shared/errors.js";
import type { Log } from "../shared/log.js";
import { toolMissing } from "../shared/tool.js";
import { QmpClient } from "./qmp.js";
import { SerialConsole, type GuestEvent } from "./serial.js";
import { GuestAgent } from "./agent.js";
import { AGENT_FD, MIGRATION_FD, SERIAL_FD, hasAgent, qemuArgs, type VmSpec } from "./cmdline.js";

export interface StartOptions {
  log: Log;
  /** Parent of the VM's run directory (serial log); the directory is removed on stop unless keepRunDir. */
  runRoot: string;
  keepRunDir?: boolean;
  signal?: AbortSignal;
  /** Extra environment for QEMU (the memory shim's LD_PRELOAD and settings). */
  env?: Record<string, string>;
  /**
   * QEMU dies with this process even if it is SIGKILLed (PR_SET_PDEATHSIG through setpriv):
   * for owners that can be killed outright with nobody left to stop their VMs (the containerd
   * shim). Without it, the process-wide exit hook covers every exit but SIGKILL.
   */
  dieWithParent?: boolean;
  /** Every line the guest prints but init's markers (the function's output), from the start. */
  onConsoleLine?: (line: string) => void;
  /**
   * Rewrites the VM's failure before it is reported (a restore adds which snapshot's files the
   * VM ran from, the likely cause of a crash), given how QEMU exited if it did. Not applied to
   * a failure set with failWith().
   */
  explainFailure?: (error: VhiveError, exit?: ExitInfo) => VhiveError;
}

/** performance.now() timestamps of a VM's life, for latency breakdowns. */
export interface VmTimeline {
  spawnAt: number;
  qmpReadyAt?: number;
  resumeAt?: number;
  initStartAt?: number;
  execAt?: number;
}

const STDERR_TAIL = 20;

/** ERR_GUEST_EXITED with the entrypoint's exit status, for owners that report it (the containerd shim). */
export class GuestExitedError extends VhiveError {
  readonly status: number;
  constructor(status: number, message: string, options: ConstructorParameters<typeof VhiveError>[2] = {}) {
    super("ERR_GUEST_EXITED", message, options);
    this.name = "GuestExitedError";
    this.status = status;
  }
}

export class MicroVm implements AsyncDisposable {
  readonly id: string;
  readonly spec: VmSpec;
  readonly runDir: string;
  readonly timeline: VmTimeline;
  readonly console: SerialConsole;
  readonly qmp: QmpClient;
  /** The guest agent's port, for VMs that run a function (hasAgent). */
  readonly agent: GuestAgent | undefined;
  /** Resolves with the first failure of the VM; never rejects. */
  readonly failure: Promise<VhiveError>;
  /** Aborts when the VM fails; its reason is the VhiveError. */
  readonly failed: AbortSignal;
  readonly #child: ChildHandle;
  readonly #log: Log;
  readonly #keepRunDir: boolean;
  readonly #stderrTail: string[] = [];
  #fail: (error: VhiveError) => void = () => {};
  #stopping = false;
  #stopped: Promise<void> | undefined;

  private constructor(spec: VmSpec, runDir: string, id: string, options: StartOptions) {
    this.id = id;
    this.spec = spec;
    this.runDir = runDir;
    this.#log = options.log.child({ vmId: id });
    this.#keepRunDir = options.keepRunDir ?? false;
    this.timeline = { spawnAt: performance.now() };
    const [command, ...args] = [...(options.dieWithParent ? ["setpriv", "--pdeathsig", "KILL", "--"] : []), spec.qemuPath, ...qemuArgs(spec)];
    this.#child = new ChildHandle(`qemu ${id}`, command!, args, {
      // fd 4 (MIGRATION_FD) only for a restore: nothing else migrates in over it.
      stdio: ["pipe", "pipe", "pipe", "pipe", spec.incoming ? "pipe" : "ignore", hasAgent(spec) ? "pipe" : "ignore"],
      env: options.env ? { ...process.env, ...options.env } : process.env,
    });
    const qemu = this.#child.process;
    qemu.stderr?.setEncoding("utf8");
    qemu.stderr?.on("data", (text: string) => {
      for (const line of text.split("\n")) {
        if (!line.trim()) continue;
        this.#stderrTail.push(line);
        if (this.#stderrTail.length > STDERR_TAIL) this.#stderrTail.shift();
      }
    });
    this.console = new SerialConsole(qemu.stdio[SERIAL_FD] as Readable, join(runDir, "serial.log"));
    if (options.onConsoleLine) this.console.onLine(options.onConsoleLine);
    if (spec.incoming) {
      // QEMU never writes on the migration channel; flowing, it reaches its end when QEMU exits,
      // so the child's 'close' is not held up by it.
      this.#migration.on("error", () => {}); // a failed migration is reported through QMP
      this.#migration.resume();
    }
    this.qmp = new QmpClient(qemu.stdout!, qemu.stdin!);
    this.agent = hasAgent(spec) ? new GuestAgent((qemu.stdio as unknown as Duplex[])[AGENT_FD]!) : undefined;
    const explain = options.explainFailure ?? ((error: VhiveError) => error);

    const controller = new AbortController();
    this.failed = controller.signal;
    this.failure = new Promise<VhiveError>((resolve) => {
      const fail = (error: VhiveError) => {
        if (controller.signal.aborted) return;
        controller.abort(error);
        resolve(error);
      };
      this.#fail = fail;
      this.console.onEvent((event) => {
        if (event.kind === "init-start") this.timeline.initStartAt = event.atMs;
        if (event.kind === "exec") this.timeline.execAt = event.atMs;
        const error = this.#guestFailure(event);
        if (error) fail(explain(error));
      });
      void this.#child.exited.then(async (exit) => {
        await this.console.closed();
        if (this.#stopping) return;
        // Guest-side reasons come first: they say why QEMU went away.
        const guestError = this.console.events.map((event) => this.#guestFailure(event)).find((e) => e !== undefined);
        fail(guestError ? explain(guestError) : explain(this.#exitError(exit.code, exit.signal), exit));
      });
    });
    this.failure.then((error) => this.#log.debug("vm failed", { code: error.code, error: error.message }));
  }

  /** Spawn QEMU paused and wait for its monitor. On any failure nothing is left running. */
  static async start(spec: VmSpec, options: StartOptions): Promise<MicroVm> {
    if (options.signal?.aborted) throw new VhiveError("ERR_ABORTED", "VM start was cancelled");
    const id = randomUUID().slice(0, 8);
    const runDir = join(options.runRoot, id);
    await mkdir(runDir, { recursive: true });
    let vm: MicroVm;
    try {
      vm = new MicroVm(spec, runDir, id, options);
    } catch (error) {
      await rm(runDir, { recursive: true, force: true });
      throw error;
    }
    const onAbort = () => void vm.destroy();
    options.signal?.addEventListener("abort", onAbort, { once: true });
    try {
      const spawnError = new Promise<never>((_, reject) => {
        vm.#child.process.once("error", (error: NodeJS.ErrnoException) =>
          reject(error.code === "ENOENT" ? toolMissing("qemu-system-x86_64") : error),
        );
      });
      const died = vm.failure.then((error) => Promise.reject(error));
      await Promise.race([vm.qmp.negotiate(), died, spawnError]);
      vm.timeline.qmpReadyAt = performance.now();
      vm.#log.debug("qemu started", { pid: vm.pid, accel: spec.accel });
      return vm;
    } catch (error) {
      if (options.signal?.aborted) {
        await vm.destroy();
        throw new VhiveError("ERR_ABORTED", "VM start was cancelled", { cause: error });
      }
      if (error instanceof VhiveError && error.code.startsWith("ERR_QMP")) {
        // The monitor closing usually means QEMU is exiting: give the exit a moment to land so
        // the error carries QEMU's status and its own message rather than "monitor closed".
        const exited = await Promise.race([vm.failure, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 1000).unref())]);
        await vm.destroy();
        throw exited ?? vm.#exitError(null, null, error);
      }
      await vm.destroy();
      throw error;
    } finally {
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /**
   * Fail the VM from outside, for a helper it cannot run without (the pager): every wait on the
   * VM ends with `error`, and QEMU is killed, since it would hang on guest memory otherwise.
   */
  failWith(error: VhiveError): void {
    if (this.#stopped) return;
    this.#fail(error);
    void this.destroy();
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  /** Run the vCPUs. */
  async resume(): Promise<void> {
    this.timeline.resumeAt = performance.now();
    await this.qmp.execute("cont");
  }

  /**
   * Pause the guest and write its device state (CPU, devices; ~60 KB) to statePath. Guest RAM is
   * not in the stream: x-ignore-shared skips it, because it already lives in the shared memory
   * file. Throws ERR_SNAPSHOT_CREATE with QEMU's reason if the migration fails.
   */
  async saveState(statePath: string): Promise<void> {
    await this.qmp.execute("stop");
    // QEMU 7.2's outgoing `fd:` takes only an fd passed over the monitor (getfd, SCM_RIGHTS),
    // which a monitor on stdio cannot carry, and `file:` came in 8.2: so saving spawns `cat`,
    // and VMs that may be saved (guest RAM in a shared file) run without the sandbox.
    await this.#migrate("migrate", `exec:cat > ${shellQuote.quote([statePath])}`, "ERR_SNAPSHOT_CREATE");
  }

  /** Load device state written by saveState into a VM started with `incoming`. Throws ERR_RESTORE. */
  async loadState(statePath: string): Promise<void> {
    if (!this.spec.incoming) throw new VhiveError("ERR_RESTORE", "loadState needs a VM started with `incoming`");
    // The stream carries its own end marker; QEMU reads it from fd 4 while we write it there.
    const sent = pipeline(createReadStream(statePath), this.#migration);
    sent.catch(() => {}); // a short or failed write shows up as a failed migration
    await this.#migrate("migrate-incoming", `fd:${MIGRATION_FD}`, "ERR_RESTORE");
  }

  get #migration(): Duplex {
    return this.#child.process.stdio[MIGRATION_FD] as Duplex;
  }

  async #migrate(command: "migrate" | "migrate-incoming", uri: string, code: "ERR_SNAPSHOT_CREATE" | "ERR_RESTORE"): Promise<void> {
    await this.qmp.execute("migrate-set-capabilities", {
      capabilities: [
        { capability: "x-ignore-shared", state: true },
        { capability: "events", state: true },
      ],
    });
    const finished = this.qmp.waitEvent("MIGRATION", (event) => ["completed", "failed", "cancelled"].includes(String(event.data?.status)));
    const died = this.failure.then((error) => Promise.reject(error));
    // The command inside the race: if it throws, the race has already handled `finished` and
    // `died`, which would otherwise reject later with no one listening.
    const event = await Promise.race([finished, died, this.qmp.execute(command, { uri }).then(() => finished)]);
    if (event.data?.status === "completed") return;
    const info = await this.qmp.execute<{ "error-desc"?: string }>("query-migrate").catch(() => ({ "error-desc": undefined }));
    throw new VhiveError(code, `${command} ${String(event.data?.status)}: ${info["error-desc"] ?? "QEMU gave no reason"}`, {
      details: this.#stderrTail.join("\n"),
    });
  }

  /**
   * Resolves when the guest prints the event `kind`; rejects with the VM's failure if it dies
   * first, ERR_READY_TIMEOUT after timeoutMs, or ERR_ABORTED.
   */
  async waitForGuest(kind: "exec" | "probe-ok", options: { timeoutMs: number; signal?: AbortSignal }): Promise<GuestEvent> {
    const seen = this.console.events.find((event) => event.kind === kind);
    if (seen) return seen;
    if (options.signal?.aborted) throw new VhiveError("ERR_ABORTED", `waiting for the guest's "${kind}" was cancelled`);
    let stopListening = () => {};
    let onAbort = () => {};
    let timer: NodeJS.Timeout | undefined;
    try {
      return await new Promise<GuestEvent>((resolve, reject) => {
        stopListening = this.console.onEvent((event) => {
          if (event.kind === kind) resolve(event);
        });
        void this.failure.then(reject);
        timer = setTimeout(() => {
          const message = `the guest did not reach "${kind}" within ${formatDuration(options.timeoutMs)}`;
          reject(new VhiveError("ERR_READY_TIMEOUT", message, { details: this.console.tail() }));
        }, options.timeoutMs);
        onAbort = () => reject(new VhiveError("ERR_ABORTED", `waiting for the guest's "${kind}" was cancelled`));
        options.signal?.addEventListener("abort", onAbort, { once: true });
      });
    } finally {
      stopListening();
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", onAbort);
    }
  }

  /** Graceful stop: ask QEMU to quit, then SIGTERM/SIGKILL if it lingers. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#shutdown(async () => {
      if (!this.#child.exitInfo) {
        await Promise.race([this.qmp.execute("quit").catch(() => {}), this.#child.exited]);
      }
      await this.#child.stop(2000);
    });
    return this.#stopped;
  }

  /** Immediate stop: SIGKILL. Idempotent. */
  destroy(): Promise<void> {
    this.#stopped ??= this.#shutdown(() => this.#child.destroy());
    return this.#stopped;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  async #shutdown(kill: () => Promise<unknown>): Promise<void> {
    this.#stopping = true;
    try {
      await kill();
    } catch (error) {
      this.#log.warn("stopping QEMU failed", { error: messageOf(error) });
      await this.#child.destroy();
    }
    await this.console.closed();
    if (!this.#keepRunDir) await rm(this.runDir, { recursive: true, force: true });
  }

  #guestFailure(event: GuestEvent): VhiveError | undefined {
    const details = `last lines of the serial console:\n${this.console.tail()}`;
    switch (event.kind) {
      case "init-error":
        return new VhiveError("ERR_GUEST_INIT", `guest init failed: ${event.message}`, { details });
      case "panic":
        return new VhiveError("ERR_GUEST_PANIC", `guest kernel panic: ${event.message}`, { details });
      case "exit":
        return new GuestExitedError(event.status, `the function's entrypoint exited with status ${event.status}`, {
          details,
          remedy: "check the entrypoint, env and workdir of the image; the serial console above shows its output",
        });
      default:
        return undefined;
    }
  }

  #exitError(code: number | null, signal: NodeJS.Signals | null, cause?: unknown): VhiveError {
    const stderr = this.#stderrTail.join("\n");
    const how = signal ? `was killed by ${signal}` : code === null ? "is gone" : `exited with status ${code}`;
    if (/Could not set up host forwarding rule/.test(stderr)) {
      return new VhiveError("ERR_PORT_IN_USE", `host port ${this.spec.forward?.hostPort} is already taken`, {
        details: stderr,
        remedy: "pick another port with --host-port, or leave it out to use a free one",
        cause,
      });
    }
    const started = this.timeline.qmpReadyAt !== undefined;
    return new VhiveError(started ? "ERR_VM_EXITED" : "ERR_QEMU_START", `QEMU ${how}${started ? " while the VM was running" : " before its monitor came up"}`, {
      details: [stderr && `QEMU said:\n${stderr}`, this.console.tail() && `last lines of the serial console:\n${this.console.tail()}`].filter(Boolean).join("\n"),
      cause,
    });
  }
}
