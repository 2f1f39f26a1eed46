/**
 * Admission control: a host memory budget, in MiB, shared by every function's pool. An
 * instance reserves its guest memory before it is started and gives it back once it has
 * stopped; a start that does not fit waits in its pool's queue. Releasing wakes every pool.
 */
export class MemoryBudget {
  readonly totalMib: number;
  #reservedMib = 0;
  readonly #listeners = new Set<() => void>();

  constructor(totalMib: number) {
    this.totalMib = totalMib;
  }

  get reservedMib(): number {
    return this.#reservedMib;
  }

  /** Reserve `mib` if it fits; false otherwise. */
  tryReserve(mib: number): boolean {
    if (this.#reservedMib + mib > this.totalMib) return false;
    this.#reservedMib += mib;
    return true;
  }

  release(mib: number): void {
    this.#reservedMib = Math.max(0, this.#reservedMib - mib);
    for (const listener of [...this.#listeners]) listener();
  }

  /** Called after every release; returns the unsubscribe function. */
  onRelease(listener: () => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
