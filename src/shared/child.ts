/**
 * Ownership of child processes. Every process vhive starts is a ChildHandle: one owner awaits
 * its exit, stop() is graceful (SIGTERM, bounded wait, SIGKILL) and destroy() immediate, both
 * idempotent. A process-wide exit hook SIGKILLs whatever is still alive, so a crash or
 * process.exit() in the CLI never leaves a QEMU behind.
 */
import { spawn, type ChildProcess, type SpawnOptions } from "node:child_process";

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

const live = new Set<ChildHandle>();
let exitHookInstalled = false;
let ownProcessGroups = false;

/**
 * From now on, start children in their own process groups, so that a terminal's Ctrl-C reaches
 * only this process: the daemon then stops its VMs in order (pausing and saving snapshots)
 * instead of QEMU quitting on the SIGINT by itself. The exit hook still kills them.
 */
export function isolateChildrenFromTerminal(): void {
  ownProcessGroups = true;
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: kill, do not wait.
  process.on("exit", () => {
    for (const child of live) child.process.kill("SIGKILL");
  });
}

export class ChildHandle implements AsyncDisposable {
  readonly name: string;
  readonly process: ChildProcess;
  /** Resolves once the process has exited and its stdio closed; never rejects. */
  readonly exited: Promise<ExitInfo>;
  #exitInfo: ExitInfo | undefined;

  constructor(name: string, command: string, args: readonly string[], options: SpawnOptions) {
    installExitHook();
    this.name = name;
    this.process = spawn(command, args, { ...options, detached: ownProcessGroups, shell: false });
    live.add(this);
    this.exited = new Promise<ExitInfo>((resolve) => {
      const done = (info: ExitInfo) => {
        if (this.#exitInfo) return;
        this.#exitInfo = info;
        live.delete(this);
        resolve(info);
      };
      // 'close' fires after 'exit' once stdio is drained; a spawn failure fires 'error' only.
      this.process.once("close", (code, signal) => done({ code, signal }));
      this.process.once("error", () => {
        if (this.process.pid === undefined) done({ code: null, signal: null });
      });
    });
  }

  get pid(): number | undefined {
    return this.process.pid;
  }

  /** Set once the process has exited. */
  get exitInfo(): ExitInfo | undefined {
    return this.#exitInfo;
  }

  /** SIGTERM, wait up to graceMs, then SIGKILL; resolves when the process is gone. */
  async stop(graceMs = 3000): Promise<ExitInfo> {
    if (this.#exitInfo) return this.#exitInfo;
    this.process.kill("SIGTERM");
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<"timeout">((resolve) => {
      timer = setTimeout(() => resolve("timeout"), graceMs);
    });
    const first = await Promise.race([this.exited, timedOut]);
    clearTimeout(timer);
    if (first === "timeout") this.process.kill("SIGKILL");
    return this.exited;
  }

  /** SIGKILL now; resolves when the process is gone. */
  async destroy(): Promise<ExitInfo> {
    if (!this.#exitInfo) this.process.kill("SIGKILL");
    return this.exited;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }
}

/** How many children are alive; tests assert this is zero when they end. */
export function liveChildCount(): number {
  return live.size;
}

/** Stop every live child (graceful). Used by the CLI on Ctrl-C. */
export async function stopAllChildren(graceMs = 3000): Promise<void> {
  await Promise.all([...live].map((child) => child.stop(graceMs)));
}
