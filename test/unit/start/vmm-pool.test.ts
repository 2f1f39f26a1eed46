/** The pool of pre-started VMMs with fake VMMs and the daemon's memory budget: refill, take, drain, budget. No VM. */
import { afterEach, describe, expect, it } from "vitest";
import { MemoryBudget } from "../../../src/orchestrator/index.js";
import { VhiveError } from "../../../src/shared/errors.js";
import { NoOpLog } from "../../../src/shared/log.js";
import { VmmPool } from "../../../src/start/index.js";
import { FakeVmm } from "../orchestrator/fake-starter.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));
async function ticks(n = 5): Promise<void> {
  for (let i = 0; i < n; i++) await tick();
}

/** Pre-starts that the test lets finish one by one (or makes fail, or find nothing). */
class Prestarts {
  readonly made: FakeVmm[] = [];
  readonly signals: AbortSignal[] = [];
  readonly #waiting: { resolve: (vmm: FakeVmm | undefined) => void; reject: (error: unknown) => void }[] = [];
  mib = 40;
  calls = 0;

  prestart = (signal: AbortSignal): Promise<FakeVmm | undefined> => {
    this.calls++;
    this.signals.push(signal);
    return new Promise((resolve, reject) => {
      const entry = { resolve, reject };
      this.#waiting.push(entry);
      signal.addEventListener(
        "abort",
        () => {
          this.#waiting.splice(this.#waiting.indexOf(entry), 1);
          reject(new VhiveError("ERR_ABORTED", "cancelled"));
        },
        { once: true },
      );
    });
  };

  get pending(): number {
    return this.#waiting.length;
  }

  /** The oldest pending pre-start finishes with a new VMM. */
  finish(): FakeVmm {
    const vmm = new FakeVmm(`vmm-${this.made.length}`, this.mib);
    this.made.push(vmm);
    this.#waiting.shift()!.resolve(vmm);
    return vmm;
  }

  nothing(): void {
    this.#waiting.shift()!.resolve(undefined);
  }

  fail(): void {
    this.#waiting.shift()!.reject(new VhiveError("ERR_QEMU_START", "QEMU exited with status 1 before its monitor came up"));
  }
}

let pools: VmmPool<FakeVmm>[] = [];
afterEach(async () => {
  await Promise.all(pools.map((pool) => pool.close()));
  pools = [];
});

function pool(prestarts: Prestarts, depth: number, budget?: MemoryBudget): VmmPool<FakeVmm> {
  const created = new VmmPool<FakeVmm>({ depth, prestart: prestarts.prestart, budget, startingMib: 256, log: new NoOpLog() });
  pools.push(created);
  return created;
}

