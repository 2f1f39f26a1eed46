/**
 * A QMP client over a pair of streams (vhive runs QMP on QEMU's stdio, so the monitor's
 * lifetime is the process's and no socket file is left behind).
 *
 * Failures are distinct, as in QEMU's own python/qemu/qmp: a bad greeting is ERR_QMP_GREETING,
 * a command QEMU rejects is ERR_QMP_COMMAND (with the QMP error class and the message sent),
 * and a link that drops rejects every command in flight with ERR_QMP_DISCONNECTED.
 */
import { EventEmitter } from "node:events";
import { createInterface } from "node:readline";
import type { Readable, Writable } from "node:stream";
import { VhiveError } from "../shared/errors.js";

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

interface Pending {
  command: string;
  sent: string;
  resolve: (value: unknown) => void;
  reject: (error: VhiveError) => void;
}

export class QmpClient {
  readonly #output: Writable;
  readonly #pending = new Map<string, Pending>();
  readonly #events = new EventEmitter();
  readonly #greeting: Promise<Record<string, unknown>>;
  #nextId = 0;
  #closed: VhiveError | undefined;

  constructor(input: Readable, output: Writable) {
    this.#output = output;
    this.#output.on("error", () => {}); // surfaced as a disconnect below
    let onGreeting: (greeting: Record<string, unknown>) => void = () => {};
    let onNoGreeting: (error: VhiveError) => void = () => {};
    this.#greeting = new Promise((resolve, reject) => {
      onGreeting = resolve;
      onNoGreeting = reject;
    });
    this.#greeting.catch(() => {}); // a caller that never awaits it must not crash the process
    let greeted = false;
    const lines = createInterface({ input, crlfDelay: Infinity });
    lines.on("line", (line) => {
      if (line.trim() === "") return;
      let message: Record<string, unknown>;
      try {
        message = JSON.parse(line) as Record<string, unknown>;
      } catch {
        if (!greeted) {
          greeted = true;
          onNoGreeting(new VhiveError("ERR_QMP_GREETING", `QEMU's monitor sent a line that is not JSON: ${line.slice(0, 200)}`));
        }
        return;
      }
      if (!greeted) {
        greeted = true;
        if (typeof message.QMP === "object" && message.QMP !== null) onGreeting(message.QMP as Record<string, unknown>);
        else onNoGreeting(new VhiveError("ERR_QMP_GREETING", `QEMU's monitor greeted with ${line.slice(0, 200)}`));
        return;
      }
      this.#dispatch(message);
    });
    lines.on("close", () => {
      if (!greeted) {
        greeted = true;
        onNoGreeting(new VhiveError("ERR_QMP_GREETING", "QEMU's monitor closed before its greeting"));
      }
      this.#disconnect("QEMU's monitor closed");
    });
  }

  /** Wait for the greeting and enter command mode. */
  async negotiate(): Promise<Record<string, unknown>> {
    const greeting = await this.#greeting;
    await this.execute("qmp_capabilities");
    return greeting;
  }

  async execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    if (this.#closed) throw this.#closed;
    const id = `vhive-${this.#nextId++}`;
    const sent = JSON.stringify(args === undefined ? { execute: command, id } : { execute: command, arguments: args, id });
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { command, sent, resolve: resolve as (value: unknown) => void, reject });
      this.#output.write(sent + "\n");
    });
  }

  /** Resolves with the first event named `name` for which `match` holds. */
  waitEvent(name: string, match: (event: QmpEvent) => boolean = () => true, signal?: AbortSignal): Promise<QmpEvent> {
    if (this.#closed) return Promise.reject(this.#closed);
    return new Promise((resolve, reject) => {
      const cleanup = () => {
        this.#events.off(name, onEvent);
        this.#events.off("disconnect", onDisconnect);
        signal?.removeEventListener("abort", onAbort);
      };
      const onEvent = (event: QmpEvent) => {
        if (!match(event)) return;
        cleanup();
        resolve(event);
      };
      const onDisconnect = (error: VhiveError) => {
        cleanup();
        reject(error);
      };
      const onAbort = () => {
        cleanup();
        reject(new VhiveError("ERR_ABORTED", `waiting for QMP event ${name} was cancelled`));
      };
      if (signal?.aborted) return onAbort();
      this.#events.on(name, onEvent);
      this.#events.once("disconnect", onDisconnect);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  onEvent(listener: (event: QmpEvent) => void): void {
    this.#events.on("*", listener);
  }

  #dispatch(message: Record<string, unknown>): void {
    if (typeof message.event === "string") {
      const event = message as unknown as QmpEvent;
      this.#events.emit(event.event, event);
      this.#events.emit("*", event);
      return;
    }
    const id = typeof message.id === "string" ? message.id : undefined;
    const pending = id === undefined ? undefined : this.#pending.get(id);
    if (!pending || id === undefined) return;
    this.#pending.delete(id);
    if ("return" in message) {
      pending.resolve(message.return);
      return;
    }
    const error = (message.error ?? {}) as { class?: string; desc?: string };
    pending.reject(
      new VhiveError("ERR_QMP_COMMAND", `QMP ${pending.command} failed: ${error.class ?? "Error"}: ${error.desc ?? "no description"}`, {
        details: `sent: ${pending.sent}`,
      }),
    );
  }

  #disconnect(reason: string): void {
    if (this.#closed) return;
    this.#closed = new VhiveError("ERR_QMP_DISCONNECTED", reason);
    for (const pending of this.#pending.values()) {
      pending.reject(new VhiveError("ERR_QMP_DISCONNECTED", `${reason} while ${pending.command} was in flight`, { details: `sent: ${pending.sent}` }));
    }
    this.#pending.clear();
    this.#events.emit("disconnect", this.#closed);
  }
}
