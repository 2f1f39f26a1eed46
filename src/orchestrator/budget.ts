/**
 * Admission control: a host memory budget, in MiB, shared by every function's pool. An
 * instance reserves its guest memory before it is started and gives it back once it has
 * stopped; a start that does not fit waits in its pool's queue. Releasing wakes every pool.
 *
 * Pooled VMMs (pre-started QEMUs, src/start/vmm-pool.ts) reserve what they really hold, as
 * measured (their PSS), and only from what is free: they never take room an instance needs. When
 * an instance's reservation does not fit, the pools give memory back first (their reclaimers drop
 * ready VMMs, the asking function's own last, since its start would take one of them).
 */

/** Drops pooled VMMs until `mib` is freed or none is left; returns the MiB they held, which the budget takes back. */
export type Reclaimer = (mib: number) => number;

export class MemoryBudget {
  readonly totalMib: number;
  #reservedMib = 0;
  readonly #listeners = new Set<() => void>();
  readonly #reclaimers = new Set<Reclaimer>();

  constructor(totalMib: number) {
    this.totalMib = totalMib;
  }

  get reservedMib(): number {
    return this.#reservedMib;
  }

  /**
   * Reserve `mib` for an instance if it fits, after pooled VMMs have given back what they hold
   * if need be (`own`, the asking function's reclaimer, last); false otherwise.
   */
  tryReserve(mib: number, own?: Reclaimer): boolean {
    if (this.#reservedMib + mib > this.totalMib) {
      const reclaimers = [...this.#reclaimers].filter((reclaim) => reclaim !== own);
      if (own && this.#reclaimers.has(own)) reclaimers.push(own);
      for (const reclaim of reclaimers) {
        const needed = this.#reservedMib + mib - this.totalMib;
        if (needed <= 0) break;
        this.#reservedMib = Math.max(0, this.#reservedMib - reclaim(needed));
      }
    }
    return this.tryReserveIdle(mib);
  }

  /** Reserve `mib` for a pooled VMM if it fits in what is free (nothing is reclaimed for it); false otherwise. */
  tryReserveIdle(mib: number): boolean {
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

  /** A pool of pre-started VMMs that gives memory back to instances; returns the unsubscribe function. */
  addReclaimer(reclaim: Reclaimer): () => void {
    this.#reclaimers.add(reclaim);
    return () => this.#reclaimers.delete(reclaim);
  }
}