describe("pool of pre-started VMMs", () => {
  it("refills to its depth in the background, one pre-start at a time; take() hands out the oldest ready VMM", async () => {
    const prestarts = new Prestarts();
    const p = pool(prestarts, 2);
    expect(p.take()).toBeUndefined();
    p.refill();
    p.refill(); // asked again while it fills: no second loop
    await ticks();
    expect(prestarts.pending).toBe(1);
    expect(p.state()).toMatchObject({ depth: 2, ready: 0, starting: 1 });
    const first = prestarts.finish();
    await ticks();
    expect(prestarts.pending).toBe(1);
    const second = prestarts.finish();
    await ticks();
    expect(prestarts.calls).toBe(2);
    expect(p.state()).toMatchObject({ ready: 2, starting: 0 });
    expect(p.take()).toBe(first);
    expect(p.state().ready).toBe(1);
    await ticks();
    expect(prestarts.pending).toBe(0); // taking does not refill: the owner says when
    p.refill();
    await ticks();
    prestarts.finish();
    await ticks();
    expect(p.take()).toBe(second);
    expect(p.state().ready).toBe(1);
  });

  it("counts each VMM against the budget: the guest's size while the first starts, then what it measured, and the last measure for the next", async () => {
    const budget = new MemoryBudget(1000);
    const prestarts = new Prestarts();
    const p = pool(prestarts, 2, budget);
    p.refill();
    await ticks();
    expect(budget.reservedMib).toBe(256);
    prestarts.finish();
    await ticks();
    // 40 measured for the first; the second starts with 40 reserved
    expect(budget.reservedMib).toBe(40 + 40);
    expect(p.state()).toMatchObject({ ready: 1, starting: 1, heldMib: 80 });
    prestarts.mib = 55;
    prestarts.finish();
    await ticks();
    expect(budget.reservedMib).toBe(40 + 55);
    p.take();
    expect(budget.reservedMib).toBe(55); // the taker's instance reserves its own
    await p.drain();
    expect(budget.reservedMib).toBe(0);
  });

  it("stops refilling when the budget has no room, and goes on once refillIfNoRoom() is called with room again", async () => {
    const budget = new MemoryBudget(300);
    expect(budget.tryReserve(100)).toBe(true);
    const prestarts = new Prestarts();
    const p = pool(prestarts, 2, budget);
    p.refill();
    await ticks();
    expect(prestarts.calls).toBe(0); // 256 for the first does not fit beside 100
    p.refillIfNoRoom();
    await ticks();
    expect(prestarts.calls).toBe(0);
    budget.release(100);
    p.refillIfNoRoom();
    await ticks();
    prestarts.finish();
    await ticks();
    prestarts.finish();
    await ticks();
    expect(p.state().ready).toBe(2);
    expect(budget.reservedMib).toBe(80);
    p.refillIfNoRoom(); // not stopped for want of room: nothing to do
    await ticks();
    expect(prestarts.calls).toBe(2);
  });

  it("drops a VMM that dies while it waits, ends it and gives its memory back, and does not replace it until asked", async () => {
    const budget = new MemoryBudget(1000);
    const prestarts = new Prestarts();
    const p = pool(prestarts, 1, budget);
    p.refill();
    await ticks();
    const vmm = prestarts.finish();
    await ticks();
    vmm.die();
    await ticks();
    expect(vmm.destroyed).toBe(true);
    expect(p.state()).toMatchObject({ ready: 0, starting: 0, heldMib: 0 });
    expect(budget.reservedMib).toBe(0);
    expect(prestarts.calls).toBe(1);
    expect(p.take()).toBeUndefined();
  });

  it("take() passes over a VMM that died unnoticed", async () => {
    const prestarts = new Prestarts();
    const p = pool(prestarts, 2);
    p.refill();
    await ticks();
    const dead = prestarts.finish();
    await ticks();
    const alive = prestarts.finish();
    await ticks();
    dead.die(); // take() runs before the abort listener could
    expect(p.take()).toBe(alive);
    await ticks();
    expect(dead.destroyed).toBe(true);
  });

  it("stops refilling when a pre-start finds nothing to start or fails, until the next refill()", async () => {
    const budget = new MemoryBudget(1000);
    const prestarts = new Prestarts();
    const p = pool(prestarts, 3, budget);
    p.refill();
    await ticks();
    prestarts.nothing();
    await ticks();
    expect(prestarts.calls).toBe(1);
    expect(budget.reservedMib).toBe(0);
    p.refill();
    await ticks();
    prestarts.fail();
    await ticks();
    expect(prestarts.calls).toBe(2);
    expect(p.state()).toMatchObject({ ready: 0, starting: 0 });
    expect(budget.reservedMib).toBe(0);
    p.refill();
    await ticks();
    prestarts.finish();
    await ticks();
    expect(p.state()).toMatchObject({ ready: 1, starting: 1 });
  });

  it("drain() ends every ready VMM and cancels the pre-start under way; refill() fills it again, close() refuses to", async () => {
    const budget = new MemoryBudget(1000);
    const prestarts = new Prestarts();
    const p = pool(prestarts, 2, budget);
    p.refill();
    await ticks();
    const ready = prestarts.finish();
    await ticks();
    expect(p.state().starting).toBe(1);
    await p.drain();
    expect(ready.destroyed).toBe(true);
    expect(prestarts.signals[1]!.aborted).toBe(true);
    expect(p.state()).toMatchObject({ ready: 0, starting: 0, heldMib: 0 });
    expect(budget.reservedMib).toBe(0);

    p.refill();
    await ticks();
    const again = prestarts.finish();
    await ticks();
    expect(prestarts.signals[2]!.aborted).toBe(false);
    await p.close();
    expect(again.destroyed).toBe(true);
    p.refill();
    await ticks();
    expect(prestarts.calls).toBe(4); // the one cancelled by close, none after
    expect(budget.reservedMib).toBe(0);
  });

  it("a VMM whose pre-start finishes after a drain never joins: it is ended", async () => {
    let late: FakeVmm | undefined;
    // A pre-start that ignores its signal and finishes anyway.
    const p = new VmmPool<FakeVmm>({
      depth: 1,
      prestart: async () => {
        await ticks(3);
        late = new FakeVmm("late", 40);
        return late;
      },
      startingMib: 256,
      log: new NoOpLog(),
    });
    pools.push(p);
    p.refill();
    await p.drain();
    expect(late?.destroyed).toBe(true);
    expect(p.state().ready).toBe(0);
  });

  it("shed() drops the newest ready VMMs until enough is freed and hands their reservations to the caller", async () => {
    const budget = new MemoryBudget(1000);
    const prestarts = new Prestarts();
    const p = pool(prestarts, 3, budget);
    p.refill();
    for (let i = 0; i < 3; i++) {
      await ticks();
      prestarts.finish();
    }
    await ticks();
    expect(budget.reservedMib).toBe(120);
    expect(p.shed(50)).toBe(80); // two of 40
    await ticks();
    expect(prestarts.made.map((vmm) => vmm.destroyed)).toEqual([false, true, true]);
    expect(p.state()).toMatchObject({ ready: 1, heldMib: 40 });
    expect(budget.reservedMib).toBe(120); // the caller (the budget's reclaim) takes the 80 over
    expect(p.take()).toBe(prestarts.made[0]);
  });
});

describe("memory budget with pooled VMMs", () => {
  it("an instance's reservation takes memory back from pooled VMMs, the asking function's own last; a pooled VMM's never does", () => {
    const budget = new MemoryBudget(500);
    const held = { other: 200, own: 200 };
    const asked: string[] = [];
    const reclaimer = (name: keyof typeof held) => (mib: number) => {
      asked.push(`${name} ${mib}`);
      const freed = Math.min(held[name], Math.ceil(mib / 100) * 100);
      held[name] -= freed;
      return freed;
    };
    const other = reclaimer("other");
    const own = reclaimer("own");
    budget.addReclaimer(own);
    budget.addReclaimer(other);
    expect(budget.tryReserveIdle(400)).toBe(true); // what both pools hold
    expect(budget.tryReserveIdle(200)).toBe(false);
    expect(budget.tryReserve(256, own)).toBe(true);
    expect(asked).toEqual(["other 156"]); // 200 of other's freed; own's untouched
    expect(budget.reservedMib).toBe(456);
    expect(budget.tryReserve(256, own)).toBe(false); // 200 of own's is all there is left to take
    expect(asked).toEqual(["other 156", "other 212", "own 212"]);
    expect(budget.reservedMib).toBe(256);
  });
});
