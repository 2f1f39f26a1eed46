/**
 * When each instance of a function held its memory: from the start being admitted (its guest
 * memory reserved from the budget) until it ended (retired, destroyed or dead, its memory
 * released). This is what memory-time (GiB-seconds of instances alive) is computed from, as
 * Shahrad et al. count a policy's wasted memory. Kept in the daemon's memory, per function,
 * across redeploys, the newest MAX_LIFETIMES; GET /functions/:name/lifetimes shows them.
 */
import type { ColdStartKind } from "./pool-types.js";

export interface InstanceLifetime {
  /** The instance's id, or a placeholder for a start that never came up. */
  instance: string;
  function: string;
  memMib: number;
  /** How it started; null until it is up, and for a start that failed. */
  start: ColdStartKind | null;
  /** Started ahead of a request by the keep-alive policy. */
  prewarmed: boolean;
  startedAt: string;
  readyAt: string | null;
  /** Null while it is alive. */
  endedAt: string | null;
}

export const MAX_LIFETIMES = 10_000;

export class LifetimeLog {
  readonly #records: InstanceLifetime[] = [];

  /** A start was admitted; the record is updated in place as it comes up and ends. */
  begin(fn: string, memMib: number, placeholder: string, prewarmed: boolean): InstanceLifetime {
    const record: InstanceLifetime = { instance: placeholder, function: fn, memMib, start: null, prewarmed, startedAt: new Date().toISOString(), readyAt: null, endedAt: null };
    this.#records.push(record);
    if (this.#records.length > MAX_LIFETIMES) {
      // Drop the oldest ended one; the live ones are few (at most maxInstances).
      const ended = this.#records.findIndex((r) => r.endedAt !== null);
      this.#records.splice(ended === -1 ? 0 : ended, 1);
    }
    return record;
  }

  ready(record: InstanceLifetime, instance: string, start: ColdStartKind): void {
    record.instance = instance;
    record.start = start;
    record.readyAt = new Date().toISOString();
  }

  end(record: InstanceLifetime): void {
    record.endedAt ??= new Date().toISOString();
  }

  list(): InstanceLifetime[] {
    return this.#records.map((record) => ({ ...record }));
  }
}
