/**
 * containerd.task.v2.Task, served over ttrpc by one shim process: its containers as vhive
 * microVMs (task.ts), the task events containerd expects (TaskCreate, TaskStart, TaskExit,
 * TaskDelete), and the calls a VM has no answer for (Exec, Pause, Resume, Checkpoint,
 * ResizePty, Update, Stats) answered UNIMPLEMENTED: left out of the implementation, the ttrpc
 * server says so at once. A pod's shim also serves the pod's sandbox, by forwarding its calls to
 * runc's shim (sandbox-proxy.ts).
 */
import { events, shim, taskTypes } from "../api.js";
import type { EventPublisher } from "../publisher.js";
import { GrpcCode, TtrpcStatusError, type CallContext, type ServiceImplementation } from "../ttrpc/index.js";
import type { Log } from "../../shared/log.js";
import type { Host } from "../../start/index.js";
import { messageOf } from "../../shared/errors.js";
import type { SandboxProxy, TaskMethodKey } from "./sandbox-proxy.js";
import { ContainerStarter } from "./starter.js";
import { epochMs, type StartTimeline } from "./start-record.js";
import { ContainerTask, type TaskExit } from "./task.js";

const STATUS: Record<ContainerTask["status"], taskTypes.Status> = {
  created: taskTypes.Status.CREATED,
  running: taskTypes.Status.RUNNING,
  stopped: taskTypes.Status.STOPPED,
};

export interface ShimServiceOptions {
  /** The host context, opened on the first Create (a guest kernel may have to be prepared) and kept by the caller, who forgets a failure (serve.ts). */
  host: () => Promise<Host>;
  publisher: EventPublisher;
  log: Log;
  /** Called when containerd asks the shim to go and it has no task left. */
  onShutdown: () => void;
  /** When the shim's processes started and the server listened (read at each Create, after listen). */
  processTimes: Pick<StartTimeline, "shimStartedAt" | "serverStartedAt" | "servingAt">;
  /** The pod's sandbox, run by runc's shim, when this shim serves a pod. */
  sandbox?: SandboxProxy;
}

export class ShimService {
  readonly #options: ShimServiceOptions;
  readonly #tasks = new Map<string, ContainerTask>();
  readonly #creating = new Set<string>();
  #starter: ContainerStarter | undefined;

  constructor(options: ShimServiceOptions) {
    this.#options = options;
  }

  /** The host (options.host keeps it, and forgets a failure) and the one starter over it. */
  async #context(): Promise<{ host: Host; starter: ContainerStarter }> {
    const host = await this.#options.host();
    this.#starter ??= new ContainerStarter(host, this.#options.log);
    return { host, starter: this.#starter };
  }

  /** Once no VM task is left and runc's shim no longer serves the pod's sandbox, the shim goes. */
  #goIfIdle(): void {
    const sandboxGone = !this.#options.sandbox || this.#options.sandbox.shutDown;
    if (this.#tasks.size === 0 && sandboxGone) setImmediate(this.#options.onShutdown); // after this answer goes out
  }

