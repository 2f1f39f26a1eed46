/**
 * A stack of undo steps for multi-step starts: register each undo as the resource is acquired,
 * and unwind in reverse if a later step fails (vHive's StartVM does the same with defers).
 * Node 20 has no AsyncDisposableStack, hence this small stand-in.
 */
import type { Log } from "./log.js";

export class UndoStack implements AsyncDisposable {
  #steps: { what: string; undo: () => unknown }[] = [];

  defer(what: string, undo: () => unknown): void {
    this.#steps.push({ what, undo });
  }

  /** Forget every step: the resources now belong to whoever the start returned them to. */
  release(): void {
    this.#steps = [];
  }

  /** Run the steps newest first; a failing step is logged and the rest still run. */
  async unwind(log?: Log): Promise<void> {
    const steps = this.#steps.reverse();
    this.#steps = [];
    for (const step of steps) {
      try {
        await step.undo();
      } catch (error) {
        log?.warn("undo step failed", { step: step.what, error: String(error) });
      }
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.unwind();
  }
}
