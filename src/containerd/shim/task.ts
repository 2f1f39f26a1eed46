/**
 * One container as a vhive microVM, through its life as containerd sees a task:
 *
 *   create   the OCI spec read, the rootfs mounted and packed into a vhive image (cached)
 *   start    the VM booted or restored by the start policy, until the function answers; the
 *            start kind and breakdown go to the container's stderr and to vhive-start.json in
 *            the bundle
 *   running  the function's console output goes to the container's stdout
 *   exit     the entrypoint exited (its status), the VM died (255), or kill stopped it (128 +
 *            the signal); a SIGTERM/SIGINT stop is graceful: a capture is saved as the image's
 *            snapshot, a recording writes its working set
 *   delete   the rootfs unmounted; the task forgotten
 *
 * The QEMU process is the task's pid.
 */
import { createWriteStream, type WriteStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { StoredImage } from "../../image/index.js";
import { roundMs } from "../../metrics/index.js";
import { isVhiveError, messageOf, VhiveError } from "../../shared/errors.js";
import type { Log } from "../../shared/log.js";
import { DEFAULT_VCPUS, memMibFor, type Host } from "../../start/index.js";
import { GuestExitedError } from "../../vm/index.js";
import type { Mount } from "../api.js";
import { containerImage, mountRootfs } from "./container-image.js";
import { readContainerSpec, type ContainerSpec } from "./spec.js";
import { epochMs, START_RECORD_FILE, type StartRecord, type StartTimeline } from "./start-record.js";
import type { ContainerStarter, StartedContainer } from "./starter.js";

export type TaskStatus = "created" | "running" | "stopped";

export interface TaskExit {
  status: number;
  at: Date;
}

export interface TaskIo {
  stdout: string;
  stderr: string;
  terminal: boolean;
}

/** The start record's timeline as far as Create: the rest is the task's own. */
export type CreateTimeline = Omit<StartTimeline, "createdAt" | "startAt" | "answeredAt">;

/** What the shim tells containerd about a task's life (events). */
export interface TaskListener {
  exited(task: ContainerTask, exit: TaskExit): void;
}

/** Exit statuses as a shell reports them: 128 + the signal that ended it. */
const SIGNALS: Record<number, string> = { 2: "SIGINT", 9: "SIGKILL", 15: "SIGTERM" };
/** The least guest memory a function gets: the guest kernel, init and a language runtime. */
const MIN_GUEST_MIB = 128;
/** The VM died without its entrypoint exiting (QEMU crashed, the guest panicked). */
const VM_DIED_STATUS = 255;

/** What a task needs of its shim. */
export interface TaskContext {
  host: Host;
  starter: ContainerStarter;
  log: Log;
  listener: TaskListener;
  /** When the shim's processes started and this Create arrived. */
  timeline: CreateTimeline;
}

export class ContainerTask {
  readonly id: string;
  readonly bundle: string;
  readonly io: TaskIo;
  readonly #host: Host;
  readonly #starter: ContainerStarter;
  readonly #log: Log;
  readonly #listener: TaskListener;
  readonly #spec: ContainerSpec;
  readonly #image: StoredImage;
  readonly #unmount: () => Promise<void>;
  readonly #timeline: Omit<StartTimeline, "startAt" | "answeredAt">;
  #status: TaskStatus = "created";
  #started: StartedContainer | undefined;
  #starting: Promise<number> | undefined;
  #exit: TaskExit | undefined;
  #exited: Promise<TaskExit>;
  #resolveExit: (exit: TaskExit) => void = () => {};
  /** The signal kill() stopped it with, for its exit status. */
  #killedWith: number | undefined;
  #out: WriteStream | undefined;
  #err: WriteStream | undefined;

  private constructor(
    id: string,
    bundle: string,
    io: TaskIo,
    context: TaskContext,
    spec: ContainerSpec,
    image: StoredImage,
    unmount: () => Promise<void>,
  ) {
    this.id = id;
    this.bundle = bundle;
    this.io = io;
    this.#host = context.host;
    this.#starter = context.starter;
    this.#log = context.log.child({ container: id });
    this.#listener = context.listener;
    this.#spec = spec;
    this.#image = image;
    this.#unmount = unmount;
    this.#timeline = { ...context.timeline, createdAt: epochMs() };
    this.#exited = new Promise((resolve) => (this.#resolveExit = resolve));
  }

  /** Read the spec, mount the rootfs and make (or find) its vhive image. Undoes the mount on failure. */
  static async create(request: { id: string; bundle: string; rootfs: readonly Mount[]; io: TaskIo }, context: TaskContext): Promise<ContainerTask> {
    const spec = await readContainerSpec(request.bundle);
    if (spec.terminal) {
      throw new VhiveError("ERR_VALIDATION", "a terminal (tty) for the container: a vhive microVM has no terminal to attach", { remedy: "run it without -t / tty" });
    }
    const unmount = await mountRootfs(spec.rootPath, request.rootfs);
    try {
      const name = spec.annotations["io.kubernetes.cri.image-name"] ?? `container-${request.id}`; // unless the image names itself
      const image = await containerImage(context.host.paths, spec, request.rootfs, { name });
      const needsMib = image.config.memMib ?? MIN_GUEST_MIB;
      if (spec.memMib !== undefined && spec.memMib < needsMib) {
        throw new VhiveError("ERR_VALIDATION", `the container's memory limit (${spec.memMib} MiB) is less than its function needs (${needsMib} MiB${image.config.memMib ? ", as its image says" : ": a guest kernel and runtime"})`, {
          remedy: `give the container a memory limit of at least ${needsMib} MiB (resources.limits.memory: ${needsMib}Mi)`,
        });
      }
      return new ContainerTask(request.id, request.bundle, request.io, context, spec, image, unmount);
    } catch (error) {
      await unmount().catch(() => {});
      throw error;
    }
  }

  get status(): TaskStatus {
    return this.#status;
  }

  /** QEMU's pid once started; 0 before (as a created runc task has no process to show yet). */
  get pid(): number {
    return this.#started?.instance.vm.pid ?? 0;
  }

  get exit(): TaskExit | undefined {
    return this.#exit;
  }

  wait(): Promise<TaskExit> {
    return this.#exited;
  }

  /** Start the VM and wait until the function answers; resolves with QEMU's pid. */
  start(): Promise<number> {
    if (this.#status !== "created") throw new VhiveError("ERR_VALIDATION", `task ${this.id} is ${this.#status}, not created`);
    this.#starting ??= this.#start();
    return this.#starting;
  }

  async #start(): Promise<number> {
    const startAt = epochMs();
    this.#status = "running";
    this.#openIo();
    const began = performance.now();
    let started: StartedContainer;
    try {
      started = await this.#starter.start(this.#image, {
        policy: this.#spec.start,
        memMib: this.#spec.memMib ?? memMibFor(this.#image),
        vcpus: this.#spec.vcpus ?? DEFAULT_VCPUS,
        hostPort: this.#image.config.port,
        onConsoleLine: (line) => this.#out?.write(line + "\n"),
      });
    } catch (error) {
      // An entrypoint that exits before it answers started all the same, as a runc process
      // that exits at once does: its status is the task's exit, not a failed start.
      if (error instanceof GuestExitedError) {
        this.#say(`vhive: ${error.message}`);
        this.#end(error.status);
        return 0;
      }
      this.#say(`vhive: the container did not start: ${messageOf(error)}`);
      this.#end(VM_DIED_STATUS);
      throw error;
    }
    this.#started = started;
    const { instance } = started;
    const answeredAt = epochMs();
    const startMs = performance.now() - began;
    const start = instance.start;
    const record: StartRecord = {
      start: start.kind,
      snapshotId: "snapshotId" in start ? start.snapshotId : undefined,
      image: this.#image.id,
      pid: instance.vm.pid!,
      runDir: instance.vm.runDir,
      startMs: roundMs(startMs),
      breakdown: Object.fromEntries(Object.entries(start.times).map(([phase, ms]) => [phase, roundMs(ms)])),
      notes: started.notes,
      timeline: { ...this.#timeline, startAt, answeredAt },
    };
    await writeFile(join(this.bundle, START_RECORD_FILE), JSON.stringify(record, null, 2) + "\n");
    const phases = Object.entries(record.breakdown).map(([phase, ms]) => `${phase} ${ms}`).join(", ");
    this.#say(`vhive: started by ${start.kind}${record.snapshotId ? ` from snapshot ${record.snapshotId}` : ""} in ${Math.round(startMs)} ms (${phases})`);
    for (const note of started.notes) this.#say(`vhive: ${note}`);
    void instance.vm.failure.then((error) => this.#vmEnded(error));
    return instance.vm.pid!;
  }

  /** kill: SIGKILL ends it at once; any other signal stops it gracefully (saving what it should). */
  async kill(signal: number): Promise<void> {
    if (this.#status === "stopped") return;
    this.#killedWith ??= signal;
    if (!this.#started) {
      // Created, never started (or starting): nothing runs yet that a signal could reach.
      if (this.#starting) await this.#starting.catch(() => {});
      if (!this.#started) return this.#end(128 + signal);
    }
    const kept = await this.#started!.stop(signal !== 9).catch((error: unknown) => {
      this.#log.warn("stopping the VM failed", { error: messageOf(error) });
      return {};
    });
    if ("savedSnapshot" in kept && kept.savedSnapshot) this.#say(`vhive: saved as snapshot ${kept.savedSnapshot} of this image`);
    if ("recordedPages" in kept && kept.recordedPages !== undefined) this.#say(`vhive: working set recorded: ${kept.recordedPages} pages`);
    this.#end(128 + signal);
  }

  /** Unmount the rootfs; the task must have exited (or never started). */
  async delete(): Promise<TaskExit> {
    if (this.#status === "running") {
      throw new VhiveError("ERR_VALIDATION", `task ${this.id} is still running`, { remedy: "kill it first (ctr task kill)" });
    }
    if (this.#status === "created") this.#end(0);
    await this.#unmount().catch((error: unknown) => this.#log.warn("unmounting the rootfs failed", { error: messageOf(error) }));
    return this.#exit!;
  }

  /** Ends the VM at once (the shim is going away). */
  async destroy(): Promise<void> {
    await this.#started?.stop(false).catch(() => {});
    this.#end(128 + 9);
    await this.#unmount().catch(() => {});
  }

  #vmEnded(error: VhiveError): void {
    if (this.#status === "stopped") return;
    if (this.#killedWith !== undefined) return; // kill() reports it
    const exitEvent = this.#started?.instance.vm.console.events.find((event) => event.kind === "exit");
    if (exitEvent?.kind === "exit") {
      this.#say(`vhive: the entrypoint exited with status ${exitEvent.status}`);
      void this.#started!.stop(false).finally(() => this.#end(exitEvent.status));
      return;
    }
    this.#say(`vhive: the VM ended: ${error.message}${isVhiveError(error) && error.details ? `\n${error.details}` : ""}`);
    void this.#started!.stop(false).finally(() => this.#end(VM_DIED_STATUS));
  }

  #end(status: number): void {
    if (this.#exit) return;
    this.#status = "stopped";
    this.#exit = { status, at: new Date() };
    const signal = SIGNALS[status - 128];
    this.#log.info("task exited", { status, ...(signal ? { signal } : {}) });
    this.#out?.end();
    this.#err?.end();
    this.#resolveExit(this.#exit);
    this.#listener.exited(this, this.#exit);
  }

  /** The container's stdout and stderr: FIFOs containerd made (empty paths: nobody listens). */
  #openIo(): void {
    const open = (path: string) => {
      if (!path) return undefined;
      const stream = createWriteStream(path, { flags: "w" });
      // EPIPE: the reader went away (ctr run -d); the output is still in the shim's log.
      stream.on("error", (error: NodeJS.ErrnoException) => (error.code === "EPIPE" ? this.#log.debug : this.#log.warn).call(this.#log, "writing to the container's output failed", { path, error: error.message }));
      return stream;
    };
    this.#out = open(this.io.stdout);
    this.#err = open(this.io.stderr);
  }

  /** A line of vhive's own about the container, on its stderr and in the shim's log. */
  #say(line: string): void {
    this.#log.info(line);
    this.#err?.write(line + "\n");
  }
}