  get tasks(): ContainerTask[] {
    return [...this.#tasks.values()];
  }

  /** End every VM now (the shim is going away). */
  async destroy(): Promise<void> {
    await Promise.all(this.tasks.map((task) => task.destroy()));
  }

  /** The handlers containerd calls: the sandbox's go on to runc's shim, the rest are the VMs'. */
  implementation(): ServiceImplementation<typeof shim.TaskDefinition> {
    const own = this.#own();
    const sandbox = this.#options.sandbox;
    if (!sandbox) return own;
    const forwarding: Record<string, unknown> = {};
    for (const key of Object.keys(shim.TaskDefinition.methods) as TaskMethodKey[]) {
      const handler = own[key] as ((request: { id: string }, context: CallContext) => unknown) | undefined;
      forwarding[key] = async (request: { id: string }, context: CallContext) => {
        if (request.id !== sandbox.id) {
          if (!handler) throw new TtrpcStatusError(GrpcCode.UNIMPLEMENTED, `${key} is not implemented for a vhive microVM`);
          return handler(request, context);
        }
        const answer = await sandbox.forward(key, request as never, context);
        if (key === "shutdown") this.#goIfIdle();
        return answer;
      };
    }
    return forwarding as ServiceImplementation<typeof shim.TaskDefinition>;
  }

  #own(): ServiceImplementation<typeof shim.TaskDefinition> {
    return {
      create: async (request) => {
        if (this.#tasks.has(request.id) || this.#creating.has(request.id)) {
          throw new TtrpcStatusError(GrpcCode.ALREADY_EXISTS, `task ${request.id} already exists`);
        }
        const running = this.tasks.find((task) => task.status !== "stopped");
        if (running) {
          throw new TtrpcStatusError(GrpcCode.FAILED_PRECONDITION, `the pod already runs its function container (task ${running.id}): a pod runs one function as a vhive microVM; its other containers run under runc`);
        }
        if (request.checkpoint) throw new TtrpcStatusError(GrpcCode.UNIMPLEMENTED, "restoring a task from a CRIU checkpoint: vhive restores its own snapshots instead");
        const createAt = epochMs();
        this.#creating.add(request.id);
        try {
          const { host, starter } = await this.#context();
          const timeline = { ...this.#options.processTimes, createAt, hostReadyAt: epochMs() };
          const task = await ContainerTask.create(
            { id: request.id, bundle: request.bundle, rootfs: request.rootfs, io: { stdout: request.stdout, stderr: request.stderr, terminal: request.terminal } },
            { host, starter, log: this.#options.log, listener: { exited: (t, exit) => this.#exited(t, exit) }, timeline },
          );
          this.#tasks.set(request.id, task);
          this.#publish(events.TaskCreate, {
            containerId: request.id,
            bundle: request.bundle,
            rootfs: request.rootfs,
            io: { stdin: request.stdin, stdout: request.stdout, stderr: request.stderr, terminal: request.terminal },
            checkpoint: request.checkpoint,
            pid: task.pid,
          });
          return { pid: task.pid };
        } finally {
          this.#creating.delete(request.id);
        }
      },
      start: async (request) => {
        const task = this.#task(request.id, request.execId);
        const pid = await task.start();
        this.#publish(events.TaskStart, { containerId: task.id, pid });
        return { pid };
      },
      state: (request) => {
        const task = this.#task(request.id, request.execId);
        return {
          id: task.id,
          bundle: task.bundle,
          pid: task.pid,
          status: STATUS[task.status],
          stdout: task.io.stdout,
          stderr: task.io.stderr,
          terminal: task.io.terminal,
          exitStatus: task.exit?.status ?? 0,
          // containerd's timestamps are not nullable: an unset one reads as year 1 in Go.
          exitedAt: task.exit?.at ?? new Date(0),
          execId: request.execId,
        };
      },
      pids: (request) => {
        const task = this.#task(request.id, "");
        return { processes: task.pid ? [{ pid: task.pid }] : [] };
      },
      kill: async (request) => {
        const task = this.#task(request.id, request.execId);
        await task.kill(request.signal || 15);
        return {};
      },
      wait: async (request) => {
        const exit = await this.#task(request.id, request.execId).wait();
        return { exitStatus: exit.status, exitedAt: exit.at };
      },
      delete: async (request) => {
        const task = this.#task(request.id, request.execId);
        const exit = await task.delete();
        this.#tasks.delete(task.id);
        this.#publish(events.TaskDelete, { containerId: task.id, id: task.id, pid: task.pid, exitStatus: exit.status, exitedAt: exit.at });
        return { pid: task.pid, exitStatus: exit.status, exitedAt: exit.at };
      },
      closeIO: (request) => {
        this.#task(request.id, request.execId);
        return {}; // the VM reads no stdin: there is nothing to close
      },
      connect: (request) => {
        const task = this.#tasks.get(request.id);
        return { shimPid: process.pid, taskPid: task?.pid ?? 0, version: "vhive" };
      },
      shutdown: () => {
        this.#goIfIdle();
        return {};
      },
    };
  }

  #task(id: string, execId: string): ContainerTask {
    if (execId) throw new TtrpcStatusError(GrpcCode.UNIMPLEMENTED, "exec into a vhive microVM: the function runs in a guest of its own, with no process to join");
    const task = this.#tasks.get(id);
    if (!task) throw new TtrpcStatusError(GrpcCode.NOT_FOUND, `task ${id} not found`);
    return task;
  }

  #exited(task: ContainerTask, exit: TaskExit): void {
    this.#publish(events.TaskExit, { containerId: task.id, id: task.id, pid: task.pid, exitStatus: exit.status, exitedAt: exit.at });
  }

  #publish(type: Parameters<EventPublisher["publish"]>[0], event: Parameters<EventPublisher["publish"]>[1]): void {
    // A failed publish is retried by the publisher; the call that caused it still answers.
    this.#options.publisher.publish(type, event).catch((error: unknown) => this.#options.log.warn("publishing a task event failed", { topic: type.$type, error: messageOf(error) }));
  }
}
